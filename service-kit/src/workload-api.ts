import type { Logger } from "pino";
import { type BackoffOptions, JwtSource, type WorkloadApiAddress } from "spiffe-node";
import type { AuthMode } from "./command-line.js";

/**
 * How the demo's services retry the Workload API (refused with PERMISSION_DENIED until
 * their entry reaches the agent, or UNAVAILABLE while the agent restarts). The demo's
 * SPIRE servers and agents pass a new entry on within a second (docker/*\/*.conf), so a
 * cap of 500 ms keeps the wait after step 3 short; it costs at most two small calls a
 * second per waiting workload, which a local agent does not notice. The library's own
 * default cap is 5 s, matching SPIRE's default agent sync interval.
 */
export const DEMO_WORKLOAD_API_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 500 };

/**
 * On the JWT road (`--auth jwt`), a JwtSource on the service's Workload API address with
 * the demo's backoff, closed at shutdown; on the mTLS road, undefined.
 */
export function jwtSourceFor(context: {
  options: { auth: AuthMode; socket: WorkloadApiAddress };
  log: Logger;
  onShutdown(close: () => unknown): void;
}): JwtSource | undefined {
  if (context.options.auth !== "jwt") return undefined;
  const source = new JwtSource({
    address: context.options.socket,
    backoff: DEMO_WORKLOAD_API_BACKOFF,
    logger: context.log.child({ component: "workload-api-jwt" }),
  });
  context.onShutdown(() => source.close());
  return source;
}
