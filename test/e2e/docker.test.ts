// The federation tutorial end to end in Docker mode, the way its readers run it:
// `./build.sh --mode docker`, `compose up -d`, the three numbered scripts with
// `--mode docker`, then http://localhost:8080/quotes from the host, and `compose down -v`.
// Real SPIRE servers and agents (the release in .env) run in the containers of docker-compose.yml.
//
// The whole flow runs once per compose front end: `docker-compose` (v1, the tutorial's)
// and `docker compose` (v2). Both must be installed, unless SPIRE_DEMO_COMPOSE names the
// one to test. The container engine is whichever answers (`docker info`); without one,
// scripts/container-engine.sh starts podman's Docker-API service for the test and stops it
// afterwards. The base images are pulled when a registry answers, and otherwise built
// locally by scripts/build-offline-images.sh; the test prints which.
//
// SPIRE_DEMO_SKIP_DOCKER_TEST=1 turns this test off, and the run says so; without an
// engine or compose it fails and names what to install.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SPIRE_AGENT_IMAGE, SPIRE_SERVER_IMAGE, SPIRE_VERSION } from "../spire-version.js";
import {
  assertEachListsTheOther,
  bundleRefreshedLine,
  compose,
  type DemoMode,
  expectOk,
  poll,
  type QuotesPage,
  ROOT,
  run,
  runScript,
  spireServer,
  waitForPricedPage,
  waitForQuotesPage,
} from "./demo.js";
import { PageLoader } from "./page-loader.js";

const DOCKER: DemoMode = "docker";
const BROKER = "broker.org";
const STOCKS = "stocksmarket.org";
const WEBAPP_ID = "spiffe://broker.org/webapp";
const QUOTES_ID = "spiffe://stocksmarket.org/quotes-service";
const BASE_IMAGES = [SPIRE_SERVER_IMAGE, SPIRE_AGENT_IMAGE, "node:20-bookworm-slim"];
const FRONT_ENDS = ["docker-compose", "docker compose"] as const;
type FrontEnd = (typeof FRONT_ENDS)[number];

const skipReason =
  process.env.SPIRE_DEMO_SKIP_DOCKER_TEST === "1"
    ? "SPIRE_DEMO_SKIP_DOCKER_TEST=1: Docker mode is NOT tested in this run"
    : undefined;
if (skipReason) console.log(`\n*** ${skipReason} ***\n`);

const timings: [string, number][] = [];
function timed(label: string, seconds: number): void {
  timings.push([label, seconds]);
}

const frontEndVersion = async (frontEnd: FrontEnd): Promise<string | undefined> => {
  const result = await run("sh", ["-c", `${frontEnd} version --short`]);
  return result.code === 0 ? result.stdout.trim() : undefined;
};

/** The compose front ends this run tests (both, or the one SPIRE_DEMO_COMPOSE names) are installed. */
async function checkFrontEnds(): Promise<void> {
  const chosen = process.env.SPIRE_DEMO_COMPOSE;
  const wanted = chosen ? FRONT_ENDS.filter((f) => f === chosen) : [...FRONT_ENDS];
  if (chosen && wanted.length === 0) {
    throw new Error(`SPIRE_DEMO_COMPOSE=${chosen}: use "docker-compose" or "docker compose"`);
  }
  const missing: string[] = [];
  for (const frontEnd of wanted) {
    const version = await frontEndVersion(frontEnd);
    if (version) console.log(`compose front end: ${frontEnd} ${version}`);
    else missing.push(frontEnd);
  }
  if (missing.length > 0) {
    throw new Error(
      `cannot run the Docker end-to-end test: ${missing.join(" and ")} not installed. ` +
        "Install docker-compose (v1; Debian: apt-get install docker-compose) and the Docker compose plugin (v2; .ci/run builds it from tools/compose), " +
        'or set SPIRE_DEMO_COMPOSE="docker compose" (or "docker-compose") to test one front end',
    );
  }
}

