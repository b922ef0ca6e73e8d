import type { JwtSvidParams } from "../workloadapi/client.js";
import type { JwtSvid } from "./svid.js";

/** Anything that hands out the workload's JWT-SVID for an audience (a JwtSource...). */
export interface JwtSvidSource {
  /** A valid JWT-SVID for `params.audience`, fetched or cached. */
  fetchJwtSvid(params: JwtSvidParams): Promise<JwtSvid>;
}
