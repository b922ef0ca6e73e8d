// The tutorial's other roads, end to end in local mode against real SPIRE (the release in
// .env), one lean flow each (federation.test.ts covers the tutorial's own road in depth):
//   - Web PKI bundle endpoints (--profile https_web), relationships in the configs: nobody runs
//     bundle set; a bundle endpoint whose certificate the other server does not trust fails
//     visibly, and works once it serves the right certificate;
//   - SPIFFE authentication with relationships made at run time (--federation api):
//     step 2 runs `spire-server federation create` with the bootstrap bundle.
// Needs root and the SPIRE binaries, like federation.test.ts; without them it fails and says so.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  assertEachListsTheOther,
  bundleRefreshedLine,
  DATA,
  isAlive,
  poll,
  ROOT,
  type RunResult,
  recordedPids,
  run,
  runScript,
  spireServer,
  waitForPricedPage,
} from "./demo.js";

const BROKER = "broker.org";
const STOCKS = "stocksmarket.org";
const QUOTES_ID = "spiffe://stocksmarket.org/quotes-service";
const PAIRS = [
  [BROKER, STOCKS, "spire-server-broker"],
  [STOCKS, BROKER, "spire-server-stocks"],
] as const;

function refreshedIn(server: string, other: string): boolean {
  return readFileSync(join(DATA, "logs", `${server}.log`), "utf8").includes(
    bundleRefreshedLine(other),
  );
}

async function preconditions(): Promise<void> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0)
    problems.push("run the tests as root (the services run as webapp and quotes-service)");
  for (const bin of ["spire-server", "spire-agent"]) {
    if (!existsSync(join(ROOT, ".spire", "bin", bin)))
      problems.push(`${bin} is missing from .spire/bin: run scripts/install-spire.sh`);
  }
  const running = [...recordedPids()].filter(([, pid]) => isAlive(pid));
  if (running.length > 0)
    problems.push(
      `a local demo is running (${running.map(([n]) => n).join(", ")}): npm run stop first`,
    );
  if (problems.length > 0)
    throw new Error(`cannot run the end-to-end test:\n - ${problems.join("\n - ")}`);
}

/** Stops the demo and checks that every process it recorded is gone. */
async function stopAll(seen: Map<string, number>): Promise<void> {
  for (const [name, pid] of recordedPids()) seen.set(`${name}:${pid}`, pid);
  const stopped = await run(join(ROOT, "scripts/stop.sh"), ["--mode", "local"], {
    timeoutMs: 120_000,
  });
  assert.equal(stopped.code, 0, stopped.stderr);
  const gone = await poll(10_000, 250, async () =>
    [...seen.values()].some(isAlive) ? undefined : true,
  );
  assert.ok(
    gone,
    `still running after stop: ${[...seen]
      .filter(([, p]) => isAlive(p))
      .map(([n]) => n)
      .join(", ")}`,
  );
}

/** Steps 3 and the services, then the page: 11 priced rows and the verified peer. */
async function step3AndPage(
  choices: readonly string[],
  seen: Map<string, number>,
): Promise<RunResult> {
  const step3 = await runScript("3-create-registration-entries.sh", 180_000, "local", choices);
  await runScript("scripts/start-services.sh");
  for (const [name, pid] of recordedPids()) seen.set(`${name}:${pid}`, pid);
  const page = await waitForPricedPage(45_000);
  assert.ok(page, "no page with 11 priced quotes within 45 s of step 3 (see .data/logs/)");
  assert.equal(page.verifiedPeer, QUOTES_ID, "identity panel: the verified peer");
  return step3;
}

