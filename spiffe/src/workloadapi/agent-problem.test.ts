// diagnoseAgentProblem against real grpc-js failures: each case makes the condition for
// real (no socket, a stale socket, a closed folder...) and classifies the error the
// Workload API client really returns.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { status } from "@grpc/grpc-js";
import { FakeWorkloadApi } from "../testing/fake-workload-api.js";
import { WorkloadApiAddress } from "./address.js";
import { diagnoseAgentProblem } from "./agent-problem.js";
import { WorkloadApiClient, workloadApiErrorFromStatus } from "./client.js";
import { WorkloadApiError } from "./errors.js";

/** The error one FetchX509SVID call to `address` ends with. */
async function errorFrom(address: string): Promise<WorkloadApiError> {
  const client = new WorkloadApiClient({ address });
  try {
    await client.fetchX509Context();
  } catch (error) {
    assert.ok(error instanceof WorkloadApiError, `a WorkloadApiError, got ${String(error)}`);
    return error;
  } finally {
    client.close();
  }
  assert.fail(`${address} answered with an SVID`);
}

async function diagnose(address: string) {
  return diagnoseAgentProblem(await errorFrom(address), WorkloadApiAddress.parse(address));
}

/** A socket file nobody listens on: its process was killed, so it could not remove it. */
async function staleSocket(path: string): Promise<void> {
  const script = `require("node:net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`listener exited (${code})`)));
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

describe("diagnoseAgentProblem", { timeout: 30_000 }, () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "agent-problem-"));
    await chmod(dir, 0o755);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("no socket at the path: no-socket, with the path", async () => {
    const path = join(dir, "missing.sock");
    const problem = await diagnose(`unix://${path}`);
    assert.equal(problem.kind, "no-socket");
    assert.equal(problem.address.socketPath, path);
    assert.match(problem.error?.message ?? "", /UNAVAILABLE/, "keeps the gRPC detail");
  });

  test("a folder missing on the way: no-socket", async () => {
    assert.equal(
      (await diagnose(`unix://${join(dir, "no-folder", "agent.sock")}`)).kind,
      "no-socket",
    );
  });

  test("a plain file at the path: not-a-socket", async () => {
    const path = join(dir, "file.sock");
    await writeFile(path, "");
    assert.equal((await diagnose(`unix://${path}`)).kind, "not-a-socket");
  });

  test("a socket nobody listens on: connection-refused", async () => {
    const path = join(dir, "stale.sock");
    await staleSocket(path);
    assert.equal((await diagnose(`unix://${path}`)).kind, "connection-refused");
  });

  test("nothing listening at a tcp address: unreachable", async () => {
    assert.equal((await diagnose("tcp://127.0.0.1:1")).kind, "unreachable");
  });

  test("the agent answers PERMISSION_DENIED: no-entry", async () => {
    const fake = await FakeWorkloadApi.start();
    try {
      fake.failWith(status.PERMISSION_DENIED, "no identity issued");
      const problem = await diagnose(fake.address);
      assert.equal(problem.kind, "no-entry");
      assert.match(problem.error?.message ?? "", /no identity issued/);
    } finally {
      await fake.stop();
    }
  });

  test("no error yet: no-answer-yet; other errors: other", () => {
    const address = WorkloadApiAddress.parse("unix:///x.sock");
    assert.equal(diagnoseAgentProblem(undefined, address).kind, "no-answer-yet");
    const internal = workloadApiErrorFromStatus(
      { code: status.INTERNAL, details: "boom" },
      address,
    );
    assert.equal(diagnoseAgentProblem(internal, address).kind, "other");
    assert.equal(diagnoseAgentProblem(new Error("not ours"), address).kind, "other");
  });

  // connect() on a unix socket needs write permission on it and search permission on its
  // folders. Root may do both anywhere by its capabilities (CAP_DAC_OVERRIDE...), so as
  // root the check runs in a child with every capability dropped, on files owned by
  // another user; it stays uid 0, so it can still read this library wherever it lies.
  test("a socket this user may not open: socket-permission-denied", async () => {
    const openSocket = join(dir, "someone-elses.sock");
    await staleSocket(openSocket);
    await chmod(openSocket, 0o700);
    const closedFolder = join(dir, "closed");
    await mkdir(closedFolder, { mode: 0o700 });
    await staleSocket(join(closedFolder, "agent.sock"));
    const addresses = [`unix://${openSocket}`, `unix://${join(closedFolder, "agent.sock")}`];

    if (process.getuid?.() !== 0) {
      // The folder's owner may always search it: only the socket's mode can be tested.
      await chmod(openSocket, 0o000);
      assert.equal((await diagnose(`unix://${openSocket}`)).kind, "socket-permission-denied");
      return;
    }
    const nobody = 65534;
    await chown(openSocket, nobody, nobody);
    await chown(closedFolder, nobody, nobody);
    const library = fileURLToPath(new URL("../index.js", import.meta.url));
    const script = `
      const { WorkloadApiAddress, WorkloadApiClient, diagnoseAgentProblem } = await import(${JSON.stringify(library)});
      for (const address of ${JSON.stringify(addresses)}) {
        const client = new WorkloadApiClient({ address });
        const error = await client.fetchX509Context().then(() => undefined, (e) => e);
        client.close();
        console.log(diagnoseAgentProblem(error, WorkloadApiAddress.parse(address)).kind);
      }`;
    const run = spawnSync(
      "setpriv",
      [
        ...["--bounding-set=-all", "--inh-caps=-all"],
        ...[process.execPath, "--input-type=module", "-e", script],
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.equal(
      run.status,
      0,
      `the check without capabilities failed: ${run.error ?? ""}${run.stderr}`,
    );
    assert.deepEqual(run.stdout.trim().split("\n"), [
      "socket-permission-denied",
      "socket-permission-denied",
    ]);
  });
});
