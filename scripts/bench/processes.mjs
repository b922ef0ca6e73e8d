// Child processes for the system benchmark: the services (and the plain Node server) as
// real processes, their memory and CPU from /proc, and the load generators. Every process
// started here is stopped by pid, also when the benchmark fails or is interrupted.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const running = new Set();

/** Stops every process still running (by pid); for the benchmark's error and signal paths. */
export function stopAll() {
  for (const child of running) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  running.clear();
}

/** Fails with the package to install when `command` is not on the PATH. */
export function requireCommand(command, debianPackage) {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  if (found.status !== 0) {
    throw new Error(
      `the system benchmark needs \`${command}\`: install it with \`apt-get install ${debianPackage}\``,
    );
  }
}

/**
 * A long-running process (a service, the plain server) whose stdout is read as JSON log
 * lines. `ready(test)` waits for a line passing `test`.
 */
export class ServiceProcess {
  constructor(name, args, env = {}) {
    this.name = name;
    this.lines = [];
    this.stderr = "";
    this.waiters = [];
    this.child = spawn(process.execPath, args, {
      env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(this.child);
    this.pid = this.child.pid;
    let pending = "";
    this.child.stdout.setEncoding("utf8").on("data", (chunk) => {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const text of parts) this.#onLine(text);
    });
    this.child.stderr.setEncoding("utf8").on("data", (chunk) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        running.delete(this.child);
        this.exit = { code, signal };
        for (const waiter of this.waiters) waiter.fail();
        resolve(this.exit);
      });
    });
  }

  #onLine(text) {
    if (text.trim() === "") return;
    let line;
    try {
      line = JSON.parse(text);
    } catch {
      line = { msg: text };
    }
    this.lines.push(line);
    this.waiters = this.waiters.filter((waiter) => !waiter.offer(line));
  }

  /** Log lines since index `from` whose message matches `pattern`. */
  count(pattern, from = 0) {
    return this.lines.slice(from).filter((line) => pattern.test(String(line.msg))).length;
  }

  /** The first log line passing `test`, within `timeoutMs`. */
  waitFor(test, what, timeoutMs = 20_000) {
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const failWith = (why) =>
        reject(
          new Error(
            `${this.name}: ${why} while waiting for "${what}"; its output:\n` +
              `${this.lines.map((l) => JSON.stringify(l)).join("\n")}\n${this.stderr}`,
          ),
        );
      const timer = setTimeout(() => failWith(`nothing within ${timeoutMs} ms`), timeoutMs);
      if (this.exit) failWith(`it exited (${JSON.stringify(this.exit)})`);
      this.waiters.push({
        offer: (line) => {
          if (!test(line)) return false;
          clearTimeout(timer);
          resolve(line);
          return true;
        },
        fail: () => {
          clearTimeout(timer);
          failWith(`it exited (${JSON.stringify(this.exit)})`);
        },
      });
    });
  }

  /** SIGTERM, then SIGKILL after 10 s; resolves once it has exited. */
  async stop() {
    if (!this.exit) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Resident set size of `pid` in MB (VmRSS in /proc). */
export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  return kb / 1024;
}

/** CPU seconds (user + system) `pid` has used so far. */
export function cpuSeconds(pid) {
  // Fields after the command name (which is in parentheses and may contain spaces).
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based 11, 12).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Samples the RSS of `pids` every 100 ms until `stop()`, which returns the peak of each, the
 * CPU each used meanwhile (as a share of one core) and the seconds watched.
 */
export function watch(pids) {
  const peak = new Map(pids.map((pid) => [pid, rssMb(pid)]));
  const cpuStart = new Map(pids.map((pid) => [pid, cpuSeconds(pid)]));
  const started = performance.now();
  const timer = setInterval(() => {
    for (const pid of pids) peak.set(pid, Math.max(peak.get(pid), rssMb(pid)));
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      const result = new Map();
      for (const pid of pids) {
        result.set(pid, {
          peakMb: Math.max(peak.get(pid), rssMb(pid)),
          cpu: (cpuSeconds(pid) - cpuStart.get(pid)) / seconds,
          seconds,
        });
      }
      return result;
    },
  };
}

/**
 * Runs a command to its end, with `env` added to the environment; resolves with its stdout
 * (rejects on a non-zero exit).
 */
export function runToEnd(command, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk) => {
      stderr += chunk;
    });
    child.once("error", (error) => {
      running.delete(child);
      reject(error);
    });
    child.once("exit", (code) => {
      running.delete(child);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${stderr}`));
    });
  });
}