/** Official images when a registry answers; local stand-ins otherwise. Prints which. */
async function provideBaseImages(): Promise<void> {
  const origin = new Map<string, string>();
  let standInsNeeded = false;
  for (const image of BASE_IMAGES) {
    const pulled = await run("docker", ["pull", "-q", image], { timeoutMs: 300_000 });
    if (pulled.code === 0) {
      origin.set(image, "official (pulled)");
    } else if ((await run("docker", ["image", "inspect", image])).code !== 0) {
      standInsNeeded = true;
    }
  }
  if (standInsNeeded) {
    const built = await runScript("scripts/build-offline-images.sh", 1_200_000, DOCKER);
    timed("offline stand-in images (build-offline-images.sh)", built.seconds);
  }
  for (const image of BASE_IMAGES) {
    if (origin.has(image)) continue;
    const label = await run("docker", [
      "image",
      "inspect",
      "--format",
      '{{index .Config.Labels "org.opencontainers.image.description"}}',
      image,
    ]);
    expectOk(label, `docker image inspect ${image}`);
    origin.set(
      image,
      label.stdout.includes("offline stand-in")
        ? "local stand-in (no registry answered; scripts/build-offline-images.sh)"
        : "official (already on this machine)",
    );
  }
  console.log(
    `base images:\n${[...origin].map(([image, from]) => `  ${image}: ${from}`).join("\n")}`,
  );
}

/** The CA bundle npm on this host trusts besides Node's own, when it has one (npm's cafile). */
async function hostNpmCa(): Promise<string | undefined> {
  const cafile = (await run("npm", ["config", "get", "cafile"])).stdout.trim();
  return cafile && cafile !== "null" && cafile !== "undefined" ? cafile : undefined;
}

/** Runs a command in a service's container, through compose. */
const execIn = (service: string, command: readonly string[]) =>
  compose(["exec", "-T", service, ...command]);

/** Unix user and command line of every process in a container (read from /proc). */
async function processesIn(service: string): Promise<{ user: string; command: string }[]> {
  const script = `
    const fs = require("fs");
    const users = new Map(fs.readFileSync("/etc/passwd", "utf8").trim().split("\\n")
      .map((line) => line.split(":")).map((f) => [f[2], f[0]]));
    for (const pid of fs.readdirSync("/proc").filter((d) => /^\\d+$/.test(d))) {
      try {
        const uid = /^Uid:\\s+(\\d+)/m.exec(fs.readFileSync("/proc/" + pid + "/status", "utf8"))[1];
        const command = fs.readFileSync("/proc/" + pid + "/cmdline", "utf8").split("\\0").join(" ").trim();
        if (command) console.log(JSON.stringify({ user: users.get(uid) ?? uid, command }));
      } catch {}
    }`;
  const listed = expectOk(
    await execIn(service, ["node", "-e", script]),
    `process list of ${service}`,
  );
  return listed.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { user: string; command: string });
}

async function healthOf(container: string): Promise<string> {
  const result = await run("docker", [
    "inspect",
    "--format",
    "{{.State.Health.Status}}",
    container,
  ]);
  return result.code === 0 ? result.stdout.trim() : `unknown (${result.stderr.trim()})`;
}

/** Containers, networks and volumes of the compose project, by label. */
async function projectResources(project: string): Promise<string[]> {
  const label = `label=com.docker.compose.project=${project}`;
  const left: string[] = [];
  for (const [kind, args] of [
    ["container", ["ps", "-a", "-q", "--filter", label]],
    ["network", ["network", "ls", "-q", "--filter", label]],
    ["volume", ["volume", "ls", "-q", "--filter", label]],
  ] as const) {
    const listed = expectOk(await run("docker", args), `docker ${args.join(" ")}`);
    for (const id of listed.stdout.split("\n").filter(Boolean)) left.push(`${kind} ${id}`);
  }
  return left;
}

