// Helpers for the end-to-end tests: run the project's own scripts, reach SPIRE through
// scripts/lib.sh (so the tests use the same sockets and names as the scripts), and read
// the local demo's pid files.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root: the nearest folder above this file whose package.json has workspaces. */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && "workspaces" in JSON.parse(readFileSync(manifest, "utf8"))) {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the project root above the test files");
    dir = parent;
  }
}

export const ROOT = findRoot();
export const DATA = join(ROOT, ".data");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command in the project root (no terminal), capturing its output. */
export function run(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 180_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

export type DemoMode = "local" | "docker";

/** Fails with the command's output unless it exited 0; returns the result. */
export function expectOk(result: RunResult, what: string): RunResult {
  assert.equal(
    result.code,
    0,
    `${what} exited with ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
  );
  return result;
}

/** What a SPIRE server logs each time it fetched trustDomain's bundle from its bundle endpoint. */
export function bundleRefreshedLine(trustDomain: string): string {
  return `msg="Bundle refreshed" subsystem_name=bundle_client trust_domain=${trustDomain}`;
}

/**
 * Runs one of the project's scripts (local mode unless told) and fails with its output if it
 * fails. `choices` are further flags, e.g. ["--profile", "https_web"].
 */
export async function runScript(
  script: string,
  timeoutMs = 240_000,
  mode: DemoMode = "local",
  choices: readonly string[] = [],
): Promise<RunResult> {
  const result = await run(join(ROOT, script), ["--mode", mode, ...choices], { timeoutMs });
  if (result.code !== 0) {
    throw new Error(
      `${script} exited with ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  }
  // Warnings (e.g. a folder permission the script had to change) belong in the test output.
  const warnings = result.stderr.split("\n").filter((line) => line.includes("WARNING"));
  if (warnings.length > 0) console.log(`${script}:\n${warnings.join("\n")}`);
  return result;
}

/** `spire-server ARGS` against one trust domain's server, through scripts/lib.sh. */
export function spireServer(
  trustDomain: string,
  args: readonly string[],
  mode: DemoMode = "local",
): Promise<RunResult> {
  return run("bash", [
    "-c",
    'source scripts/lib.sh && demo_init --mode "$0" && spire_server "$@"',
    mode,
    trustDomain,
    ...args,
  ]);
}

/** `compose ARGS` (docker compose or docker-compose, as scripts/lib.sh chooses) on docker-compose.yml. */
export function compose(args: readonly string[], timeoutMs = 180_000): Promise<RunResult> {
  return run(
    "bash",
    ["-c", 'source scripts/lib.sh && demo_init --mode docker && compose "$@"', "compose", ...args],
    { timeoutMs },
  );
}

/** The Workload API socket of the agent serving a trust domain's workload, from scripts/lib.sh. */
export async function agentSocket(trustDomain: string): Promise<string> {
  const result = await run("bash", [
    "-c",
    'source scripts/lib.sh && demo_init --mode local && agent_socket "$1"',
    "agent-socket",
    trustDomain,
  ]);
  return result.stdout.trim();
}

/** The pids recorded in .data/pids, by process name. */
export function recordedPids(): Map<string, number> {
  const pids = new Map<string, number>();
  const dir = join(DATA, "pids");
  if (!existsSync(dir)) return pids;
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".pid")) continue;
    const pid = Number(readFileSync(join(dir, file), "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(pid) && pid > 0) pids.set(file.slice(0, -".pid".length), pid);
  }
  return pids;
}

/** True while a process exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Polls check every intervalMs until it returns a value or timeoutMs passes. */
export async function poll<T>(
  timeoutMs: number,
  intervalMs: number,
  check: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface QuotesPage {
  rows: string[][];
  unavailable: boolean;
  verifiedPeer: string | undefined;
  html: string;
}

/** GET http://localhost:8080/quotes and the parts of the page the tests look at. */
export async function fetchQuotesPage(): Promise<QuotesPage | undefined> {
  let html: string;
  try {
    const response = await fetch("http://localhost:8080/quotes", {
      signal: AbortSignal.timeout(5000),
    });
    if (response.status !== 200) return undefined;
    html = await response.text();
  } catch {
    return undefined;
  }
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? "";
  const rows = [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...(row[1] ?? "").matchAll(/<td>([^<]*)<\/td>/g)].map((cell) => cell[1] ?? ""),
  );
  const peer = /Quotes service verified as<\/dt>\s*<dd>([^<]*)<\/dd>/.exec(html)?.[1];
  return {
    rows,
    unavailable: html.includes("Quotes service unavailable"),
    verifiedPeer: peer,
    html,
  };
}

/** A row whose Price column holds a number with two decimals. */
export function hasPrice(row: readonly string[]): boolean {
  return /^-?\d+\.\d{2}$/.test(row[1] ?? "");
}

/** The page shows quotes: 11 rows, at least one priced, and no error line. */
export function showsQuotes(page: QuotesPage | undefined): page is QuotesPage {
  return (
    page !== undefined && page.rows.length === 11 && !page.unavailable && page.rows.some(hasPrice)
  );
}

/** Polls the page until it shows quotes (showsQuotes), or gives up after timeoutMs. */
export function waitForQuotesPage(
  timeoutMs: number,
  intervalMs = 250,
): Promise<QuotesPage | undefined> {
  return poll(timeoutMs, intervalMs, async () => {
    const page = await fetchQuotesPage();
    return showsQuotes(page) ? page : undefined;
  });
}

/** Asserts that each trust domain's server lists the other's bundle, and not its own. */
export async function assertEachListsTheOther(mode: DemoMode = "local"): Promise<void> {
  for (const [td, other] of [
    ["broker.org", "stocksmarket.org"],
    ["stocksmarket.org", "broker.org"],
  ] as const) {
    const list = await spireServer(td, ["bundle", "list"], mode);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      new RegExp(`\\* ${other.replace(".", "\\.")}\\n`),
      `${td} lists ${other}`,
    );
    assert.doesNotMatch(
      list.stdout,
      new RegExp(`\\* ${td.replace(".", "\\.")}\\n`),
      `${td} does not list itself`,
    );
  }
}

/** Polls the page until it shows 11 rows that all carry a price, or gives up after timeoutMs. */
export function waitForPricedPage(timeoutMs: number): Promise<QuotesPage | undefined> {
  return poll(timeoutMs, 300, async () => {
    const page = await fetchQuotesPage();
    return page && page.rows.length === 11 && page.rows.every(hasPrice) && !page.unavailable
      ? page
      : undefined;
  });
}
