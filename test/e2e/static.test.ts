// Checks that need no running SPIRE: every shell script passes shellcheck, and the Docker
// mode's compose file is valid and refers only to files that exist. (docker.test.ts runs
// Docker mode itself.)
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { SPIRE_SERVER_IMAGE, SPIRE_VERSION } from "../spire-version.js";
import { ROOT, run } from "./demo.js";

const SKIP_DIRS = new Set(["node_modules", ".git", ".spire", ".data", "dist", "test-output"]);

function shellScripts(dir: string, found: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) shellScripts(join(dir, entry.name), found);
    } else if (entry.name.endsWith(".sh")) {
      found.push(relative(ROOT, join(dir, entry.name)));
    }
  }
  return found;
}

async function requireTool(tool: string, install: string): Promise<void> {
  const found = await run("sh", ["-c", `command -v ${tool}`]);
  assert.equal(found.code, 0, `${tool} is not installed: ${install} (.ci/run does this)`);
}

describe("static checks", () => {
  it("every shell script passes shellcheck", { timeout: 120_000 }, async () => {
    await requireTool("shellcheck", "apt-get install shellcheck");
    const scripts = shellScripts(ROOT).sort();
    for (const expected of [
      "build.sh",
      "1-start-spire-agents.sh",
      "2-bootstrap-federation.sh",
      "3-create-registration-entries.sh",
      "scripts/lib.sh",
      "scripts/install-spire.sh",
    ]) {
      assert.ok(scripts.includes(expected), `${expected} is checked`);
    }
    const result = await run("shellcheck", ["-x", ...scripts]);
    assert.equal(result.code, 0, `shellcheck found problems:\n${result.stdout}${result.stderr}`);
  });

  it("docker-compose.yml is valid and names the tutorial's hosts", {
    timeout: 120_000,
  }, async () => {
    await requireTool("docker-compose", "apt-get install docker-compose");
    const config = await run("docker-compose", ["-f", "docker-compose.yml", "config", "-q"]);
    assert.equal(config.code, 0, `docker-compose config rejects the file:\n${config.stderr}`);
    const services = await run("docker-compose", [
      "-f",
      "docker-compose.yml",
      "config",
      "--services",
    ]);
    assert.deepEqual(services.stdout.trim().split("\n").sort(), [
      "broker-webapp",
      "spire-server-broker",
      "spire-server-stocks",
      "stock-quotes-service",
    ]);
    const compose = readFileSync(join(ROOT, "docker-compose.yml"), "utf8");
    assert.match(compose, /"8080:8080"/);
    // The release comes from .env (SPIRE_VERSION), which compose reads by itself: the
    // resolved file names the pinned images, and the workload builds get the same version.
    const resolved = (await run("docker-compose", ["-f", "docker-compose.yml", "config"])).stdout;
    assert.equal(
      resolved.match(new RegExp(`image: ${SPIRE_SERVER_IMAGE.replaceAll(".", "\\.")}\n`, "g"))
        ?.length,
      2,
      `both servers run ${SPIRE_SERVER_IMAGE}`,
    );
    assert.equal(
      resolved.match(new RegExp(`SPIRE_VERSION: ${SPIRE_VERSION.replaceAll(".", "\\.")}\n`, "g"))
        ?.length,
      2,
      `both workload images are built with SPIRE_VERSION ${SPIRE_VERSION}`,
    );
    const dockerfile = readFileSync(join(ROOT, "docker/workload.Dockerfile"), "utf8");
    assert.match(dockerfile, /^ARG SPIRE_VERSION\n/m, "no default version in the Dockerfile");
    assert.match(dockerfile, /FROM ghcr\.io\/spiffe\/spire-agent:\$\{SPIRE_VERSION\}/);
  });

  it("the SPIRE release is named in .env only, and tools/spire/go.mod pins the same one", () => {
    const goMod = readFileSync(join(ROOT, "tools", "spire", "go.mod"), "utf8");
    assert.match(
      goMod,
      new RegExp(`^\\s+github\\.com/spiffe/spire v${SPIRE_VERSION.replaceAll(".", "\\.")}\\b`, "m"),
    );
    const tracked = spawnSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).stdout.split(
      "\n",
    );
    // Places that must read the version rather than write it (history notes in the README
    // may name older releases, so the README is not among them).
    for (const file of tracked.filter(
      (f) => /\.(sh|ts|mjs|yml|conf)$|Dockerfile$/.test(f) && f !== "test/spire-version.ts",
    )) {
      const text = readFileSync(join(ROOT, file), "utf8");
      assert.ok(!text.includes(SPIRE_VERSION), `${file} names ${SPIRE_VERSION}: read it from .env`);
    }
  });

  it("each server config variant differs from server.conf only in its federation block", () => {
    // Outside the leading comment and `federation { ... }`, the variants must stay identical
    // to the tutorial's server.conf, so a change there cannot be forgotten in a variant.
    const outsideFederation = (text: string): string =>
      text
        .replace(/^(#.*\n)+/, "")
        .replace(/\n {2}federation \{\n[\s\S]*?\n {2}\}\n/, "\n  federation {}\n");
    for (const server of ["spire-server-broker", "spire-server-stocks"]) {
      const dir = join(ROOT, "docker", server);
      const base = readFileSync(join(dir, "server.conf"), "utf8");
      assert.match(base, /profile "https_spiffe" \{\}/);
      const variants = readdirSync(dir)
        .filter((f) => /^server\..+\.conf$/.test(f))
        .sort();
      assert.deepEqual(variants, [
        "server.api.conf",
        "server.https_web.api.conf",
        "server.https_web.conf",
      ]);
      for (const variant of variants) {
        const text = readFileSync(join(dir, variant), "utf8");
        assert.equal(outsideFederation(text), outsideFederation(base), `${server}/${variant}`);
        assert.equal(/federates_with/.test(text.replace(/#.*$/gm, "")), !variant.includes("api"));
        assert.equal(/profile "https_web"/.test(text), variant.includes("https_web"));
      }
    }
  });

  it("every file docker-compose.yml mounts or builds from exists", {
    timeout: 120_000,
  }, async () => {
    // The agent certificates are generated, never committed: make them as build.sh does.
    for (const script of ["scripts/make-agent-certs.sh", "scripts/make-web-pki.sh"]) {
      const certs = await run(join(ROOT, script), []);
      assert.equal(certs.code, 0, certs.stderr);
    }
    const compose = readFileSync(join(ROOT, "docker-compose.yml"), "utf8");
    const mounted = [...compose.matchAll(/^\s*- (\.\/[^:\s]+):/gm)].map((m) => m[1] ?? "");
    const built = [...compose.matchAll(/^\s*dockerfile: (\S+)$/gm)].map((m) => m[1] ?? "");
    assert.ok(mounted.length >= 8, `found the bind mounts: ${mounted.join(", ")}`);
    assert.ok(built.length === 2);
    for (const path of [...mounted, ...built, ".dockerignore"]) {
      assert.ok(existsSync(join(ROOT, path)), `${path} exists`);
    }
    const dockerfile = readFileSync(join(ROOT, "docker/workload.Dockerfile"), "utf8");
    for (const service of ["broker-webapp", "stock-quotes-service"]) {
      assert.ok(existsSync(join(ROOT, "docker", service, "agent.conf")));
    }
    for (const copied of dockerfile.matchAll(/^COPY (?!--from)(\S+)/gm)) {
      const path = (copied[1] ?? "").replace(/\$\{SERVICE\}/g, "broker-webapp");
      assert.ok(existsSync(join(ROOT, path)), `COPY source ${path} exists`);
    }
  });
});