describe("the federation tutorial in Docker mode", { timeout: 3_600_000, skip: skipReason }, () => {
  let startedEngine = false;

  before(async () => {
    await checkFrontEnds();
    const status = await run(`${ROOT}/scripts/container-engine.sh`, ["status"]);
    const engine = expectOk(
      await run(`${ROOT}/scripts/container-engine.sh`, ["start"], { timeoutMs: 120_000 }),
      "scripts/container-engine.sh start (a Docker engine, or podman, is needed)",
    );
    startedEngine = status.code !== 0;
    console.log(engine.stdout.trim());
    const host = (await run(`${ROOT}/scripts/container-engine.sh`, ["docker-host"])).stdout.trim();
    if (host) process.env.DOCKER_HOST = host;
    const leftovers = await compose(["ps", "-q"]);
    expectOk(leftovers, "compose ps");
    assert.equal(
      leftovers.stdout.trim(),
      "",
      "a Docker-mode demo is running (or was left behind): stop it with docker-compose down -v first",
    );
    const started = performance.now();
    await provideBaseImages();
    timed("base images ready", (performance.now() - started) / 1000);
  });

  after(async () => {
    // Safety net: whatever failed, no container, network or volume of the demo outlives the test.
    await compose(["down", "-v", "--remove-orphans"]);
    if (startedEngine) await run(`${ROOT}/scripts/container-engine.sh`, ["stop"]);
    const summary = timings.map(([label, s]) => `${label}: ${s.toFixed(1)} s`).join("\n  ");
    console.log(`Docker end-to-end timings:\n  ${summary}`);
  });

  it("the SPIRE images have no shell, and the official users and entry points", async () => {
    for (const [image, user, entrypoint] of [
      [BASE_IMAGES[0], "1000:1000", '["/opt/spire/bin/spire-server","run"]'],
      [BASE_IMAGES[1], "0:0", '["/opt/spire/bin/spire-agent","run"]'],
    ] as const) {
      const config = await run("docker", [
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{json .Config.Entrypoint}}",
        String(image),
      ]);
      expectOk(config, `docker image inspect ${image}`);
      assert.equal(config.stdout.trim(), `${user} ${entrypoint}`, `${image}: user and entry point`);
      const shell = await run("docker", [
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        String(image),
        "-c",
        "true",
      ]);
      assert.notEqual(shell.code, 0, `${image} must have no /bin/sh, like the official image`);
      const binary = JSON.parse(entrypoint)[0] as string;
      const version = await run("docker", [
        "run",
        "--rm",
        "--entrypoint",
        binary,
        String(image),
        "--version",
      ]);
      assert.ok(
        `${version.stdout}${version.stderr}`.startsWith(SPIRE_VERSION),
        `${image} runs SPIRE ${SPIRE_VERSION}`,
      );
    }
  });

  for (const frontEnd of FRONT_ENDS) {
    const chosen = process.env.SPIRE_DEMO_COMPOSE;
    const skip =
      chosen && chosen !== frontEnd
        ? `SPIRE_DEMO_COMPOSE=${chosen}: ${frontEnd} is NOT tested`
        : false;
    describe(`with ${frontEnd}`, { skip }, () => {
      const tag = `[${frontEnd}]`;
      before(() => {
        process.env.SPIRE_DEMO_COMPOSE = frontEnd;
      });

      async function outOfOrder(script: string, expected: RegExp): Promise<void> {
        const result = await run(`${ROOT}/${script}`, ["--mode", DOCKER], { timeoutMs: 120_000 });
        assert.notEqual(result.code, 0, `${script} should refuse to run yet`);
        assert.match(result.stderr, expected, `${script} names the missing step`);
        assert.doesNotMatch(result.stderr, /rpc error|Usage of|Traceback/i, "no raw CLI error");
      }

      if (frontEnd === FRONT_ENDS[0]) {
        it("build.sh --build-ca none: behind a TLS proxy, the failure names the option that fixes it", {
          timeout: 900_000,
        }, async () => {
          const ca = await hostNpmCa();
          const result = await run(`${ROOT}/build.sh`, ["--mode", DOCKER, "--build-ca", "none"], {
            timeoutMs: 900_000,
          });
          if (ca) {
            // This host reaches the registry through a proxy whose CA only its own trust holds.
            assert.notEqual(result.code, 0, "npm ci cannot trust the registry without the CA");
            assert.match(result.stderr, /does not trust the TLS certificate of the npm registry/);
            assert.match(result.stderr, /No CA bundle was handed to the build\./);
            assert.match(
              result.stderr,
              /Fix: \.\/build\.sh --mode docker --build-ca \/path\/to\/proxy-ca\.pem/,
            );
          } else {
            console.log(`${tag} npm on this host trusts no extra CA: the build needs none`);
            expectOk(result, "./build.sh --mode docker --build-ca none");
          }
        });
      }

      it("build.sh --mode docker builds both workload images", {
        timeout: 1_800_000,
      }, async () => {
        // No --build-ca: build.sh hands the image build the bundle this host's npm trusts,
        // which is what makes the build work behind this machine's TLS proxy.
        const ca = await hostNpmCa();
        const result = await run(`${ROOT}/build.sh`, ["--mode", DOCKER], {
          timeoutMs: 1_800_000,
        });
        expectOk(result, "./build.sh --mode docker");
        if (ca) {
          assert.match(
            result.stdout,
            new RegExp(`npm ci in the image build trusts the CAs in ${ca}, from this host's trust`),
            "by default the build trusts the host's CA bundle",
          );
        }
        assert.match(
          result.stderr,
          new RegExp(`Docker mode: ${frontEnd}`),
          "the scripts say which compose they use",
        );
        timed(`${tag} ./build.sh --mode docker`, result.seconds);
        for (const image of [
          "spiffe-federation-demo/broker-webapp:latest",
          "spiffe-federation-demo/stock-quotes-service:latest",
        ]) {
          const env = await run("docker", [
            "image",
            "inspect",
            "--format",
            "{{json .Config.Env}}",
            image,
          ]);
          expectOk(env, `docker image inspect ${image}`);
          assert.doesNotMatch(
            env.stdout,
            /NODE_EXTRA_CA_CERTS/,
            "the build CA is not in the image",
          );
          const ls = await run("docker", [
            "run",
            "--rm",
            "--entrypoint",
            "ls",
            image,
            "-a",
            "/tmp",
          ]);
          expectOk(ls, `ls /tmp in ${image}`);
          assert.doesNotMatch(ls.stdout, /build-ca/, "the build CA folder is not in the image");
        }
      });

      it("up -d starts the servers and the services, all healthy", {
        timeout: 300_000,
      }, async () => {
        const started = performance.now();
        expectOk(await compose(["up", "-d"], 300_000), "compose up -d");
        const containers = (await compose(["ps", "-q"])).stdout.trim().split("\n").filter(Boolean);
        assert.equal(containers.length, 4, "four containers");
        const healthy = await poll(120_000, 1000, async () => {
          const states = await Promise.all(containers.map(healthOf));
          return states.every((s) => s === "healthy") ? states : undefined;
        });
        const states = await Promise.all(containers.map(healthOf));
        assert.ok(healthy, `not all healthy within 120 s: ${states.join(", ")}`);
        timed(`${tag} up -d until all four are healthy`, (performance.now() - started) / 1000);
      });

      it("step 3 before step 1 asks for the agents", { timeout: 120_000 }, async () => {
        await outOfOrder(
          "3-create-registration-entries.sh",
          /run \.\/1-start-spire-agents\.sh first/,
        );
      });

      it("step 1 starts both agents in the workload containers", { timeout: 300_000 }, async () => {
        const result = await runScript("1-start-spire-agents.sh", 300_000, DOCKER);
        timed(`${tag} step 1 (agents)`, result.seconds);
        for (const td of [BROKER, STOCKS]) {
          const agents = await spireServer(td, ["agent", "list"], DOCKER);
          assert.match(
            agents.stdout,
            new RegExp(`spiffe://${td}/spire/agent/x509pop/[0-9a-f]{40}`),
          );
        }
      });

      it("step 3 before step 2 asks for the federation bootstrap", {
        timeout: 120_000,
      }, async () => {
        await outOfOrder(
          "3-create-registration-entries.sh",
          /run \.\/2-bootstrap-federation\.sh first/,
        );
      });

      it("step 2 gives each server the other trust domain's bundle", {
        timeout: 300_000,
      }, async () => {
        const result = await runScript("2-bootstrap-federation.sh", 300_000, DOCKER);
        timed(`${tag} step 2 (bootstrap federation)`, result.seconds);
        await assertEachListsTheOther(DOCKER);
      });

      let firstQuotes: QuotesPage | undefined;
      it("step 3 registers both workloads; the page shows quotes within 30 s", {
        timeout: 300_000,
      }, async () => {
        const started = performance.now();
        const result = await runScript("3-create-registration-entries.sh", 300_000, DOCKER);
        timed(`${tag} step 3 (registration entries)`, result.seconds);
        firstQuotes = await waitForQuotesPage(30_000);
        const seconds = (performance.now() - started) / 1000;
        timed(`${tag} step 3 start -> first page with quotes`, seconds);
        assert.ok(firstQuotes, "no page with quotes within 30 s of step 3 (see compose logs)");
      });

      it("the page from the host shows 11 priced quotes, no error, and the verified peer", {
        timeout: 60_000,
      }, async () => {
        assert.ok(firstQuotes, "step 3 produced no page with quotes");
        const allPriced = await waitForPricedPage(30_000);
        assert.ok(allPriced, "within 30 s every row should carry a price");
        assert.deepEqual(
          allPriced.rows.map((row) => row[0]),
          ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF", "GGGG", "HHHH", "IIII", "JJJJ", "KKKK"],
        );
        assert.equal(allPriced.unavailable, false, "no 'Quotes service unavailable' line");
        assert.equal(allPriced.verifiedPeer, QUOTES_ID, "identity panel: the verified peer");
        assert.match(allPriced.html, /spiffe:\/\/broker\.org\/webapp/, "identity panel: own ID");
      });

      it("in the containers the services run as their users and the agents as root", async () => {
        for (const [service, user] of [
          ["broker-webapp", "webapp"],
          ["stock-quotes-service", "quotes-service"],
        ] as const) {
          const processes = await processesIn(service);
          const node = processes.filter((p) => p.command.includes(`/app/${service}/dist/main.js`));
          const agent = processes.filter((p) => p.command.includes("spire-agent run"));
          assert.deepEqual(
            node.map((p) => p.user),
            [user],
            `${service} runs as ${user}: ${JSON.stringify(processes)}`,
          );
          assert.deepEqual(
            agent.map((p) => p.user),
            ["root"],
            `the agent in ${service} runs as root`,
          );
        }
      });

      it("the entries select the unix users and federate with the other trust domain", async () => {
        for (const [td, id, user, other] of [
          [BROKER, WEBAPP_ID, "webapp", STOCKS],
          [STOCKS, QUOTES_ID, "quotes-service", BROKER],
        ] as const) {
          const shown = expectOk(
            await spireServer(td, ["entry", "show", "-spiffeID", id], DOCKER),
            "entry show",
          );
          assert.match(shown.stdout, /Found 1 entry/);
          assert.match(shown.stdout, new RegExp(`Selector\\s+: unix:user:${user}\\n`));
          assert.doesNotMatch(shown.stdout, /unix:uid:/, "no uid fallback in Docker mode");
          assert.match(
            shown.stdout,
            new RegExp(`FederatesWith\\s+: ${other.replace(".", "\\.")}\\n`),
          );
        }
      });

      it("each server fetches the other's bundle over the compose network by itself", {
        timeout: 150_000,
      }, async () => {
        for (const [server, other] of [
          ["spire-server-broker", STOCKS],
          ["spire-server-stocks", BROKER],
        ] as const) {
          const refreshed = await poll(120_000, 2000, async () => {
            const logs = await compose(["logs", "--no-color", server]);
            return logs.stdout.includes(bundleRefreshedLine(other)) ? true : undefined;
          });
          assert.ok(
            refreshed,
            `${server} never fetched the ${other} bundle from its endpoint (compose logs ${server})`,
          );
        }
      });

      it("the three scripts run a second time succeed", { timeout: 600_000 }, async () => {
        const one = await runScript("1-start-spire-agents.sh", 300_000, DOCKER);
        assert.match(one.stdout, /already running/);
        const two = await runScript("2-bootstrap-federation.sh", 300_000, DOCKER);
        assert.match(two.stdout, /already holds a bundle/);
        const three = await runScript("3-create-registration-entries.sh", 300_000, DOCKER);
        assert.match(three.stdout, /already exists/);
        timed(`${tag} steps 1-2-3 again`, one.seconds + two.seconds + three.seconds);
        const page = await waitForQuotesPage(15_000, 500);
        assert.ok(page, "the page still shows quotes");
      });

      it("./4-rotate-ca.sh rotates the stock market's CA while the page loads every 200 ms: every load ok", {
        timeout: 300_000,
      }, async () => {
        const loader = new PageLoader();
        loader.start();
        try {
          const rotation = await runScript("4-rotate-ca.sh", 240_000, DOCKER);
          timed(`${tag} ./4-rotate-ca.sh (stocksmarket.org)`, rotation.seconds);
          assert.match(rotation.stdout, /The CA of stocksmarket\.org is rotated/);
        } finally {
          await loader.stop();
        }
        console.log(
          `${tag} page loads during the CA rotation: ${PageLoader.describe(loader.loads)}`,
        );
        const failed = loader.loads.filter((load) => load.kind !== "ok");
        assert.ok(loader.loads.length > 0, "the page loader made no load");
        assert.equal(failed.length, 0, PageLoader.describe(loader.loads));
      });

      it("down -v leaves no container, network or volume of the project", {
        timeout: 300_000,
      }, async () => {
        const container = (await compose(["ps", "-q", "spire-server-broker"])).stdout.trim();
        const project = await run("docker", [
          "inspect",
          "--format",
          '{{index .Config.Labels "com.docker.compose.project"}}',
          container,
        ]);
        expectOk(project, "docker inspect (compose project label)");
        const down = expectOk(await compose(["down", "-v"], 300_000), "compose down -v");
        timed(`${tag} down -v`, down.seconds);
        assert.deepEqual(
          await projectResources(project.stdout.trim()),
          [],
          "nothing of the project is left",
        );
      });
    });
  }
});
