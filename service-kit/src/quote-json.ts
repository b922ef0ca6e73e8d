/**
 * One quote as the stock quotes service sends it and the broker webapp reads it: the
 * original Go demo's JSON field names, so the TypeScript and Go versions stay
 * wire-compatible.
 */
export interface QuoteJson {
  Symbol: string;
  Price: number;
  Open: number;
  Low: number;
  High: number;
  Close: number;
  /** RFC 3339 time of the last change; null until the quote first changes. */
  Time: string | null;
}

/** The numeric fields of a quote, in the original's column order. */
export const QUOTE_NUMBER_FIELDS = ["Price", "Open", "Low", "High", "Close"] as const;
