import {
  parsePort,
  type ServiceOptions,
  serviceOptionsParser,
  workloadIdOption,
} from "@federation-demo/service-kit";
import { Option } from "commander";
import type { SpiffeId } from "spiffe-node";

/** The stock quotes service's own options. */
interface QuotesServiceOwnOptions {
  /** The only client SPIFFE ID that gets quotes. */
  authorizedId: SpiffeId;
  /** Plain-HTTP /healthz on 127.0.0.1; undefined = off. */
  healthPort?: number;
}

/** The command line of the stock quotes service, checked. */
export type QuotesServiceOptions = ServiceOptions & QuotesServiceOwnOptions;

const ABOUT =
  "Serves stock quotes as JSON over SPIFFE mTLS, only to the authorized SPIFFE ID " +
  "(the stock market's side of the SPIRE federation tutorial).";
const PORT = { description: "HTTPS port to listen on", default: 8090 };

/** The quotes service's command line: the common options, --authorized-id, --health-port. */
export const parseOptions = serviceOptionsParser<QuotesServiceOwnOptions>(
  { name: "stock-quotes-service", description: ABOUT, port: PORT },
  (program) =>
    program
      .addOption(
        workloadIdOption(
          "--authorized-id <spiffe-id>",
          "the only client SPIFFE ID that gets quotes",
          "spiffe://broker.org/webapp",
        ),
      )
      .addOption(
        new Option(
          "--health-port <port>",
          "also serve plain-HTTP GET /healthz on 127.0.0.1 at this port (off by default)",
        ).argParser(parsePort),
      ),
);
