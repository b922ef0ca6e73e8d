#!/usr/bin/env node
// Runs every compiled test file (*.test.js under a dist/ folder) with Node's test
// runner. Node 20's runner has no glob support, so the files are listed here.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const skipDirs = new Set(["node_modules", ".git", ".spire", ".data", "tools", ".stryker-tmp"]);

function findTests(dir, insideDist, found) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (skipDirs.has(entry.name)) continue;
      findTests(join(dir, entry.name), insideDist || entry.name === "dist", found);
    } else if (insideDist && entry.name.endsWith(".test.js")) {
      found.push(relative(root, join(dir, entry.name)));
    }
  }
  return found;
}

// Optional filters: `npm test -- spiffe` runs only files whose path contains "spiffe".
const filters = process.argv.slice(2);
const files = findTests(root, false, [])
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();
if (files.length === 0) {
  console.error("run-tests: no compiled test files found; did `npm run build` run?");
  process.exit(1);
}
// One file at a time: the end-to-end tests (local and Docker mode) share the demo's fixed
// ports (8080 and SPIRE's), so they must never overlap.
const result = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...files], {
  cwd: root,
  stdio: "inherit",
});
process.exit(result.status ?? 1);
