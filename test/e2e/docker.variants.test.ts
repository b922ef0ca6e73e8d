// The tutorial's other roads in Docker mode, one lean flow each with one compose front end
// (docker.test.ts runs the tutorial's own road with both): Web PKI bundle endpoints
// (SPIRE_DEMO_PROFILE=https_web), SPIFFE authentication with relationships made at run
// time (SPIRE_DEMO_FEDERATION=api), and the JWT road (SPIRE_DEMO_AUTH=jwt: bad tokens
// refused, broker.org's JWT authority rotated while the page loads every 200 ms). Real SPIRE (the release in .env) in the containers of docker-compose.yml.
// It runs after docker.test.ts (file order), which provides the base images; the untrusted
// certificate case runs in local mode only (variants.test.ts).
//
// SPIRE_DEMO_SKIP_DOCKER_TEST=1 turns it off, and the run says so.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SPIRE_SERVER_IMAGE } from "../spire-version.js";
import {
  bundleRefreshedLine,
  compose,
  expectOk,
  fetchQuotesPage,
  poll,
  ROOT,
  run,
  runScript,
  spireServer,
  waitForPricedPage,
} from "./demo.js";
import { PageLoader } from "./page-loader.js";

const QUOTES_ID = "spiffe://stocksmarket.org/quotes-service";
const PAIRS = [
  ["broker.org", "stocksmarket.org", "spire-server-broker"],
  ["stocksmarket.org", "broker.org", "spire-server-stocks"],
] as const;

const skipReason =
  process.env.SPIRE_DEMO_SKIP_DOCKER_TEST === "1"
    ? "SPIRE_DEMO_SKIP_DOCKER_TEST=1: the Docker-mode variants are NOT tested in this run"
    : undefined;
if (skipReason) console.log(`\n*** ${skipReason} ***\n`);

const VARIANTS = [
  {
    name: "Web PKI bundle endpoints (https_web), relationships in the configs",
    env: "SPIRE_DEMO_PROFILE",
    value: "https_web",
    flags: ["--profile", "https_web"],
  },
  {
    name: "SPIFFE authentication, relationships made with federation create (api)",
    env: "SPIRE_DEMO_FEDERATION",
    value: "api",
    flags: ["--federation", "api"],
  },
  {
    name: "the JWT road (jwt): a JWT-SVID bearer token over TLS",
    env: "SPIRE_DEMO_AUTH",
    value: "jwt",
    flags: ["--auth", "jwt"],
  },
] as const;

/**
 * Asks the quotes service for quotes from inside the broker-webapp container (its port is
 * not published), with `authorization` as the header (none when undefined); the status.
 */
async function quotesStatusFromWebappHost(authorization: string | undefined): Promise<number> {
  const script = `
    const https = require("https");
    const headers = ${JSON.stringify(authorization === undefined ? {} : { authorization })};
    https.get("https://stock-quotes-service:8090/quotes", { headers, rejectUnauthorized: false },
      (res) => { console.log(res.statusCode); res.resume(); })
      .on("error", (e) => { console.error(e.message); process.exit(1); });`;
  const result = expectOk(
    await compose(["exec", "-T", "broker-webapp", "node", "-e", script]),
    "a request to the quotes service from the webapp's container",
  );
  return Number(result.stdout.trim());
}

