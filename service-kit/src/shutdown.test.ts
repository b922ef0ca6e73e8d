import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const fixture = fileURLToPath(new URL(`./shutdown.fixture${extension}`, import.meta.url));

interface Run {
  child: ChildProcess;
  lines: { msg: string; reason?: string }[];
  /** Resolves with the exit code and how long after `since()` the process exited. */
  exited: Promise<{ code: number | null; afterMs: number }>;
  since(): void;
}

/** Starts the fixture; the test's end kills it if it is still running (a failed test). */
function run(t: { after: (fn: () => void) => void }, args: string[]): Run {
  // process.execArgv carries tsx's loader when these tests run from source.
  const child = spawn(process.execPath, [...process.execArgv, fixture, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: { msg: string }[] = [];
  let pending = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const complete = pending.split("\n");
    pending = complete.pop() ?? "";
    for (const text of complete) lines.push(JSON.parse(text));
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let start = Date.now();
  const exited = once(child, "exit").then(([code]) => ({
    code: code as number | null,
    afterMs: Date.now() - start,
  }));
  return {
    child,
    lines,
    exited,
    since: () => {
      start = Date.now();
    },
  };
}

async function untilLogged(service: Run, msg: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!service.lines.some((line) => line.msg === msg)) {
    if (Date.now() > deadline) assert.fail(`no "${msg}" log line within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("handleShutdown", { timeout: 20_000 }, () => {
  test("SIGTERM: closes, then exits 0 as soon as closing settles", async (t) => {
    const service = run(t, ["settles", "60000"]);
    await untilLogged(service, "ready");
    service.since();
    service.child.kill("SIGTERM");
    const { code, afterMs } = await service.exited;
    assert.equal(code, 0);
    // Far below the 60 s grace period: it did not wait for the timer.
    assert.ok(afterMs < 30_000, `exited after ${afterMs} ms`);
    assert.deepEqual(
      service.lines.filter((line) => line.msg === "shutting down").map((line) => line.reason),
      ["SIGTERM"],
    );
  });

  test("closing that never settles: the process exits anyway once the grace period is over", async (t) => {
    const service = run(t, ["hangs", "300"]);
    await untilLogged(service, "ready");
    service.since();
    service.child.kill("SIGINT");
    const { code, afterMs } = await service.exited;
    assert.equal(code, 0);
    assert.ok(afterMs >= 300, `exited after ${afterMs} ms, before the grace period ended`);
    assert.ok(
      service.lines.some((line) => line.msg === "shutting down" && line.reason === "SIGINT"),
    );
  });

  test("a failed start-up logs why and exits 1, even if closing hangs", async (t) => {
    const service = run(t, ["hangs", "300", "startup-failure"]);
    const { code } = await service.exited;
    assert.equal(code, 1);
    assert.ok(service.lines.some((line) => line.msg === "failed to start"));
    assert.ok(
      service.lines.some(
        (line) => line.msg === "shutting down" && line.reason === "start-up failed",
      ),
    );
  });
});
