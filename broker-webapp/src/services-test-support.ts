// Shared by the services tests (services.test.ts, browser.test.ts): two trust domains
// served by fake Workload APIs, and the two services run as real processes from their
// compiled dist/ folders. The end-to-end test against real SPIRE is test/e2e/.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { FakeWorkloadApi, type IssueOptions, TestCa } from "spiffe-node/testing";

/** The repository root, from broker-webapp/dist/ (tests) or broker-webapp/src/ (tsx). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const QUOTES_MAIN = fileURLToPath(
  new URL("../../stock-quotes-service/dist/main.js", import.meta.url),
);
export const WEBAPP_MAIN = fileURLToPath(
  new URL("../../broker-webapp/dist/main.js", import.meta.url),
);

export const WEBAPP_ID = "spiffe://broker.org/webapp";
export const QUOTES_ID = "spiffe://stocksmarket.org/quotes-service";

/** The tutorial's two trust domains, each with its CA and its agent's Workload API. */
export class Federation {
  readonly brokerCa: TestCa;
  readonly stocksCa: TestCa;
  readonly brokerApi: FakeWorkloadApi;
  readonly stocksApi: FakeWorkloadApi;

  private constructor(
    brokerCa: TestCa,
    stocksCa: TestCa,
    brokerApi: FakeWorkloadApi,
    stocksApi: FakeWorkloadApi,
  ) {
    this.brokerCa = brokerCa;
    this.stocksCa = stocksCa;
    this.brokerApi = brokerApi;
    this.stocksApi = stocksApi;
  }

  /**
   * Both trust domains, with no SVIDs issued yet. The broker's agent listens on a unix
   * socket, the stock market's on loopback TCP, so both address forms are used for real.
   */
  static async create(): Promise<Federation> {
    const [brokerCa, stocksCa, brokerApi, stocksApi] = await Promise.all([
      TestCa.create("broker.org"),
      TestCa.create("stocksmarket.org"),
      FakeWorkloadApi.start(),
      FakeWorkloadApi.start({ tcp: true }),
    ]);
    return new Federation(brokerCa, stocksCa, brokerApi, stocksApi);
  }

  /**
   * Issues the webapp an SVID, with the stock market's bundle federated unless
   * `federated` is false. Returns its expiry.
   */
  async issueWebappSvid(options: IssueOptions = {}, federated = true): Promise<Date> {
    const svid = await this.brokerCa.issue(WEBAPP_ID, options);
    this.brokerApi.setX509({
      svids: [
        {
          spiffeId: WEBAPP_ID,
          chainDer: svid.chainDer,
          keyDer: svid.keyDer,
          bundleDer: this.brokerCa.bundleDer(),
        },
      ],
      federatedBundles: federated ? { "spiffe://stocksmarket.org": this.stocksCa.bundleDer() } : {},
    });
    return new Date((svid.certificates[0] as { validTo: string }).validTo);
  }

  /**
   * Issues the quotes service an SVID, with the broker's bundle federated unless
   * `federated` is false. Returns its expiry.
   */
  async issueQuotesSvid(options: IssueOptions = {}, federated = true): Promise<Date> {
    const svid = await this.stocksCa.issue(QUOTES_ID, options);
    this.stocksApi.setX509({
      svids: [
        {
          spiffeId: QUOTES_ID,
          chainDer: svid.chainDer,
          keyDer: svid.keyDer,
          bundleDer: this.stocksCa.bundleDer(),
        },
      ],
      federatedBundles: federated ? { "spiffe://broker.org": this.brokerCa.bundleDer() } : {},
    });
    return new Date((svid.certificates[0] as { validTo: string }).validTo);
  }

  async stop(): Promise<void> {
    await Promise.all([this.brokerApi.stop(), this.stocksApi.stop()]);
  }
}

/** One pino JSON log line. */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A service started with `node <script> ...args`; collects its JSON log lines. */
export class ServiceProcess {
  readonly name: string;
  readonly logs: LogLine[] = [];
  /** Everything written to stderr (commander's messages). */
  stderr = "";
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  readonly #child: ChildProcess;
  #waiters: { test: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  #exit: Exit | undefined;

