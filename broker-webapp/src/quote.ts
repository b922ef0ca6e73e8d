/**
 * The quotes as the stock quotes service sends them (QuoteJson, the original Go demo's
 * JSON), and a strict check of that shape: whatever else arrives is refused, never rendered.
 */
import { QUOTE_NUMBER_FIELDS, type QuoteJson } from "@federation-demo/service-kit";

/** A quote as received, checked, with its time parsed. */
export interface Quote extends Omit<QuoteJson, "Time"> {
  /** When the quote last changed; null if it never has. */
  Time: Date | null;
}

/** The quotes service answered JSON that is not a list of quotes. */
export class QuoteShapeError extends Error {
  override name = "QuoteShapeError";
}

/** More quotes than this is not a quotes service we understand. */
export const MAX_QUOTES = 1000;
/** Nor are longer symbols than this. */
export const MAX_SYMBOL_LENGTH = 32;

/** RFC 3339 date-time, e.g. 2026-01-02T03:04:05.123Z or ...+01:00 */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Checks parsed JSON against the quotes shape; throws a QuoteShapeError saying what is wrong. */
export function parseQuotes(json: unknown): Quote[] {
  if (!Array.isArray(json)) throw new QuoteShapeError("expected a JSON array of quotes");
  if (json.length > MAX_QUOTES) {
    throw new QuoteShapeError(`expected at most ${MAX_QUOTES} quotes, got ${json.length}`);
  }
  return json.map((item, index) => parseQuote(item, index));
}

function parseQuote(item: unknown, index: number): Quote {
  const where = `quote ${index}`;
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new QuoteShapeError(`${where} is not an object`);
  }
  const record = item as Record<string, unknown>;
  const symbol = record.Symbol;
  if (typeof symbol !== "string" || symbol === "" || symbol.length > MAX_SYMBOL_LENGTH) {
    throw new QuoteShapeError(
      `${where}: Symbol must be a string of 1 to ${MAX_SYMBOL_LENGTH} characters`,
    );
  }
  const numbers = {} as Record<(typeof QUOTE_NUMBER_FIELDS)[number], number>;
  for (const field of QUOTE_NUMBER_FIELDS) {
    const value = record[field];
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new QuoteShapeError(`${where} (${symbol}): ${field} must be a finite number`);
    }
    numbers[field] = value;
  }
  const time = record.Time;
  let parsedTime: Date | null = null;
  if (time !== null && time !== undefined) {
    if (typeof time !== "string" || !RFC3339.test(time) || Number.isNaN(Date.parse(time))) {
      throw new QuoteShapeError(`${where} (${symbol}): Time must be an RFC 3339 time or null`);
    }
    parsedTime = new Date(time);
  }
  return { Symbol: symbol, ...numbers, Time: parsedTime };
}
