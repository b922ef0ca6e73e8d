// A browser stand-in for the fault tests: loads http://localhost:8080/quotes every 200 ms
// for as long as it runs and classifies every load, so each fault can be judged by what a
// user watching the page would have seen.

/** ok: 11 quote rows, no error line; error: the page's "Quotes service unavailable" line;
 *  waiting: the "Waiting for an X.509 SVID" page; http: no page at all (refused, timeout,
 *  status other than 200, or a page without the quotes table). */
export type LoadClass = "ok" | "error" | "waiting" | "http";

export interface Load {
  /** When the load started and ended (Date.now()). */
  startedAt: number;
  endedAt: number;
  kind: LoadClass;
  /** Quote rows on the page (the last quotes are kept while the service is down). */
  rows: number;
  /** The error line's reason, or what went wrong with the request. */
  detail: string;
}

export type Counts = Record<LoadClass, number> & { total: number };

const URL_QUOTES = "http://localhost:8080/quotes";
const INTERVAL_MS = 200;

function classify(status: number, html: string): Pick<Load, "kind" | "rows" | "detail"> {
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1];
  const rows = body === undefined ? 0 : [...body.matchAll(/<tr>/g)].length;
  if (status !== 200 || body === undefined) {
    return { kind: "http", rows, detail: `HTTP ${status}` };
  }
  const error = /Quotes service unavailable<\/strong>: ([^<]*)/.exec(html);
  if (error) return { kind: "error", rows, detail: error[1] ?? "" };
  if (html.includes("Waiting for an X.509 SVID")) return { kind: "waiting", rows, detail: "" };
  if (rows !== 11) return { kind: "http", rows, detail: `${rows} quote rows` };
  return { kind: "ok", rows, detail: "" };
}

export class PageLoader {
  readonly loads: Load[] = [];
  #running = false;
  #done: Promise<void> | undefined;

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#done = this.#loop();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      const startedAt = Date.now();
      let outcome: Pick<Load, "kind" | "rows" | "detail">;
      try {
        const response = await fetch(URL_QUOTES, { signal: AbortSignal.timeout(5000) });
        outcome = classify(response.status, await response.text());
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause?.code;
        outcome = { kind: "http", rows: 0, detail: cause ?? (error as Error).message };
      }
      const endedAt = Date.now();
      this.loads.push({ startedAt, endedAt, ...outcome });
      const wait = INTERVAL_MS - (endedAt - startedAt);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** The loads that started in [from, to). */
  between(from: number, to = Number.POSITIVE_INFINITY): Load[] {
    return this.loads.filter((load) => load.startedAt >= from && load.startedAt < to);
  }

  static count(loads: readonly Load[]): Counts {
    const counts: Counts = { ok: 0, error: 0, waiting: 0, http: 0, total: loads.length };
    for (const load of loads) counts[load.kind] += 1;
    return counts;
  }

  /** "812 loads: 812 ok, 0 error line, 0 waiting page, 0 HTTP failure" plus the failures. */
  static describe(loads: readonly Load[]): string {
    const c = PageLoader.count(loads);
    const failures = loads
      .filter((load) => load.kind !== "ok")
      .slice(0, 10)
      .map((l) => `\n      ${new Date(l.startedAt).toISOString()} ${l.kind}: ${l.detail}`)
      .join("");
    return (
      `${c.total} loads: ${c.ok} ok, ${c.error} error line, ${c.waiting} waiting page, ` +
      `${c.http} HTTP failure${failures}`
    );
  }

  /** Resolves with the first load, started at or after `from`, that passes `test`. */
  async waitFor(
    test: (load: Load) => boolean,
    from: number,
    timeoutMs: number,
  ): Promise<Load | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.between(from).find(test);
      if (found || Date.now() > deadline) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