describe("Web PKI bundle endpoints (--profile https_web), relationships in the configs", {
  timeout: 600_000,
}, () => {
  const WEB = ["--profile", "https_web"];
  const seen = new Map<string, number>();
  let started = 0;
  const brokerCert = join(DATA, "certs", "web-pki", "spire-server-broker.crt");
  const brokerKey = join(DATA, "certs", "web-pki", "spire-server-broker.key");
  const saved = mkdtempSync(join(tmpdir(), "web-pki-"));

  before(async () => {
    started = performance.now();
    await preconditions();
    await runScript("build.sh", 240_000, "local", WEB);
    // The broker's bundle endpoint first serves a certificate from a CA nobody trusts.
    copyFileSync(brokerCert, join(saved, "crt"));
    copyFileSync(brokerKey, join(saved, "key"));
    const rogue = await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=a CA nobody trusts",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      join(saved, "rogue.key"),
      "-out",
      join(saved, "rogue.crt"),
    ]);
    assert.equal(rogue.code, 0, rogue.stderr);
    copyFileSync(join(saved, "rogue.crt"), brokerCert);
    copyFileSync(join(saved, "rogue.key"), brokerKey);
  });

  after(async () => {
    if (existsSync(join(saved, "crt"))) {
      copyFileSync(join(saved, "crt"), brokerCert);
      copyFileSync(join(saved, "key"), brokerKey);
    }
    rmSync(saved, { recursive: true, force: true });
    await run(join(ROOT, "scripts/stop.sh"), ["--mode", "local"], { timeoutMs: 120_000 });
    console.log(
      `Web PKI flow (local mode): ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  });

  it("servers and agents start; step 2 explains that nothing needs bootstrapping", {
    timeout: 240_000,
  }, async () => {
    const servers = await runScript("scripts/start-servers.sh", 180_000, "local", WEB);
    assert.match(servers.stdout, /server\.https_web\.conf/);
    assert.match(servers.stdout, /SSL_CERT_FILE=.*web-ca\.crt/);
    await runScript("1-start-spire-agents.sh", 180_000, "local", WEB);
    const step2 = await runScript("2-bootstrap-federation.sh", 60_000, "local", WEB);
    assert.match(step2.stdout, /no bootstrap is needed/);
    assert.match(step2.stdout, /no\s+bundle show \/ bundle set/);
    assert.doesNotMatch(step2.stdout, /spire-server bundle set/, "step 2 runs no bundle set");
  });

  it("an endpoint certificate from an untrusted CA: the server log and step 3 say so", {
    timeout: 180_000,
  }, async () => {
    const logged = await poll(75_000, 1000, async () =>
      /trust_domain=broker\.org/.test(
        readFileSync(join(DATA, "logs", "spire-server-stocks.log"), "utf8"),
      ) &&
      readFileSync(join(DATA, "logs", "spire-server-stocks.log"), "utf8").includes(
        "x509: certificate signed by unknown authority",
      )
        ? true
        : undefined,
    );
    assert.ok(
      logged,
      "spire-server-stocks logs that it does not trust the broker's endpoint certificate",
    );
    const step3 = await run(
      join(ROOT, "3-create-registration-entries.sh"),
      ["--mode", "local", ...WEB],
      {
        timeoutMs: 120_000,
      },
    );
    assert.notEqual(step3.code, 0, "step 3 cannot succeed without the broker.org bundle");
    assert.match(step3.stderr, /certificate signed by unknown authority/);
    assert.match(
      step3.stderr,
      /spire-server-stocks does not trust the certificate that spire-server-broker's bundle endpoint presents/,
    );
    assert.match(
      step3.stderr,
      /SSL_CERT_FILE \(the demo CA, \.data\/certs\/web-pki\/web-ca\.crt\)/,
    );
  });

  it("with the right certificate back, each server fetches the other's bundle by itself", {
    timeout: 180_000,
  }, async () => {
    copyFileSync(join(saved, "crt"), brokerCert);
    copyFileSync(join(saved, "key"), brokerKey);
    // The broker reloads its certificate within 10 s (file_sync_interval); the stocks server
    // retries once a minute.
    const both = await poll(150_000, 1000, async () =>
      PAIRS.every(([, other, server]) => refreshedIn(server, other)) ? true : undefined,
    );
    assert.ok(both, "both servers log 'Bundle refreshed' for the other trust domain");
    await assertEachListsTheOther();
  });

  it("step 3 and the page: 11 priced quotes from the verified peer", {
    timeout: 240_000,
  }, async () => {
    await step3AndPage(WEB, seen);
  });

  it("stop leaves no process behind", { timeout: 120_000 }, async () => {
    await stopAll(seen);
  });
});

describe("SPIFFE authentication, relationships made at run time (--federation api)", {
  timeout: 600_000,
}, () => {
  const API = ["--federation", "api"];
  const seen = new Map<string, number>();
  let started = 0;

  before(async () => {
    started = performance.now();
    await preconditions();
    await runScript("build.sh");
  });

  after(async () => {
    await run(join(ROOT, "scripts/stop.sh"), ["--mode", "local"], { timeoutMs: 120_000 });
    console.log(
      `federation create flow (local mode): ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  });

  it("the servers start without federates_with; step 3 before step 2 asks for it", {
    timeout: 240_000,
  }, async () => {
    const servers = await runScript("scripts/start-servers.sh", 180_000, "local", API);
    assert.match(servers.stdout, /server\.api\.conf/);
    for (const [td] of PAIRS) {
      const list = await spireServer(td, ["federation", "list"]);
      assert.match(list.stdout, /Found 0 federation relationships/);
    }
    await runScript("1-start-spire-agents.sh", 180_000, "local", API);
    const early = await run(join(ROOT, "3-create-registration-entries.sh"), [
      "--mode",
      "local",
      ...API,
    ]);
    assert.notEqual(early.code, 0);
    assert.match(early.stderr, /run \.\/2-bootstrap-federation\.sh --federation api first/);
  });

  it("step 2 creates both relationships with federation create, and again is harmless", {
    timeout: 120_000,
  }, async () => {
    const step2 = await runScript("2-bootstrap-federation.sh", 60_000, "local", API);
    assert.match(
      step2.stdout,
      /spire-server federation create -trustDomain stocksmarket\.org .*-bundleEndpointProfile https_spiffe -endpointSpiffeID spiffe:\/\/stocksmarket\.org\/spire\/server -trustDomainBundlePath/,
    );
    assert.match(step2.stdout, /Found 1 federation relationship/);
    for (const [td, other] of PAIRS) {
      const shown = await spireServer(td, ["federation", "show", "-trustDomain", other]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /profile\s*:\s*https_spiffe/);
      assert.match(
        shown.stdout,
        new RegExp(`Endpoint SPIFFE ID\\s*:\\s*spiffe://${other.replace(".", "\\.")}/spire/server`),
      );
    }
    await assertEachListsTheOther();
    const again = await runScript("2-bootstrap-federation.sh", 60_000, "local", API);
    assert.match(again.stdout, /the relationship already exists: nothing to do/);
  });

  it("step 3 and the page: 11 priced quotes from the verified peer", {
    timeout: 240_000,
  }, async () => {
    await step3AndPage(API, seen);
  });

  it("each server then refreshes the other's bundle from its endpoint (SPIFFE auth)", {
    timeout: 120_000,
  }, async () => {
    const both = await poll(90_000, 1000, async () =>
      PAIRS.every(([, other, server]) => refreshedIn(server, other)) ? true : undefined,
    );
    assert.ok(both, "both servers log 'Bundle refreshed' for the other trust domain");
  });

  it("stop leaves no process behind", { timeout: 120_000 }, async () => {
    await stopAll(seen);
  });
});
