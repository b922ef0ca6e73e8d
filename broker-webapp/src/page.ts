import { createHash } from "node:crypto";
import type { Quote } from "./quote.js";
import type { AuthorityView, JwtTrustView, TrustView } from "./trust.js";

/** What the quotes page shows. Every string in it is escaped when rendered. */
export interface PageView {
  /** Where things stand with the quotes service on this load. */
  status:
    | { kind: "ok" }
    | { kind: "unavailable"; reason: string }
    | {
        kind: "waiting-for-svid";
        /** Why there is no SVID, in one plain sentence (the gRPC detail is in the log). */
        reason: string;
        /** The tutorial step that fixes it, if waiting is not enough. */
        fix: string | undefined;
      };
  /** The last quotes received (kept when a later call fails). */
  quotes: readonly Quote[];
  /** When those quotes arrived; undefined before the first success. */
  lastUpdated: Date | undefined;
  identity: IdentityPanel;
  trust: TrustView;
}

/** What federation did, seen from the webapp. */
export interface IdentityPanel {
  spiffeId: string | undefined;
  svidExpiresAt: Date | undefined;
  /** The quotes service's ID as verified on the most recent connection. */
  verifiedPeer: string | undefined;
  /** Trust domains the webapp holds bundles for. */
  trustDomains: readonly string[];
  quotesUrl: string;
  expectedPeer: string;
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] as string);
}

/** The page's only script: reload after a second, as the original does. */
export const RELOAD_SCRIPT = "setTimeout(function () { location.reload(); }, 1000);";

/** Allows exactly the reload script and the inline style, nothing else. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  `script-src 'sha256-${createHash("sha256").update(RELOAD_SCRIPT).digest("base64")}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** HH:MM:SS in the server's time zone. */
export function clockTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function dateTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${clockTime(date)}`;
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 44rem; color: #222; }
h1 { font-size: 1.4rem; }
table { border-collapse: collapse; width: 100%; }
caption { caption-side: top; text-align: left; padding: 0.3rem 0; color: #555; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
.error, .waiting { padding: 0.6rem 0.8rem; margin: 0 0 1rem; border-radius: 4px; }
.error { background: #fde8e8; border: 1px solid #e0a0a0; }
.waiting { background: #fff6dd; border: 1px solid #e0c870; }
.panels { display: flex; flex-wrap: wrap; gap: 0 2rem; }
.panels > section { flex: 1 1 18rem; min-width: 0; }
.identity, .trust { margin-top: 1.5rem; font-size: 0.9rem; color: #444; }
.identity dt, .trust dt { font-weight: bold; margin-top: 0.3rem; }
.identity dd, .trust dd { margin-left: 1rem; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
.trust ul { margin: 0; padding-left: 1rem; list-style: square; }
.trust .issuer { font-weight: bold; }
`;

function statusBlock(status: PageView["status"]): string {
  switch (status.kind) {
    case "ok":
      return "";
    case "unavailable":
      return `<p class="error" role="alert"><strong>Quotes service unavailable</strong>: ${escapeHtml(status.reason)}</p>`;
    case "waiting-for-svid": {
      const fix = status.fix ? ` <strong class="fix">${escapeHtml(status.fix)}</strong>` : "";
      return (
        '<p class="waiting" role="status"><strong>Waiting for an X.509 SVID</strong> from the ' +
        `SPIRE Agent. <span class="reason">${escapeHtml(status.reason)}</span>${fix} ` +
        "This page reloads every second and shows the quotes as soon as the SVID arrives; " +
        "the service log has the agent's full answer.</p>"
      );
    }
  }
}

function quoteRow(quote: Quote): string {
  const symbol = `<td>${escapeHtml(quote.Symbol)}</td>`;
  if (quote.Time === null) return `<tr>${symbol}${"<td>-</td>".repeat(6)}</tr>`;
  const prices = [quote.Price, quote.Open, quote.Low, quote.High, quote.Close]
    .map((value) => `<td>${value.toFixed(2)}</td>`)
    .join("");
  return `<tr>${symbol}${prices}<td>${clockTime(quote.Time)}</td></tr>`;
}

