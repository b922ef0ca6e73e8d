// The load generators of the system benchmark, and what their output says.
// - wrk (Debian package wrk): HTTP/1.1 keep-alive load on the webapp.
// - openssl s_time (Debian package openssl): a new mTLS handshake, with the webapp's
//   certificate, and one HTTP/1.0 request per connection, as fast as one C client goes.
import { performance } from "node:perf_hooks";
import { runToEnd } from "./processes.mjs";

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function durationMs(text) {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!match) throw new Error(`wrk printed a latency this script cannot read: ${text}`);
  return Number(match[1]) * UNIT_MS[match[2]];
}

/** Runs wrk; returns requests/s, p50 and p99 in ms, request count and errors. */
export async function wrk(url, { connections, seconds }) {
  const output = await runToEnd("wrk", [
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "--latency",
    "--timeout",
    "5s",
    url,
  ]);
  const field = (pattern, what) => {
    const match = pattern.exec(output);
    if (!match) throw new Error(`no ${what} in wrk's output:\n${output}`);
    return match[1];
  };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    output,
  );
  return {
    perSecond: Number(field(/Requests\/sec:\s+([\d.]+)/, "Requests/sec")),
    p50: durationMs(field(/^\s+50%\s+(\S+)/m, "50th percentile")),
    p99: durationMs(field(/^\s+99%\s+(\S+)/m, "99th percentile")),
    requests: Number(field(/(\d+) requests in/, "request count")),
    errors:
      Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0) +
      (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
  };
}

/**
 * Runs `clients` openssl s_time processes at once for `seconds`, each making new
 * connections (full handshakes, no resumption) that send `GET path` with the client
 * certificate. Returns connections per second of wall time, all clients together.
 */
export async function sTime(port, { certFile, keyFile, path, seconds, clients }) {
  const args = [
    "s_time",
    "-connect",
    `127.0.0.1:${port}`,
    "-new",
    "-cert",
    certFile,
    "-key",
    keyFile,
    "-www",
    path,
    "-time",
    String(seconds),
  ];
  const started = performance.now();
  const outputs = await Promise.all(
    Array.from({ length: clients }, () => runToEnd("openssl", args)),
  );
  const wallSeconds = (performance.now() - started) / 1000;
  let connections = 0;
  for (const output of outputs) {
    const match = /(\d+) connections in [\d.]+ real seconds, (\d+) bytes read per connection/.exec(
      output,
    );
    if (!match) throw new Error(`openssl s_time printed no connection count:\n${output}`);
    // A refused handshake or an empty answer would make this a benchmark of failures.
    if (Number(match[2]) < 100) {
      throw new Error(`openssl s_time read only ${match[2]} bytes per connection:\n${output}`);
    }
    connections += Number(match[1]);
  }
  return { perSecond: connections / wallSeconds, connections };
}
