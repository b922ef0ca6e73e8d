import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { FakeWorkloadApi, type IssuedSvid, TestCa } from "spiffe-node/testing";

// Runs each example as its own process, as a user would, each side against its own fake
// agent (broker.org for the clients, stocksmarket.org for the servers), federated.

const WEBAPP = "spiffe://broker.org/webapp";
const QUOTES = "spiffe://stocksmarket.org/quotes-service";

let brokerAgent: FakeWorkloadApi;
let stocksAgent: FakeWorkloadApi;

function svid(spiffeId: string, issued: IssuedSvid, ca: TestCa, federated: TestCa) {
  return {
    svids: [
      { spiffeId, chainDer: issued.chainDer, keyDer: issued.keyDer, bundleDer: ca.bundleDer() },
    ],
    federatedBundles: { [`spiffe://${federated.trustDomain}`]: federated.bundleDer() },
  };
}

before(async () => {
  const [brokerCa, stocksCa] = await Promise.all([
    TestCa.create("broker.org"),
    TestCa.create("stocksmarket.org"),
  ]);
  [brokerAgent, stocksAgent] = await Promise.all([
    FakeWorkloadApi.start(),
    FakeWorkloadApi.start(),
  ]);
  brokerAgent.setX509(svid(WEBAPP, await brokerCa.issue(WEBAPP), brokerCa, stocksCa));
  stocksAgent.setX509(svid(QUOTES, await stocksCa.issue(QUOTES), stocksCa, brokerCa));
});

after(async () => {
  await Promise.all([brokerAgent.stop(), stocksAgent.stop()]);
});

function run(example: string, agent: FakeWorkloadApi, args: string[] = []): ChildProcess {
  const script = fileURLToPath(new URL(`${example}.js`, import.meta.url));
  return spawn(process.execPath, [script, ...args], {
    env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: agent.address, PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
}

/** Everything the process writes to stdout until it exits, and its exit code. */
async function output(child: ChildProcess): Promise<{ code: number | null; stdout: string }> {
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  const [code] = await once(child, "exit");
  return { code, stdout };
}

/** Starts a server example and waits for its "listening on ..." line. */
async function startServer(example: string): Promise<{ child: ChildProcess; address: string }> {
  const child = run(example, stocksAgent);
  let seen = "";
  for await (const chunk of child.stdout ?? []) {
    seen += chunk;
    const match = /listening on (\S+)/.exec(seen);
    if (match?.[1]) return { child, address: match[1] };
  }
  throw new Error(`${example} exited before listening: ${seen}`);
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const [code] = await exited;
  assert.equal(code, 0, "the server shuts down cleanly on SIGTERM");
}

describe("examples", { timeout: 60_000 }, () => {
  test("the undici client calls the Express server over SPIFFE mTLS", async () => {
    const { child, address } = await startServer("https-server");
    try {
      const client = await output(run("https-client", brokerAgent, [address]));
      assert.equal(client.code, 0);
      assert.equal(client.stdout.trim(), `200 {"hello":"${WEBAPP}"}`);
    } finally {
      await stopServer(child);
    }
  });

  test("the gRPC client calls the gRPC server over SPIFFE mTLS", async () => {
    const { child, address } = await startServer("grpc-server");
    try {
      const client = await output(run("grpc-client", brokerAgent, [address]));
      assert.equal(client.code, 0);
      assert.equal(client.stdout.trim(), `hello webapp, you are ${WEBAPP}`);
    } finally {
      await stopServer(child);
    }
  });
});
