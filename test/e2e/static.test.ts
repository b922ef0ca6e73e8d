// Checks that need no running SPIRE: every shell script passes shellcheck, and the Docker
// mode's compose file is valid and refers only to files that exist. (docker.test.ts runs
// Docker mode itself.)
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
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
    assert.match(compose, /image: ghcr\.io\/spiffe\/spire-server:1\.13\.3\n/);
    assert.match(compose, /"8080:8080"/);
    const dockerfile = readFileSync(join(ROOT, "docker/workload.Dockerfile"), "utf8");
    assert.match(dockerfile, /ARG SPIRE_VERSION=1\.13\.3\n/);
    assert.match(dockerfile, /FROM ghcr\.io\/spiffe\/spire-agent:\$\{SPIRE_VERSION\}/);
  });

  it("every file docker-compose.yml mounts or builds from exists", {
    timeout: 120_000,
  }, async () => {
    // The agent certificates are generated, never committed: make them as build.sh does.
    const certs = await run(join(ROOT, "scripts/make-agent-certs.sh"), []);
    assert.equal(certs.code, 0, certs.stderr);
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