  constructor(name: string, script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.name = name;
    this.#child = spawn(process.execPath, [script, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let pending = "";
    this.#child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const text of lines) this.#onLine(text);
    });
    this.#child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.#child.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  #onLine(text: string): void {
    if (text.trim() === "") return;
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { level: 0, msg: text };
    }
    this.logs.push(line);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.test(line)) return true;
      waiter.resolve(line);
      return false;
    });
  }

  /** Where the next log line will be: pass it as `from` to wait only for lines after now. */
  mark(): number {
    return this.logs.length;
  }

  /**
   * The first log line from index `from` on (already logged or still to come) that
   * passes `test`. Take `from` from mark() before the action whose line you await, so an
   * earlier line cannot answer; 0 means any line since the process started.
   */
  waitForLog(
    test: (line: LogLine) => boolean,
    what: string,
    options: { from: number; timeoutMs?: number },
  ): Promise<LogLine> {
    const { from, timeoutMs = 10_000 } = options;
    const seen = this.logs.slice(from).find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `${this.name}: no log line "${what}" from line ${from} on within ${timeoutMs} ms` +
              `${this.#exit ? ` (exited with ${JSON.stringify(this.#exit)})` : ""}; ` +
              `logs so far:\n${this.logs.map((l) => JSON.stringify(l)).join("\n")}\n${this.stderr}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push({
        test,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  /** Waits for the "listening" line and returns the port bound. */
  async port(timeoutMs = 10_000): Promise<number> {
    // A process listens once, so any line since it started will do.
    const line = await this.waitForLog(
      (l) => typeof l.port === "number" && /listening/.test(l.msg),
      "listening",
      { from: 0, timeoutMs },
    );
    return line.port as number;
  }

  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<Exit> {
    if (!this.#exit) this.#child.kill(signal);
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 10_000);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}

export function startQuotesService(
  federation: Federation,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): ServiceProcess {
  return new ServiceProcess(
    "stock-quotes-service",
    QUOTES_MAIN,
    ["--host", "127.0.0.1", "--port", "0", "--socket", federation.stocksApi.address, ...args],
    env,
  );
}

export function startWebapp(
  federation: Federation,
  quotesUrl: string,
  args: string[] = [],
): ServiceProcess {
  return new ServiceProcess("broker-webapp", WEBAPP_MAIN, [
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--socket",
    federation.brokerApi.address,
    "--quotes-url",
    quotesUrl,
    ...args,
  ]);
}

/** The page as the browser would get it. */
export async function getPage(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/quotes`);
  assert.equal(response.status, 200);
  return response.text();
}

/** The table's body rows as cell texts. */
export function tableRows(html: string): string[][] {
  const body = html.split("<tbody>")[1]?.split("</tbody>")[0] ?? "";
  return [...body.matchAll(/<tr>(.*?)<\/tr>/g)].map((row) =>
    [...(row[1] ?? "").matchAll(/<td>(.*?)<\/td>/g)].map((cell) => cell[1] ?? ""),
  );
}

/** Polls `check` until it returns a value (not undefined) or the time is up. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A loopback port the test holds, forwarding each connection to `target` once set. A
 * client can be given this address before the server behind it has listened (on port 0,
 * reading its port from its log), instead of a port found free, released, and hoped to
 * stay free until the server binds it. Connections arriving without a target are closed.
 */
export class TcpForwarder {
  target: number | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #server = createServer((client) => {
    this.#track(client);
    if (this.target === undefined) {
      client.destroy();
      return;
    }
    const upstream = this.#track(connect(this.target, "127.0.0.1"));
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });

  #track(socket: Socket): Socket {
    this.#sockets.add(socket);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.#sockets.delete(socket));
    return socket;
  }

  /** Listens on a free loopback port and returns it. */
  listen(): Promise<number> {
    return new Promise((resolve) => {
      this.#server.listen(0, "127.0.0.1", () => {
        resolve((this.#server.address() as { port: number }).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
  }
}
