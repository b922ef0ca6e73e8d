// The benchmark's never-closing phase (issue 23): a client that opens one mTLS connection
// per request and never closes it, like the tutorial's original Go webapp, at full rate
// against a fresh quotes service and a fresh plain Node https server, each with a pooling
// client running alongside. It prints each server's peak RSS, its RSS after the load
// (at 10, 20 and 30 s), its peak of open sockets (sampled every 100 ms throughout) and the
// loads served.
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { cpuSeconds, rssMb, runToEnd } from "./processes.mjs";

const CLIENTS = fileURLToPath(new URL("./mtls-clients.mjs", import.meta.url));
/** How long after the load the settled RSS is read, as issue 23 asks. */
const SETTLE_SECONDS = 30;
/** Page loads the never-closing client runs at once, and the pooling client's connections. */
const NEVER_CLOSING_LANES = 8;
const POOLING_CONNECTIONS = 2;
const POOLING_ALONE_SECONDS = 5;

const fixed = (value, digits = 0) => value.toFixed(digits);

/** File descriptors `pid` holds open: its sockets, plus a few dozen files and pipes. */
function openFds(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function runClient(mode, port, seconds, lanes, files) {
  const env = { BENCH_CERT: files.webappCert, BENCH_KEY: files.webappKey };
  const output = await runToEnd(
    process.execPath,
    [CLIENTS, mode, String(port), String(seconds), String(lanes)],
    env,
  );
  return JSON.parse(output.trim().split("\n").at(-1));
}

/**
 * `seconds` of the never-closing client with the pooling client alongside, against the
 * server `target` (a ServiceProcess listening on `port`); then SETTLE_SECONDS idle.
 */
async function measure(target, port, seconds, files) {
  const idleMb = rssMb(target.pid);
  const idleFds = openFds(target.pid);
  let peakMb = idleMb;
  let peakFds = idleFds;
  const sample = () => {
    peakMb = Math.max(peakMb, rssMb(target.pid));
    peakFds = Math.max(peakFds, openFds(target.pid));
  };
  // The pooling client alone first: its rate and the server's CPU per request, to compare
  // with and without the limits.
  const cpuBefore = cpuSeconds(target.pid);
  const alone = await runClient("pooling", port, POOLING_ALONE_SECONDS, POOLING_CONNECTIONS, files);
  alone.cpuUs = ((cpuSeconds(target.pid) - cpuBefore) * 1e6) / alone.loads;
  const timer = setInterval(sample, 100);
  const [neverClosing, pooling] = await Promise.all([
    runClient("never-closing", port, seconds, NEVER_CLOSING_LANES, files),
    runClient("pooling", port, seconds, POOLING_CONNECTIONS, files),
  ]);
  const after = [];
  for (let second = 10; second <= SETTLE_SECONDS; second += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    after.push(rssMb(target.pid));
  }
  clearInterval(timer);
  sample();
  return {
    idleMb,
    peakMb,
    after,
    peakSockets: peakFds - idleFds,
    alone,
    neverClosing,
    pooling,
  };
}

function report(name, run, seconds) {
  const { neverClosing: nc, pooling, alone } = run;
  console.log(
    `  ${name}: pooling client alone ${fixed(alone.loads / POOLING_ALONE_SECONDS)} requests/s, ` +
      `${fixed(alone.cpuUs)} us of server CPU each, ${alone.failed} failed`,
  );
  console.log(
    `  ${name}: RSS idle ${fixed(run.idleMb)} MB, peak ${fixed(run.peakMb)} MB, ` +
      `then ${run.after.map((mb) => fixed(mb)).join(" / ")} MB at 10 / 20 / 30 s; ` +
      `peak open sockets ${run.peakSockets}; never-closing loads served ${nc.loads} ` +
      `(${fixed(nc.loads / seconds)}/s), refused ${nc.refused}, failed ${nc.failed}, ` +
      `closed by the server while open ${nc.closedByServer}; pooling client ${pooling.loads} served, ` +
      `${pooling.failed} failed${pooling.failed ? ` ${JSON.stringify(pooling.failures)}` : ""}, ` +
      `${pooling.connectionsOpened} connections`,
  );
}

/**
 * Runs the phase against a fresh server from `startServer(name)` (which resolves with its
 * { process, port }) for each of the two, and returns the quotes service's figures for the
 * targets. BENCH_NEVER_CLOSING_SECONDS (default 20) sets the load's length.
 */
export async function runNeverClosingPhase(startServer, files) {
  const seconds = Number(process.env.BENCH_NEVER_CLOSING_SECONDS ?? 20);
  console.log(
    `\nNever-closing client: one new mTLS connection per GET /quotes, left open, ` +
      `${NEVER_CLOSING_LANES} at once, for ${seconds} s, with a pooling client ` +
      `(${POOLING_CONNECTIONS} kept-alive connections) alongside; fresh servers:`,
  );
  const results = {};
  for (const name of ["stock-quotes-service", "plain Node https server"]) {
    const server = await startServer(name);
    try {
      results[name] = await measure(server.process, server.port, seconds, files);
    } finally {
      await server.process.stop();
    }
    report(name, results[name], seconds);
  }
  return results["stock-quotes-service"];
}

/** The issue 23 targets for the never-closing phase, as [what, met, value] rows. */
export function neverClosingTargets(run) {
  const settledMb = run.after.at(-1);
  return [
    [
      "quotes service peak RSS <= 150 MB through the never-closing client",
      run.peakMb <= 150,
      `${fixed(run.peakMb)} MB`,
    ],
    [
      `quotes service RSS <= 120 MB ${SETTLE_SECONDS} s after it stops`,
      settledMb <= 120,
      `${fixed(settledMb)} MB`,
    ],
    [
      "every request of the pooling client served meanwhile",
      run.pooling.failed === 0 && run.pooling.loads > 0,
      `${run.pooling.loads} served, ${run.pooling.failed} failed`,
    ],
  ];
}
