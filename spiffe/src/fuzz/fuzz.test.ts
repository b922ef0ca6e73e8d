// The short fuzz run of `npm test`: a fixed seed, so a failure here replays exactly.
// The long run is `npm run fuzz` (spiffe/src/fuzz/run.ts).

import { describe, test } from "node:test";
import { TARGETS } from "./targets.js";

/** Inputs per target: about 3 000 in all, a few seconds. */
const RUNS = 300;
const SEED = 20_2026;

describe("fuzz: readers of outside bytes throw only the library's typed errors", () => {
  for (const target of TARGETS) {
    test(target.name, () => target.check({ seed: SEED, numRuns: RUNS }));
  }
});