describe("the tutorial's variants in Docker mode", { timeout: 1_800_000, skip: skipReason }, () => {
  let startedEngine = false;
  const timings: string[] = [];

  before(async () => {
    const frontEnds = process.env.SPIRE_DEMO_COMPOSE
      ? [process.env.SPIRE_DEMO_COMPOSE]
      : ["docker compose", "docker-compose"];
    let chosen: string | undefined;
    for (const frontEnd of frontEnds) {
      if ((await run("sh", ["-c", `${frontEnd} version --short`])).code === 0) {
        chosen = frontEnd;
        break;
      }
    }
    assert.ok(
      chosen,
      `no compose front end (${frontEnds.join(", ")}) is installed; see README, Docker mode`,
    );
    process.env.SPIRE_DEMO_COMPOSE = chosen;
    console.log(`Docker-mode variants with ${chosen}`);
    const status = await run(`${ROOT}/scripts/container-engine.sh`, ["status"]);
    expectOk(
      await run(`${ROOT}/scripts/container-engine.sh`, ["start"], { timeoutMs: 120_000 }),
      "scripts/container-engine.sh start (a Docker engine, or podman, is needed)",
    );
    startedEngine = status.code !== 0;
    const host = (await run(`${ROOT}/scripts/container-engine.sh`, ["docker-host"])).stdout.trim();
    if (host) process.env.DOCKER_HOST = host;
    assert.equal(
      expectOk(await compose(["ps", "-q"]), "compose ps").stdout.trim(),
      "",
      "a Docker-mode demo is running: stop it with docker-compose down -v first",
    );
    for (const image of [
      "spiffe-federation-demo/broker-webapp:latest",
      "spiffe-federation-demo/stock-quotes-service:latest",
      SPIRE_SERVER_IMAGE,
    ]) {
      const found = await run("docker", ["image", "inspect", image]);
      assert.equal(
        found.code,
        0,
        `${image} is missing: docker.test.ts (./build.sh --mode docker) makes it`,
      );
    }
    // The Web PKI is not in the images: build.sh makes it with the agent certificates.
    expectOk(await run(`${ROOT}/scripts/make-agent-certs.sh`, []), "make-agent-certs.sh");
    expectOk(await run(`${ROOT}/scripts/make-web-pki.sh`, []), "make-web-pki.sh");
  });

  after(async () => {
    await compose(["down", "-v", "--remove-orphans"]);
    if (startedEngine) await run(`${ROOT}/scripts/container-engine.sh`, ["stop"]);
    console.log(`Docker-mode variant timings:\n  ${timings.join("\n  ")}`);
  });

  for (const variant of VARIANTS) {
    describe(variant.name, () => {
      let started = 0;
      before(() => {
        for (const other of VARIANTS) delete process.env[other.env];
        process.env[variant.env] = variant.value;
        started = performance.now();
      });

      it("up -d, steps 1 and 2", { timeout: 600_000 }, async () => {
        expectOk(await compose(["up", "-d"], 300_000), "compose up -d");
        await runScript("1-start-spire-agents.sh", 300_000, "docker", variant.flags);
        const step2 = await runScript(
          "2-bootstrap-federation.sh",
          300_000,
          "docker",
          variant.flags,
        );
        if (variant.value === "https_web") {
          assert.match(step2.stdout, /no bootstrap is needed/);
          assert.doesNotMatch(step2.stdout, /spire-server bundle set/, "nobody runs bundle set");
        } else if (variant.value === "api") {
          assert.match(
            step2.stdout,
            /spire-server federation create -trustDomain stocksmarket\.org/,
          );
          assert.match(step2.stdout, /Found 1 federation relationship/);
          for (const [td, other] of PAIRS) {
            const shown = await spireServer(
              td,
              ["federation", "show", "-trustDomain", other],
              "docker",
            );
            assert.match(expectOk(shown, "federation show").stdout, /profile\s*:\s*https_spiffe/);
          }
        }
      });

      it("step 3; the page shows 11 priced quotes and the verified peer", {
        timeout: 300_000,
      }, async () => {
        await runScript("3-create-registration-entries.sh", 300_000, "docker", variant.flags);
        const page = await waitForPricedPage(60_000);
        const last = page ?? (await fetchQuotesPage());
        assert.ok(
          page,
          `no page with 11 priced quotes within 60 s of step 3: ${last?.html.slice(0, 300)}`,
        );
        assert.equal(page.verifiedPeer, QUOTES_ID);
      });

      it("each server lists the other's bundle, fetched from its endpoint by itself", {
        timeout: 200_000,
      }, async () => {
        for (const [td, other, server] of PAIRS) {
          const list = expectOk(await spireServer(td, ["bundle", "list"], "docker"), "bundle list");
          assert.match(list.stdout, new RegExp(`\\* ${other.replace(".", "\\.")}\\n`));
          const refreshed = bundleRefreshedLine(other);
          const logs = await poll(120_000, 2000, async () => {
            const out = (await compose(["logs", "--no-color", server])).stdout;
            return out.includes(refreshed) ? out : undefined;
          });
          assert.ok(logs, `${server} never fetched the ${other} bundle from its endpoint`);
          if (variant.value === "https_web") {
            assert.match(logs, /bundle_endpoint_profile=https_web/);
          }
        }
      });

      if (variant.value === "jwt") {
        it("the quotes service refuses a missing, malformed or unsigned token with 401", {
          timeout: 120_000,
        }, async () => {
          const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
          const now = Math.floor(Date.now() / 1000);
          const unsigned = `${b64({ alg: "none" })}.${b64({
            sub: "spiffe://broker.org/webapp",
            aud: [QUOTES_ID],
            exp: now + 300,
          })}.`;
          for (const [what, header] of [
            ["no token", undefined],
            ["malformed", "Bearer not-a-jwt"],
            ["alg none", `Bearer ${unsigned}`],
          ] as const) {
            assert.equal(await quotesStatusFromWebappHost(header), 401, what);
          }
          const logs = (await compose(["logs", "--no-color", "stock-quotes-service"])).stdout;
          assert.match(logs, /unsupported-algorithm/, "the log says why the unsigned token failed");
        });

        it("step 4 rotates broker.org's JWT authority; every page load on the way is ok", {
          timeout: 600_000,
        }, async () => {
          const loader = new PageLoader();
          const started = Date.now();
          loader.start();
          try {
            const rotation = await runScript("4-rotate-ca.sh", 540_000, "docker", [
              ...variant.flags,
              "broker.org",
              "--what",
              "jwt",
            ]);
            assert.match(rotation.stdout, /rotated: it signs with key \S+/);
            await new Promise((resolve) => setTimeout(resolve, 3000));
          } finally {
            await loader.stop();
          }
          const loads = loader.between(started);
          const counts = PageLoader.count(loads);
          console.log(`Docker JWT authority rotation: ${PageLoader.describe(loads)}`);
          assert.ok(counts.total > 50, `enough loads: ${PageLoader.describe(loads)}`);
          assert.equal(counts.ok, counts.total, PageLoader.describe(loads));
        });
      }

      it("down -v", { timeout: 300_000 }, async () => {
        expectOk(await compose(["down", "-v"], 300_000), "compose down -v");
        timings.push(`${variant.name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
      });
    });
  }
});
