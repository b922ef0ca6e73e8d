import type { BackoffOptions } from "@federation-demo/spiffe";

/**
 * How the demo's services retry the Workload API (refused with PERMISSION_DENIED until
 * their entry reaches the agent, or UNAVAILABLE while the agent restarts). The demo's
 * agents sync with their servers every second (docker/*\/agent.conf), so a cap of 1 s
 * keeps the wait after step 3 to about one sync; it costs at most one small call per
 * second per waiting workload, which a local agent does not notice. The library's own
 * default cap is 5 s, matching SPIRE's default sync interval.
 */
export const DEMO_WORKLOAD_API_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 1000 };
