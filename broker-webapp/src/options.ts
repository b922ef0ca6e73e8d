import {
  type ServiceOptions,
  serviceOptionsParser,
  workloadIdOption,
} from "@federation-demo/service-kit";
import { InvalidArgumentError, Option } from "commander";
import type { SpiffeId } from "spiffe-node";

/** The broker webapp's own options. */
interface WebappOwnOptions {
  /** Where the stock quotes service serves its quotes. */
  quotesUrl: URL;
  /** The SPIFFE ID the quotes service must present. */
  quotesId: SpiffeId;
}

/** The command line of the broker webapp, checked. */
export type WebappOptions = ServiceOptions & WebappOwnOptions;

/** A --quotes-url value: an https: URL without user info. */
export function parseQuotesUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(
      "not a URL (expected e.g. https://stock-quotes-service:8090/quotes).",
    );
  }
  if (url.protocol !== "https:") {
    throw new InvalidArgumentError(
      "the quotes service speaks HTTPS with SPIFFE mTLS, so the URL must start with https://.",
    );
  }
  if (url.username || url.password) {
    throw new InvalidArgumentError("user info in the URL is not used by SPIFFE mTLS; remove it.");
  }
  return url;
}

const PORT = { description: "HTTP port for the web page", default: 8080 };
const ABOUT =
  "Shows stock quotes fetched over SPIFFE mTLS from the stock quotes service (the broker's side of the SPIRE federation tutorial).";

/** The webapp's command line: the services' common options, then --quotes-url and --quotes-id. */
export const parseOptions = serviceOptionsParser<WebappOwnOptions>(
  { name: "broker-webapp", description: ABOUT, port: PORT },
  (program) =>
    program
      .addOption(
        new Option("--quotes-url <url>", "where the stock quotes service serves its quotes")
          .argParser(parseQuotesUrl)
          .default(
            parseQuotesUrl("https://stock-quotes-service:8090/quotes"),
            "https://stock-quotes-service:8090/quotes",
          ),
      )
      .addOption(
        workloadIdOption(
          "--quotes-id <spiffe-id>",
          "the SPIFFE ID the quotes service must present",
          "spiffe://stocksmarket.org/quotes-service",
        ),
      ),
);
