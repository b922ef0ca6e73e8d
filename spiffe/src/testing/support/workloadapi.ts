// Helpers shared by the Workload API tests (not part of the library's API).

import type { Logger } from "../../logger/logger.js";
import { TrustDomain } from "../../spiffeid/spiffeid.js";
import type { Watcher } from "../../workloadapi/client.js";
import type { WorkloadApiError } from "../../workloadapi/errors.js";
import { TestCa } from "../ca.js";
import type { FakeSvid } from "../fake-workload-api.js";

export const EXAMPLE = TrustDomain.parse("example.org");
export const OTHER = TrustDomain.parse("other.org");

/** Small delays so reconnect tests take milliseconds, not seconds. */
export const FAST_BACKOFF = { initialMs: 10, maxMs: 40 };

/** Polls `check` every 5 ms until it returns true; fails after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A Logger that keeps what it was given, so tests can assert on warnings. */
export class RecordingLogger implements Logger {
  readonly entries: { level: string; obj: object; msg: string }[] = [];
  debug(obj: object, msg = "") {
    this.entries.push({ level: "debug", obj, msg });
  }
  info(obj: object, msg = "") {
    this.entries.push({ level: "info", obj, msg });
  }
  warn(obj: object, msg = "") {
    this.entries.push({ level: "warn", obj, msg });
  }
  error(obj: object, msg = "") {
    this.entries.push({ level: "error", obj, msg });
  }
  at(level: string) {
    return this.entries.filter((entry) => entry.level === level);
  }
}

/** A Watcher that records every update and error. */
export class RecordingWatcher<T> implements Watcher<T> {
  readonly updates: T[] = [];
  readonly errors: { error: WorkloadApiError; willRetry: boolean }[] = [];
  onUpdate(value: T) {
    this.updates.push(value);
  }
  onError(error: WorkloadApiError, willRetry: boolean) {
    this.errors.push({ error, willRetry });
  }
  get last(): T | undefined {
    return this.updates.at(-1);
  }
}

/** An SVID from `ca`, in the shape the fake Workload API sends. */
export async function fakeSvid(ca: TestCa, spiffeId: string): Promise<FakeSvid> {
  const issued = await ca.issue(spiffeId);
  return { spiffeId, chainDer: issued.chainDer, keyDer: issued.keyDer, bundleDer: ca.bundleDer() };
}

/**
 * The CAs of example.org and other.org, and SVIDs from example.org's CA: `workload`,
 * `rotated` (the same ID, a new certificate) and `second` (another ID).
 */
export async function createFixtures() {
  const exampleCa = await TestCa.create("example.org");
  const otherCa = await TestCa.create("other.org");
  return {
    exampleCa,
    otherCa,
    workload: await fakeSvid(exampleCa, "spiffe://example.org/workload"),
    rotated: await fakeSvid(exampleCa, "spiffe://example.org/workload"),
    second: await fakeSvid(exampleCa, "spiffe://example.org/second"),
  };
}