function identityBlock(identity: IdentityPanel): string {
  const row = (term: string, value: string | undefined) =>
    `<dt>${term}</dt><dd>${value === undefined ? "-" : escapeHtml(value)}</dd>`;
  return (
    '<section class="identity"><h2>Identity</h2><dl>' +
    row("This webapp's SPIFFE ID", identity.spiffeId) +
    row("Its SVID expires", identity.svidExpiresAt && dateTime(identity.svidExpiresAt)) +
    row(
      "Quotes service verified as",
      identity.verifiedPeer ?? `(not yet; expecting ${identity.expectedPeer})`,
    ) +
    row("Quotes URL", identity.quotesUrl) +
    row(
      "Trust bundles held for",
      identity.trustDomains.length === 0 ? undefined : identity.trustDomains.join(", "),
    ) +
    "</dl></section>"
  );
}

function authorityText(authority: AuthorityView): string {
  return `${authority.fingerprint} (until ${dateTime(authority.notAfter)})`;
}

function trustBlock(trust: TrustView): string {
  const issuer = trust.quotesIssuer;
  const issuedBy = (trustDomain: string, authority: AuthorityView) =>
    issuer?.trustDomain === trustDomain && issuer.authority?.fingerprint === authority.fingerprint;
  const bundles = trust.bundles.map((bundle) => {
    const items = bundle.authorities
      .map((authority) =>
        issuedBy(bundle.trustDomain, authority)
          ? `<li class="issuer">${escapeHtml(authorityText(authority))}: issued the quotes service's certificate</li>`
          : `<li>${escapeHtml(authorityText(authority))}</li>`,
      )
      .join("");
    return (
      `<dt>${escapeHtml(bundle.trustDomain)}</dt>` +
      `<dd>changed ${escapeHtml(dateTime(bundle.changedAt))}; ` +
      `${bundle.authorities.length === 1 ? "1 authority" : `${bundle.authorities.length} authorities`} (SHA-256, not after):` +
      `<ul>${items}</ul></dd>`
    );
  });
  let issuerText = "(no connection verified yet)";
  if (issuer) {
    issuerText = issuer.authority
      ? `${issuer.trustDomain} authority ${authorityText(issuer.authority)}`
      : `no authority of the ${issuer.trustDomain} bundle held when it was verified`;
  }
  return (
    '<section class="trust"><h2>Trust</h2><dl>' +
    (bundles.length === 0 ? "<dt>Bundles</dt><dd>none yet</dd>" : bundles.join("")) +
    `<dt>Quotes service's certificate issued by</dt><dd>${escapeHtml(issuerText)}</dd>` +
    (trust.jwt === undefined ? "" : jwtTrustBlock(trust.jwt)) +
    "</dl></section>"
  );
}

/** JWT road: each trust domain's JWT authorities, the one that signed our token marked. */
function jwtTrustBlock(jwt: JwtTrustView): string {
  const signer = jwt.signedBy;
  const rows = jwt.bundles.map((bundle) => {
    const items = bundle.keyIds
      .map((keyId) =>
        signer?.trustDomain === bundle.trustDomain && signer.keyId === keyId
          ? `<li class="issuer">${escapeHtml(keyId)}: signed the webapp's current JWT-SVID</li>`
          : `<li>${escapeHtml(keyId)}</li>`,
      )
      .join("");
    return `<dt>${escapeHtml(bundle.trustDomain)} JWT authorities (key IDs)</dt><dd><ul>${items}</ul></dd>`;
  });
  const signedBy =
    signer === undefined
      ? "(no token yet)"
      : `${signer.trustDomain} key ${signer.keyId ?? "(no kid)"}`;
  return (
    (rows.length === 0 ? "<dt>JWT bundles</dt><dd>none yet</dd>" : rows.join("")) +
    `<dt>Webapp's JWT-SVID signed by</dt><dd>${escapeHtml(signedBy)}</dd>`
  );
}

/** The quotes page: status line, table, identity panel, and the one-second reload. */
export function renderQuotesPage(view: PageView): string {
  const caption = `Last Updated: ${view.lastUpdated ? clockTime(view.lastUpdated) : "never"}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Broker: stock quotes</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Stock quotes</h1>
${statusBlock(view.status)}
<table>
<caption>${escapeHtml(caption)}</caption>
<thead><tr><th>Symbol</th><th>Price</th><th>Open</th><th>Low</th><th>High</th><th>Close</th><th>Time</th></tr></thead>
<tbody>
${view.quotes.map(quoteRow).join("\n")}
</tbody>
</table>
<div class="panels">
${identityBlock(view.identity)}
${trustBlock(view.trust)}
</div>
<script>${RELOAD_SCRIPT}</script>
</body>
</html>
`;
}
