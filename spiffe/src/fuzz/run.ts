// The long fuzz run: `npm run fuzz [-- --runs N] [--seed S] [--path P] [--target TEXT]`.
// Prints the seed first; fast-check's report on a finding gives the seed and path that
// replay it (`--seed S --path P --target <name>`).

import { parseArgs } from "node:util";
import { TARGETS } from "./targets.js";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "20000" },
    seed: { type: "string" },
    path: { type: "string" },
    target: { type: "string" },
  },
});
const numRuns = Number(values.runs);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const chosen = TARGETS.filter((t) => values.target === undefined || t.name.includes(values.target));
if (!Number.isInteger(numRuns) || numRuns < 1 || !Number.isInteger(seed) || chosen.length === 0) {
  console.error("usage: npm run fuzz -- [--runs N] [--seed S] [--path P] [--target TEXT]");
  process.exit(2);
}
console.log(`fuzz: seed ${seed}, ${numRuns} inputs per target, ${chosen.length} target(s)`);
let failed = 0;
for (const target of chosen) {
  const started = Date.now();
  try {
    target.check({ seed, numRuns, ...(values.path === undefined ? {} : { path: values.path }) });
    console.log(`ok    ${target.name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL  ${target.name}\n${error instanceof Error ? error.message : String(error)}`);
  }
}
console.log(`fuzz: ${chosen.length * numRuns} inputs, ${failed} target(s) failed`);
process.exitCode = failed === 0 ? 0 : 1;
