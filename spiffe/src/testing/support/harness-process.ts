// Runs the harness script as its own process, as the public suite does: environment
// SPIFFE_ENDPOINT_SOCKET only, readiness read from stdout, stopped with SIGTERM (then
// SIGKILL after 5 s) by its pid. Not part of the library's API.

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The compiled script next to this module (or the source, under tsx). */
const fromSource = import.meta.url.endsWith(".ts");
const SCRIPT = fileURLToPath(
  new URL(
    fromSource ? "../../conformance/harness.ts" : "../../conformance/harness.js",
    import.meta.url,
  ),
);

export interface Readiness {
  version: string;
  x509Port: number;
  controlPort: number;
  /** Every stdout line up to and including READY. */
  lines: string[];
}

export class HarnessProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = "";
  /** Exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  private readonly listeners = new Set<() => void>();

  private constructor(child: ChildProcess) {
    this.child = child;
    let partial = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      partial += chunk;
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      this.lines.push(...parts);
      for (const listener of this.listeners) listener();
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        resolve(code ?? signal ?? "unknown");
        for (const listener of this.listeners) listener();
      });
    });
  }

  /** Starts the harness with `SPIFFE_ENDPOINT_SOCKET` set to `endpoint` (unset if undefined). */
  static start(endpoint: string | undefined): HarnessProcess {
    const env = { ...process.env };
    delete env.SPIFFE_ENDPOINT_SOCKET;
    if (endpoint !== undefined) env.SPIFFE_ENDPOINT_SOCKET = endpoint;
    const args = fromSource ? ["--import", "tsx", SCRIPT] : [SCRIPT];
    return new HarnessProcess(
      spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] }),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once a stdout line satisfies `match`; rejects on exit or timeout. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(match);
        if (found !== undefined) finish(() => resolve(found));
        else if (!this.running) {
          finish(() => reject(new Error(`the harness exited first; stderr:\n${this.stderr}`)));
        }
      };
      const timer = setTimeout(() => {
        finish(() =>
          reject(
            new Error(
              `no such line within ${timeoutMs} ms; stdout: ${JSON.stringify(this.lines)}; stderr:\n${this.stderr}`,
            ),
          ),
        );
      }, timeoutMs);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** The contract's readiness: the three lines, then READY. */
  async ready(timeoutMs = 10_000): Promise<Readiness> {
    await this.waitForLine((line) => line === "READY", timeoutMs);
    const lines = this.lines.slice(0, this.lines.indexOf("READY") + 1);
    const value = (key: string) =>
      lines.find((line) => line.startsWith(`${key}=`))?.slice(key.length + 1);
    return {
      version: value("SPIFFE_HARNESS_VERSION") ?? "",
      x509Port: Number(value("SPIFFE_X509_PORT")),
      controlPort: Number(value("SPIFFE_CONTROL_PORT")),
      lines,
    };
  }

  /** SIGTERM, then SIGKILL after 5 s, as the suite does; resolves with the exit status. */
  async stop(): Promise<number | string> {
    if (this.running) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }
}
