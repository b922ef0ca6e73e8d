// The library as a project outside this workspace gets it: `npm pack` makes the tarball, a
// fresh project in a temporary folder installs it with its dependencies from the npm
// registry, type-checks a program against it with TypeScript strict, and runs it (an SVID
// from a fake Workload API, one HTTPS and one gRPC call over SPIFFE mTLS), then loads it
// with require() from CommonJS. Needs the npm registry; uses only OS-picked ports.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const LIBRARY = join(ROOT, "spiffe");
// The sources of the consumer project; compiled, this file sits in test/dist/package/.
const FIXTURE = join(ROOT, "test", "package", "consumer");

// The parent `npm test` must not make the inner npm act on this workspace.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith("npm_config_workspace")),
);

async function sh(command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${stdout}\n${stderr}`, {
      cause: error,
    });
  }
}

/** The version ranges this repository itself uses, so the consumer gets the same ones. */
async function ranges(): Promise<Record<string, string>> {
  const read = async (path: string) =>
    JSON.parse(await readFile(join(ROOT, path), "utf8")) as Record<string, Record<string, string>>;
  const library = await read("spiffe/package.json");
  const root = await read("package.json");
  return { ...library.dependencies, ...library.peerDependencies, ...root.devDependencies };
}

describe("spiffe-node installed from its tarball by a project outside the workspace", {
  timeout: 600_000,
}, () => {
  let project: string;
  const timings: string[] = [];
  const timed = async <T>(label: string, step: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    const result = await step();
    timings.push(`${label} ${((Date.now() - start) / 1000).toFixed(1)} s`);
    return result;
  };

  before(async () => {
    project = await mkdtemp(join(tmpdir(), "spiffe-node-consumer-"));
    const packed = await timed("npm pack", () =>
      sh("npm", ["pack", "--json", "--pack-destination", project], LIBRARY),
    );
    const [{ filename }] = JSON.parse(packed) as [{ filename: string }];
    await writeFile(
      join(project, "package.json"),
      `${JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)}\n`,
    );
    for (const file of ["main.ts", "require.cjs", "tsconfig.json"]) {
      await copyFile(join(FIXTURE, file), join(project, file));
    }
    const wanted = await ranges();
    const packages = [
      "@grpc/grpc-js",
      "undici",
      // Only spiffe-node/testing needs these (optional peer dependencies).
      "@peculiar/x509",
      "reflect-metadata",
      "typescript",
      "@types/node",
    ].map((name) => `${name}@${wanted[name]}`);
    await timed("npm install", () =>
      sh("npm", ["install", "--no-audit", "--no-fund", `./${filename}`, ...packages], project),
    );
  });

  after(async () => {
    console.log(`consumer project: ${timings.join(", ")}`);
    await rm(project, { recursive: true, force: true });
  });

  test("its program type-checks with TypeScript strict", async () => {
    await timed("tsc", () =>
      sh(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "."], project),
    );
  });

  test("its program fetches an SVID and makes SPIFFE mTLS calls over HTTPS and gRPC", async () => {
    const stdout = await timed("run", () => sh(process.execPath, ["dist/main.js"], project));
    assert.deepEqual(stdout.trim().split("\n"), [
      "fetched SVID spiffe://client.example/app",
      "https peer spiffe://client.example/app",
      "grpc peer spiffe://client.example/app",
    ]);
  });

  test("require() from CommonJS loads it", async () => {
    const stdout = await sh(process.execPath, ["require.cjs"], project);
    assert.equal(stdout.trim(), "require: spiffe://client.example/app function function function");
  });
});
