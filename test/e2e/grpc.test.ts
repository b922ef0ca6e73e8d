// spiffe-node/grpc against real SPIRE in local mode: after the tutorial's steps 1-3 (the
// project's scripts, unchanged), the gRPC examples run as the demo's two workloads, each
// with its own agent's Workload API, and the client's call crosses the federation.
//
// Needs root to run each side as its unix user (as the demo does; otherwise both run as
// the current user, which the entries then select by uid) and the SPIRE binaries.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { agentSocket, isAlive, ROOT, recordedPids, run, runScript } from "./demo.js";

const EXAMPLES = join(ROOT, "spiffe", "examples", "dist");
const asRoot = process.getuid?.() === 0;

/** Runs an example as `user` (when root), on the agent of `trustDomain`. */
async function example(
  name: string,
  user: string,
  trustDomain: string,
  args: string[] = [],
): Promise<ChildProcess> {
  const socket = `unix://${await agentSocket(trustDomain)}`;
  const node = [process.execPath, join(EXAMPLES, `${name}.js`), ...args];
  const ids = asRoot ? (await run("id", ["-u", user])).stdout.trim() : "";
  const gid = asRoot ? (await run("id", ["-g", user])).stdout.trim() : "";
  const command = asRoot
    ? ["setpriv", `--reuid=${ids}`, `--regid=${gid}`, "--init-groups", ...node]
    : node;
  const [file = "", ...rest] = command;
  return spawn(file, rest, {
    cwd: ROOT,
    env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: socket, PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
}

describe("gRPC with SPIFFE mTLS between the demo's workloads, on real SPIRE", {
  timeout: 600_000,
}, () => {
  const children: ChildProcess[] = [];

  before(async () => {
    for (const bin of ["spire-server", "spire-agent"]) {
      assert.ok(
        existsSync(join(ROOT, ".spire", "bin", bin)),
        `${bin} is missing from .spire/bin: run scripts/install-spire.sh first`,
      );
    }
    const running = [...recordedPids()].filter(([, pid]) => isAlive(pid));
    assert.deepEqual(running, [], "a local demo is running: stop it with npm run stop first");
    await runScript("build.sh");
    await runScript("scripts/start-servers.sh");
    await runScript("1-start-spire-agents.sh");
    await runScript("2-bootstrap-federation.sh");
    // Creates the workload users when root, as the tutorial's containers have them.
    await runScript("scripts/start-services.sh");
    await runScript("3-create-registration-entries.sh");
  });

  after(async () => {
    for (const child of children) child.kill("SIGKILL");
    await run(join(ROOT, "scripts/stop.sh"), ["--mode", "local"], { timeoutMs: 120_000 });
  });

  it("the webapp calls the quotes service and the server sees the webapp's ID", async () => {
    const server = await example("grpc-server", "quotes-service", "stocksmarket.org");
    children.push(server);
    let address: string | undefined;
    let seen = "";
    for await (const chunk of server.stdout ?? []) {
      seen += chunk;
      address = /listening on (\S+)/.exec(seen)?.[1];
      if (address) break;
    }
    assert.ok(address, `the gRPC server did not start: ${seen}`);

    const client = await example("grpc-client", "webapp", "broker.org", [address]);
    children.push(client);
    let output = "";
    client.stdout?.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    const code = await new Promise((resolve) => client.once("exit", resolve));
    assert.equal(code, 0, output);
    assert.equal(output.trim(), "hello webapp, you are spiffe://broker.org/webapp");
  });
});
