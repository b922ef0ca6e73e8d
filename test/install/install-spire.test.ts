// scripts/install-spire.sh without a real SPIRE build and without GitHub:
// - the release-archive path against a local HTTP server that serves an archive laid out
//   like the official one (spire-<version>/bin/...), made here from the binaries in .spire/bin;
// - the Go path with a stand-in `go` (fake-go.sh) that "compiles" 200 packages in about
//   4 s, to check the progress output without a terminal.
// Each run gets its own copy of the script and tools/spire in a temporary folder, so the
// project's own .spire/bin is never touched, and a PATH that holds only the tools the
// script needs (so "Go is not installed" holds on any machine).
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync } from "node:fs";
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SPIRE_VERSION } from "../spire-version.js";

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const FAKE_GO = join(REPO_ROOT, "test", "install", "fake-go.sh");
const VERSION_PATTERN = SPIRE_VERSION.replaceAll(".", "\\.");
const ARCHIVE_NAME = new RegExp(`^/spire-${VERSION_PATTERN}-linux-(amd64|arm64)-musl\\.tar\\.gz$`);
// What the script runs, besides bash builtins. `go` is left out on purpose.
const TOOLS = [
  "bash",
  "env",
  "curl",
  "tar",
  "gzip",
  "sha256sum",
  "awk",
  "sed",
  "grep",
  "head",
  "tail",
  "cut",
  "tr",
  "wc",
  "sort",
  "mktemp",
  "rm",
  "mkdir",
  "cp",
  "mv",
  "chmod",
  "cat",
  "sleep",
  "uname",
  "ldd",
  "dirname",
  "seq",
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("scripts/install-spire.sh", { timeout: 180_000 }, () => {
  let work: string;
  let archive: string;
  let archiveSha: string;
  let server: Server;
  let baseUrl: string;
  let requests: string[] = [];
  let runCount = 0;

  /** A fresh copy of the script with tools/spire, as a checkout would have them. */
  const freshRoot = async (): Promise<string> => {
    runCount += 1;
    const root = join(work, `root-${runCount}`);
    await mkdir(join(root, "scripts"), { recursive: true });
    await mkdir(join(root, "tools", "spire"), { recursive: true });
    await copyFile(
      join(REPO_ROOT, "scripts", "install-spire.sh"),
      join(root, "scripts", "install-spire.sh"),
    );
    await chmod(join(root, "scripts", "install-spire.sh"), 0o755);
    await copyFile(join(REPO_ROOT, ".env"), join(root, ".env"));
    for (const file of ["go.mod", "go.sum", "release-checksums.sha256"]) {
      await copyFile(join(REPO_ROOT, "tools", "spire", file), join(root, "tools", "spire", file));
    }
    return root;
  };

  /** A PATH folder with links to TOOLS, plus the given extra executables (name -> file). */
  const toolsDir = async (extra: Record<string, string> = {}): Promise<string> => {
    const dir = join(work, `bin-${runCount}-${Object.keys(extra).join("-") || "plain"}`);
    await mkdir(dir, { recursive: true });
    for (const tool of TOOLS) {
      if (tool in extra) continue;
      const found = spawnSync("bash", ["-c", `command -v ${tool}`], {
        encoding: "utf8",
      }).stdout.trim();
      assert.ok(found, `the test needs ${tool} on PATH`);
      await symlink(found, join(dir, tool));
    }
    for (const [name, file] of Object.entries(extra)) await symlink(file, join(dir, name));
    return dir;
  };

  /** Runs the script with stdout and stderr as pipes (no terminal), as CI does. */
  const run = (root: string, args: string[], env: NodeJS.ProcessEnv, path: string): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(join(root, "scripts", "install-spire.sh"), args, {
        env: { HOME: process.env.HOME, PATH: path, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk;
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
      });
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });

  const installed = (root: string, bin: string) => join(root, ".spire", "bin", bin);

  before(async () => {
    for (const bin of ["spire-server", "spire-agent"]) {
      assert.ok(
        existsSync(join(REPO_ROOT, ".spire", "bin", bin)),
        `.spire/bin/${bin} is missing: these tests pack it into a release-like archive; run scripts/install-spire.sh first`,
      );
    }
    work = await mkdtemp(join(tmpdir(), "install-spire-"));
    // The official layout: spire-<version>/bin/spire-server and spire-agent.
    const stage = join(work, "stage", `spire-${SPIRE_VERSION}`, "bin");
    await mkdir(stage, { recursive: true });
    for (const bin of ["spire-server", "spire-agent"]) {
      await symlink(join(REPO_ROOT, ".spire", "bin", bin), join(stage, bin));
    }
    archive = join(work, "archive.tar.gz");
    execFileSync("bash", [
      "-c",
      'set -o pipefail; tar -chf - -C "$1" "spire-$2" | gzip -1 >"$3"',
      "pack",
      join(work, "stage"),
      SPIRE_VERSION,
      archive,
    ]);
    archiveSha = sha256(archive);

    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      if (!ARCHIVE_NAME.test(req.url ?? "")) {
        res.writeHead(404).end("not found\n");
        return;
      }
      stat(archive).then(({ size }) => {
        res.writeHead(200, { "content-type": "application/gzip", "content-length": size });
        if (req.method === "HEAD") res.end();
        else createReadStream(archive).pipe(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    if (work) await rm(work, { recursive: true, force: true });
  });

  const releaseEnv = (sha = archiveSha): NodeJS.ProcessEnv => ({
    SPIRE_INSTALL_TEST_RELEASE_URL: baseUrl,
    SPIRE_INSTALL_TEST_RELEASE_SHA256: sha,
  });

  it("without Go: downloads the release archive, checks it and installs both binaries", async () => {
    const root = await freshRoot();
    const path = await toolsDir();
    requests = [];
    const result = await run(root, [], releaseEnv(), path);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /Go is not installed: using the official release archive/);
    assert.match(result.stdout, new RegExp(`SHA-256 ${archiveSha} matches`));
    assert.match(result.stdout, /installed in \.spire\/bin from the release archive in \d+:\d{2}/);
    for (const bin of ["spire-server", "spire-agent"]) {
      assert.equal(
        sha256(installed(root, bin)),
        sha256(join(REPO_ROOT, ".spire", "bin", bin)),
        bin,
      );
    }
    assert.ok(
      requests.some((r) => r.startsWith(`GET /spire-${SPIRE_VERSION}-linux-`)),
      requests.join(", "),
    );

    const again = await run(root, [], releaseEnv(), path);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already installed/);
  });

  it("a checksum mismatch: refuses, says both checksums, installs nothing", async () => {
    const root = await freshRoot();
    const wrong = "0".repeat(64);
    const result = await run(root, ["--from", "release"], releaseEnv(wrong), await toolsDir());
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`checksum mismatch for spire-${VERSION_PATTERN}-linux-\\w+-musl\\.tar\\.gz`),
    );
    assert.match(result.stderr, new RegExp(`expected SHA-256 ${wrong}`));
    assert.match(result.stderr, new RegExp(`got +SHA-256 ${archiveSha}`));
    assert.equal(existsSync(installed(root, "spire-server")), false);
    assert.equal(existsSync(installed(root, "spire-agent")), false);
  });

  it("the committed checksum refuses another archive served under the real archive name", async () => {
    const root = await freshRoot();
    requests = [];
    // No SPIRE_INSTALL_TEST_RELEASE_SHA256: the script checks against the committed file.
    const result = await run(
      root,
      ["--from", "release"],
      { SPIRE_INSTALL_TEST_RELEASE_URL: baseUrl },
      await toolsDir(),
    );
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const archiveName = new RegExp(`spire-${VERSION_PATTERN}-linux-(amd64|arm64)-musl\\.tar\\.gz`);
    const served = archiveName.exec(requests.find((r) => r.startsWith("GET ")) ?? "")?.[0];
    assert.ok(served, `the real archive name was downloaded: ${requests.join(", ")}`);
    const committed = (
      await readFile(join(REPO_ROOT, "tools", "spire", "release-checksums.sha256"), "utf8")
    )
      .split("\n")
      .find((line) => !line.startsWith("#") && line.endsWith(`  ${served}`))
      ?.split("  ")[0];
    assert.match(committed ?? "", /^[0-9a-f]{64}$/, `a committed SHA-256 for ${served}`);
    assert.match(
      result.stderr,
      new RegExp(`checksum mismatch for ${served.replaceAll(".", "\\.")}`),
    );
    assert.match(result.stderr, new RegExp(`expected SHA-256 ${committed}`));
    assert.match(result.stderr, new RegExp(`got +SHA-256 ${archiveSha}`));
    assert.equal(existsSync(installed(root, "spire-server")), false);
    assert.equal(existsSync(installed(root, "spire-agent")), false);
  });

  it("the committed checksums cover both Linux archives that SPIRE publishes", async () => {
    const lines = (
      await readFile(join(REPO_ROOT, "tools", "spire", "release-checksums.sha256"), "utf8")
    )
      .split("\n")
      .filter((line) => line && !line.startsWith("#"));
    assert.deepEqual(
      lines.map((line) => line.replace(/^[0-9a-f]{64} {2}/, "<sha256>  ")),
      ["amd64", "arm64"].map(
        (arch) => `<sha256>  spire-${SPIRE_VERSION}-linux-${arch}-musl.tar.gz`,
      ),
    );
  });

  it("an unreachable URL: says there is no connection and what to do instead", async () => {
    const root = await freshRoot();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await run(
      root,
      ["--from", "release"],
      { ...releaseEnv(), SPIRE_INSTALL_TEST_RELEASE_URL: `http://127.0.0.1:${port}` },
      await toolsDir(),
    );
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(
        `cannot download http://127\\.0\\.0\\.1:\\d+/spire-${VERSION_PATTERN}-.*: no connection to the server`,
      ),
    );
    assert.match(result.stderr, /--from go/);
  });

  it("a missing file on the server: names the HTTP error", async () => {
    const root = await freshRoot();
    const result = await run(
      root,
      ["--from", "release"],
      { ...releaseEnv(), SPIRE_INSTALL_TEST_RELEASE_URL: `${baseUrl}/elsewhere` },
      await toolsDir(),
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /the server answered with an HTTP error: .*404/);
  });

  it("unsupported platforms: macOS and other processors are refused before any download", async () => {
    for (const [os, machine, message] of [
      ["Darwin", "arm64", /SPIRE publishes no release archive for macOS/],
      ["Linux", "riscv64", /no SPIRE release archive for the processor 'riscv64'/],
      ["FreeBSD", "amd64", /no SPIRE release archive for the operating system 'FreeBSD'/],
    ] as const) {
      const root = await freshRoot();
      const fakeUname = join(work, `uname-${os}-${machine}`);
      await writeFile(
        fakeUname,
        `#!/bin/sh\nif [ "$1" = -m ]; then echo ${machine}; else echo ${os}; fi\n`,
        { mode: 0o755 },
      );
      requests = [];
      const result = await run(
        root,
        ["--from", "release"],
        releaseEnv(),
        await toolsDir({ uname: fakeUname }),
      );
      assert.equal(result.code, 1, `${os} ${machine}`);
      assert.match(result.stderr, message);
      assert.match(result.stderr, /--from go/);
      assert.deepEqual(requests, []);
    }
  });

  it("Go too old: the release archive instead; --from go refuses and says why", async () => {
    const root = await freshRoot();
    const path = await toolsDir({ go: FAKE_GO });
    const env = {
      ...releaseEnv(),
      FAKE_GO_VERSION: "go1.20.1",
      FAKE_GO_MODCACHE: join(work, "modcache"),
    };
    const refused = await run(root, ["--from", "go"], env, path);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /Go 1\.20\.1 is older than the 1\.26\.6 that tools\/spire\/go\.mod needs/,
    );
    const result = await run(root, [], env, path);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /older than the 1\.26\.6 .*: using the official release archive/);
  });

  it("building with Go: a few progress lines without a terminal, the same static build, the total time", async () => {
    const root = await freshRoot();
    const goLog = join(work, "go-calls.log");
    const result = await run(
      root,
      [],
      { FAKE_GO_LOG: goLog, FAKE_GO_MODCACHE: join(work, "modcache"), FAKE_GO_PACKAGES: "200" },
      await toolsDir({ go: FAKE_GO }),
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const output = result.stdout;
    assert.ok(
      !output.includes("\r") && !output.includes("\u001b"),
      "no carriage returns or colours without a terminal",
    );
    const progress = [
      ...output.matchAll(/^ {2}compiling: (\d+)\/200 packages \((\d+) %\), (\d+):(\d{2})$/gm),
    ];
    assert.ok(progress.length >= 2, `progress lines while compiling:\n${output}`);
    assert.ok(progress.length <= 10, `one line per 10 % at most, not one per package:\n${output}`);
    const percents = progress.map((line) => Number(line[2]));
    for (let i = 1; i < percents.length; i++) {
      assert.ok(
        (percents[i] as number) >= (percents[i - 1] as number) + 10,
        `steps of 10 %: ${percents}`,
      );
    }
    assert.ok(
      percents.every((p) => p < 100),
      "100 % only once it is done",
    );
    assert.match(output, /^ {2}compiled 200 packages; the rest came from Go's build cache$/m);
    assert.match(
      output,
      new RegExp(
        `SPIRE ${VERSION_PATTERN} built and installed in \\.spire/bin in \\d+:\\d{2} \\(m:ss\\)\\.$`,
        "m",
      ),
    );

    // What gets built is unchanged: the same packages, statically linked on Linux.
    const install = (await readFile(goLog, "utf8"))
      .split("--- call\n")
      .find((call) => call.startsWith("install\n"));
    assert.ok(install, "go install ran");
    assert.deepEqual(install.trim().split("\n"), [
      "install",
      "-v",
      "-tags",
      "netgo,osusergo",
      "-ldflags",
      '-s -w -linkmode external -extldflags "-static"',
      "github.com/spiffe/spire/cmd/spire-server",
      "github.com/spiffe/spire/cmd/spire-agent",
    ]);
    assert.ok(existsSync(installed(root, "spire-server")));
  });
});
