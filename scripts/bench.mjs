#!/usr/bin/env node
// `npm run bench` (after `npm run build`): the micro-benchmarks of the SPIFFE hot paths, then
// the system benchmark of both services under real load generators. `node scripts/bench.mjs
// micro` or `... system` runs one part, `... never-closing` only the system benchmark's
// never-closing phase. See the README's Benchmarks section.
import { runMicroBenchmarks } from "./bench/micro.mjs";
import { stopAll } from "./bench/processes.mjs";
import { runSystemBenchmark } from "./bench/system.mjs";

const part = process.argv[2] ?? "all";
if (!["all", "micro", "system", "never-closing"].includes(part)) {
  console.error(`usage: node scripts/bench.mjs [micro|system|never-closing] (got "${part}")`);
  process.exit(2);
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    stopAll();
    process.exit(130);
  });
}
try {
  if (part === "all" || part === "micro") await runMicroBenchmarks();
  if (part === "never-closing") await runSystemBenchmark({ phases: "never-closing" });
  else if (part !== "micro") await runSystemBenchmark();
} catch (error) {
  stopAll();
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
