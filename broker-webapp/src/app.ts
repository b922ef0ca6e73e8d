import {
  adviseOnMissingSvid,
  createExpressApp,
  errorAnswers,
  methodNotAllowed,
  notFound,
  svidHealth,
} from "@federation-demo/service-kit";
import type { Express } from "express";
import type { Logger } from "pino";
import type { SpiffeId, X509Source } from "spiffe-node";
import { CoalescedCall } from "./coalesce.js";
import { CONTENT_SECURITY_POLICY, type PageView, renderQuotesPage } from "./page.js";
import type { Quote } from "./quote.js";
import { type BundleHistory, type JwtTrustView, type TrustView, trustJson } from "./trust.js";
import type { QuotesClient } from "./upstream.js";

/** The parts of X509Source the webapp reads. */
export type IdentitySource = Pick<
  X509Source,
  "getX509Svid" | "getX509Bundles" | "lastError" | "address" | "refusedUpdates" | "lastRefusal"
>;

/** The parts of QuotesClient the webapp uses. */
export type QuotesFetcher = Pick<
  QuotesClient,
  "fetchQuotes" | "verifiedPeer" | "peerIssuer" | "handshakes" | "retries" | "url"
>;

/** Outcome of the most recent call to the quotes service. */
export type UpstreamResult =
  | { ok: true; at: Date }
  | { ok: false; at: Date; reason: string }
  | undefined;

/** What the webapp is built from. */
export interface WebappDeps {
  source: IdentitySource;
  client: QuotesFetcher;
  quotesId: SpiffeId;
  /** The bundles held and when each changed (fed from the source's bundlesChanged). */
  bundleHistory: BundleHistory;
  /** JWT road: the JWT authorities and the signer of our current token, for the trust panel. */
  jwtTrust?: () => JwtTrustView;
  log: Logger;
}

/** GET /quotes (the page), GET /healthz (JSON), GET / (redirect); 405 for other methods. */
export function createWebapp({
  source,
  client,
  quotesId,
  bundleHistory,
  jwtTrust,
  log,
}: WebappDeps): Express {
  let lastQuotes: readonly Quote[] = [];
  let lastUpdated: Date | undefined;
  let lastResult: UpstreamResult;

  const identity = (): PageView["identity"] => {
    const svid = source.getX509Svid();
    return {
      spiffeId: svid?.id.toString(),
      svidExpiresAt: svid?.expiresAt,
      verifiedPeer: client.verifiedPeer?.toString(),
      trustDomains: source
        .getX509Bundles()
        .trustDomains()
        .map((td) => td.name),
      quotesUrl: client.url.toString(),
      expectedPeer: quotesId.toString(),
    };
  };

  const trust = (): TrustView => ({
    bundles: bundleHistory.view(),
    quotesIssuer: client.peerIssuer,
    ...(jwtTrust === undefined ? {} : { jwt: jwtTrust() }),
  });

  // Page loads that arrive while a call to the quotes service is in flight share it
  // (its quotes or its error); a load arriving after it settled makes a new call.
  const upstreamCall = new CoalescedCall(async (): Promise<PageView["status"]> => {
    try {
      lastQuotes = await client.fetchQuotes();
      lastUpdated = new Date();
      if (lastResult?.ok === false) log.info({ url: client.url.toString() }, "quotes service back");
      lastResult = { ok: true, at: lastUpdated };
      return { kind: "ok" };
    } catch (error) {
      const reason = (error as Error).message;
      log.warn({ url: client.url.toString(), reason }, "quotes service unavailable");
      lastResult = { ok: false, at: new Date(), reason };
      return { kind: "unavailable", reason };
    }
  });

  const loadQuotes = async (): Promise<PageView["status"]> => {
    if (!source.getX509Svid()) {
      const { reason, fix } = adviseOnMissingSvid(source);
      return { kind: "waiting-for-svid", reason, fix };
    }
    return upstreamCall.run();
  };

  const app = createExpressApp();

  // The loads that shared a call get one page, rendered (after the call, so after they all
  // arrived) by the first of them: the rendering and its garbage are not repeated per load.
  // (A string, not a Buffer: Node writes a string body together with the headers, in one
  // system call; a Buffer body goes out in a second one.)
  let rendered: { status: PageView["status"]; page: string } | undefined;
  app.get("/quotes", async (_req, res) => {
    const status = await loadQuotes();
    if (rendered?.status !== status) {
      const page = renderQuotesPage({
        status,
        quotes: lastQuotes,
        lastUpdated,
        identity: identity(),
        trust: trust(),
      });
      rendered = { status, page };
    }
    res
      .set({
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
      })
      .type("html")
      .send(rendered.page);
  });
  app.all("/quotes", methodNotAllowed("text"));

  app.get("/healthz", (_req, res) => {
    res.set("Cache-Control", "no-store").json({
      ...svidHealth(source),
      upstream: {
        url: client.url.toString(),
        lastResult:
          lastResult === undefined
            ? null
            : {
                ok: lastResult.ok,
                at: lastResult.at.toISOString(),
                ...(lastResult.ok ? {} : { reason: lastResult.reason }),
              },
        verifiedPeer: client.verifiedPeer?.toString() ?? null,
        tlsHandshakes: client.handshakes,
        retries: client.retries,
        calls: upstreamCall.runs,
        sharedLoads: upstreamCall.joined,
      },
      trust: trustJson(trust()),
    });
  });
  app.all("/healthz", methodNotAllowed("text"));

  app.get("/", (_req, res) => {
    res.redirect(302, "/quotes");
  });

  app.use(notFound("text", "the quotes are at /quotes"));
  app.use(errorAnswers("text", log));
  return app;
}
