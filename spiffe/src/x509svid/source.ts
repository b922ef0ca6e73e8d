import type { X509Svid } from "./svid.js";

/** Anything that can hand out the workload's current SVID (an X509Source, a fixed SVID...). */
export interface X509SvidSource {
  /** The current SVID, or undefined when there is none (yet, or any more). */
  getX509Svid(): X509Svid | undefined;
}
