// The system benchmark: both services as real processes (node dist/main.js) against fake
// Workload APIs that hand out EC P-256 SVIDs, as SPIRE does by default, driven by real
// load generators. See the README's Benchmarks section for what it prints.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { FakeWorkloadApi, jwksOf, TestCa, TestJwtKey } from "spiffe-node/testing";
import { sTime, wrk } from "./loadgen.mjs";
import { neverClosingTargets, runNeverClosingPhase } from "./never-closing.mjs";
import { requireCommand, rssMb, ServiceProcess, stopAll, watch } from "./processes.mjs";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WEBAPP_ID = "spiffe://broker.org/webapp";
const QUOTES_ID = "spiffe://stocksmarket.org/quotes-service";
/** How long after a phase the "settled" RSS is read. */
const SETTLE_SECONDS = 10;
/** The services' V8 flags, as scripts/start-services.sh and docker-compose.yml give them. */
const SERVICE_NODE_ARGS = ["--max-semi-space-size=4", "--heap-growing-percent=10"];
/** The quotes service must stay lean through at least this many new handshakes. */
const CHURN_HANDSHAKES = 20_000;

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fixed = (value, digits = 0) => value.toFixed(digits);
const spread = (values, digits = 0) =>
  values.length > 1
    ? `${fixed(median(values), digits)} (${fixed(Math.min(...values), digits)}-${fixed(Math.max(...values), digits)})`
    : fixed(values[0], digits);
const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(" ");

/** Two trust domains with federated bundles, each served by its fake agent. */
async function startFederation(dir) {
  const [brokerCa, stocksCa, brokerApi, stocksApi] = await Promise.all([
    TestCa.create("broker.org", "ec-p256"),
    TestCa.create("stocksmarket.org", "ec-p256"),
    FakeWorkloadApi.start(),
    FakeWorkloadApi.start(),
  ]);
  const webapp = await brokerCa.issue(WEBAPP_ID, { keyAlgorithm: "ec-p256" });
  const quotes = await stocksCa.issue(QUOTES_ID, { keyAlgorithm: "ec-p256" });
  brokerApi.setX509({
    svids: [
      {
        spiffeId: WEBAPP_ID,
        chainDer: webapp.chainDer,
        keyDer: webapp.keyDer,
        bundleDer: brokerCa.bundleDer(),
      },
    ],
    federatedBundles: { "spiffe://stocksmarket.org": stocksCa.bundleDer() },
  });
  stocksApi.setX509({
    svids: [
      {
        spiffeId: QUOTES_ID,
        chainDer: quotes.chainDer,
        keyDer: quotes.keyDer,
        bundleDer: stocksCa.bundleDer(),
      },
    ],
    federatedBundles: { "spiffe://broker.org": brokerCa.bundleDer() },
  });
  // The JWT road: each agent streams both trust domains' JWT bundles (as after federation)
  // and the broker's agent signs the webapp's JWT-SVIDs with an ES256 key, as SPIRE does.
  const brokerJwtKey = TestJwtKey.generate("ES256");
  const stocksJwtKey = TestJwtKey.generate("ES256");
  const jwtBundles = {
    "spiffe://broker.org": jwksOf([brokerJwtKey]),
    "spiffe://stocksmarket.org": jwksOf([stocksJwtKey]),
  };
  brokerApi.setJwtBundles(jwtBundles);
  stocksApi.setJwtBundles(jwtBundles);
  brokerApi.setJwtSvids(({ audience }) => [
    { spiffeId: WEBAPP_ID, token: brokerJwtKey.issue(WEBAPP_ID, audience, 300) },
  ]);
  // Files for the load generator (the webapp's SVID) and the plain Node server (the quotes
  // service's SVID, and the broker's bundle as its CA list).
  const files = {
    webappCert: join(dir, "webapp.pem"),
    webappKey: join(dir, "webapp.key"),
    quotesCert: join(dir, "quotes.pem"),
    quotesKey: join(dir, "quotes.key"),
    brokerBundle: join(dir, "broker-bundle.pem"),
  };
  const webappSvid = webapp.svid();
  const quotesSvid = quotes.svid();
  await Promise.all([
    writeFile(files.webappCert, webappSvid.certificatesPem()),
    writeFile(files.webappKey, webappSvid.privateKeyPem(), { mode: 0o600 }),
    writeFile(files.quotesCert, quotesSvid.certificatesPem()),
    writeFile(files.quotesKey, quotesSvid.privateKeyPem(), { mode: 0o600 }),
    writeFile(files.brokerBundle, brokerCa.bundle().toPem()),
  ]);
  return {
    files,
    brokerApi,
    stocksApi,
    stop: () => Promise.all([brokerApi.stop(), stocksApi.stop()]),
  };
}

const isListening = (line) => typeof line.port === "number" && /listening/.test(line.msg);

/** The quotes service with the launchers' flags on the given road, once it listens. */
async function startQuotesService(federation, auth = "mtls") {
  const quotes = new ServiceProcess("stock-quotes-service", [
    ...SERVICE_NODE_ARGS,
    join(ROOT, "stock-quotes-service/dist/main.js"),
    "--auth",
    auth,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--socket",
    federation.stocksApi.address,
  ]);
  return { process: quotes, port: (await quotes.waitFor(isListening, "listening")).port };
}

/** The plain Node https server with the quotes service's certificate, once it listens. */
async function startPlainServer(files) {
  const plain = new ServiceProcess(
    "plain Node https server",
    [...SERVICE_NODE_ARGS, join(ROOT, "scripts/bench/plain-mtls-server.mjs")],
    { BENCH_CERT: files.quotesCert, BENCH_KEY: files.quotesKey, BENCH_CA: files.brokerBundle },
  );
  return { process: plain, port: (await plain.waitFor(isListening, "listening")).port };
}

/** Both services on the given road ("mtls" or "jwt"), once the page shows quotes. */
async function startServices(federation, auth = "mtls") {
  const { process: quotes, port: quotesPort } = await startQuotesService(federation, auth);
  const webapp = new ServiceProcess("broker-webapp", [
    ...SERVICE_NODE_ARGS,
    join(ROOT, "broker-webapp/dist/main.js"),
    "--auth",
    auth,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--socket",
    federation.brokerApi.address,
    "--quotes-url",
    `https://127.0.0.1:${quotesPort}/quotes`,
  ]);
  const webPort = (await webapp.waitFor(isListening, "listening")).port;
  await webapp.waitFor((line) => line.msg === "X.509 SVID received", "X.509 SVID received");
  const page = await (await fetch(`http://127.0.0.1:${webPort}/quotes`)).text();
  if (/Quotes service unavailable/.test(page) || !/<td>KKKK<\/td>/.test(page)) {
    throw new Error(`the webapp's first page has no quotes:\n${page}`);
  }
  return { quotes, quotesPort, webapp, webPort };
}

async function upstreamCounters(webPort) {
  const health = await (await fetch(`http://127.0.0.1:${webPort}/healthz`)).json();
  return health.upstream;
}

/** CPU time a process spent per request of a run, in microseconds. */
function cpuMicrosPerRequest(usage, run) {
  return (usage.cpu * usage.seconds * 1e6) / run.requests;
}

/** /healthz then /quotes, back to back, at each connection count, `repeats` times. */
async function benchWebapp({ quotes, webapp, webPort }, { seconds, repeats }) {
  const runs = [];
  for (let round = 1; round <= repeats; round += 1) {
    for (const connections of [16, 64]) {
      const ceilingWatch = watch([webapp.pid]);
      const ceiling = await wrk(`http://127.0.0.1:${webPort}/healthz`, { connections, seconds });
      ceiling.cpuUs = cpuMicrosPerRequest(ceilingWatch.stop().get(webapp.pid), ceiling);
      const before = await upstreamCounters(webPort);
      const logFrom = webapp.lines.length;
      const watcher = watch([webapp.pid, quotes.pid]);
      const full = await wrk(`http://127.0.0.1:${webPort}/quotes`, { connections, seconds });
      const usage = watcher.stop();
      full.cpuUs = cpuMicrosPerRequest(usage.get(webapp.pid), full);
      full.quotesCpuUs = cpuMicrosPerRequest(usage.get(quotes.pid), full);
      const after = await upstreamCounters(webPort);
      runs.push({
        round,
        connections,
        ceiling,
        full,
        handshakesPer1000: ((after.tlsHandshakes - before.tlsHandshakes) * 1000) / full.requests,
        callsPer1000: ((after.calls - before.calls) * 1000) / full.requests,
        unavailable: webapp.count(/^quotes service unavailable$/, logFrom),
        webapp: usage.get(webapp.pid),
        quotes: usage.get(quotes.pid),
      });
      const last = runs.at(-1);
      console.log(
        `  round ${round}, ${connections} connections: /healthz ${fixed(ceiling.perSecond)}/s, ` +
          `/quotes ${fixed(full.perSecond)}/s (ratio ${fixed(full.perSecond / ceiling.perSecond, 2)}), ` +
          `p50 ${fixed(full.p50, 2)} ms, p99 ${fixed(full.p99, 2)} ms; ` +
          `RSS peak webapp ${fixed(last.webapp.peakMb)} MB, quotes ${fixed(last.quotes.peakMb)} MB; load ${load()}`,
      );
    }
  }
  return runs;
}

/**
 * The quotes service and the plain server, back to back, under a new handshake per request
 * (`repeats` rounds); then the quotes service alone until it has had CHURN_HANDSHAKES.
 */
async function benchHandshakes(quotes, quotesPort, plain, plainPort, files, options) {
  const { seconds, repeats, clients } = options;
  const client = (runSeconds) => ({
    certFile: files.webappCert,
    keyFile: files.webappKey,
    path: "/quotes",
    seconds: runSeconds,
    clients,
  });
  const measure = async (process, port, runSeconds) => {
    const watcher = watch([process.pid]);
    const run = await sTime(port, client(runSeconds));
    const usage = watcher.stop().get(process.pid);
    return { ...run, usage, cpuUs: (usage.cpu * usage.seconds * 1e6) / run.connections };
  };
  const rounds = [];
  let handshakes = 0;
  for (let round = 1; round <= repeats; round += 1) {
    const service = await measure(quotes, quotesPort, seconds);
    handshakes += service.connections;
    const floor = await measure(plain, plainPort, seconds);
    rounds.push({ round, service, floor });
    console.log(
      `  round ${round}: quotes service ${fixed(service.perSecond)}/s (${fixed(service.cpuUs)} us CPU each), ` +
        `plain Node ${fixed(floor.perSecond)}/s (${fixed(floor.cpuUs)} us), ` +
        `ratio ${fixed(service.perSecond / floor.perSecond, 2)}; RSS peak quotes ${fixed(service.usage.peakMb)} MB, ` +
        `plain ${fixed(floor.usage.peakMb)} MB; load ${load()}`,
    );
  }
  let churnPeakMb = Math.max(...rounds.map((r) => r.service.usage.peakMb));
  while (handshakes < CHURN_HANDSHAKES) {
    const rate = median(rounds.map((r) => r.service.perSecond));
    const runSeconds = Math.max(2, Math.ceil(((CHURN_HANDSHAKES - handshakes) / rate) * 1.05));
    const churn = await measure(quotes, quotesPort, runSeconds);
    handshakes += churn.connections;
    churnPeakMb = Math.max(churnPeakMb, churn.usage.peakMb);
    console.log(
      `  churn: ${churn.connections} more handshakes in ${runSeconds} s (${fixed(churn.perSecond)}/s), ` +
        `${handshakes} in all; RSS peak quotes ${fixed(churn.usage.peakMb)} MB; load ${load()}`,
    );
  }
  return { rounds, handshakes, churnPeakMb };
}

const table = (header, rows) => {
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => " --- |").join("")}`);
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
};

function printTables({ webappRuns, handshakeRuns, memory, seconds, clients }) {
  console.log(
    `\nWebapp: GET /quotes (full path, upstream mTLS call) vs GET /healthz (no upstream call), ` +
      `wrk with 1 thread, ${seconds} s per run, back to back; median (min-max) of ${webappRuns.length / 2} runs:\n`,
  );
  const summary = [];
  table(
    [
      "connections",
      "/healthz loads/s",
      "/quotes loads/s",
      "ratio",
      "p50 ms",
      "p99 ms",
      "p99/p50",
      "CPU us per load, /healthz vs /quotes",
      "TLS handshakes per 1,000 loads",
      "upstream calls per 1,000 loads",
    ],
    [16, 64].map((connections) => {
      const runs = webappRuns.filter((run) => run.connections === connections);
      const of = (pick, digits = 0) => spread(runs.map(pick), digits);
      summary.push({
        connections,
        ratio: median(runs.map((r) => r.full.perSecond / r.ceiling.perSecond)),
        tail: median(runs.map((r) => r.full.p99 / r.full.p50)),
        handshakes: median(runs.map((r) => r.handshakesPer1000)),
      });
      return [
        connections,
        of((r) => r.ceiling.perSecond),
        of((r) => r.full.perSecond),
        of((r) => r.full.perSecond / r.ceiling.perSecond, 2),
        of((r) => r.full.p50, 2),
        of((r) => r.full.p99, 2),
        of((r) => r.full.p99 / r.full.p50, 1),
        `${fixed(median(runs.map((r) => r.ceiling.cpuUs)))} vs ${fixed(median(runs.map((r) => r.full.cpuUs)))} (+${fixed(median(runs.map((r) => r.full.quotesCpuUs)))} in the quotes service)`,
        of((r) => r.handshakesPer1000, 2),
        of((r) => r.callsPer1000),
      ];
    }),
  );
  const errors = webappRuns.reduce((sum, r) => sum + r.full.errors + r.ceiling.errors, 0);
  const unavailable = webappRuns.reduce((sum, r) => sum + r.unavailable, 0);
  console.log(
    `\nwrk errors: ${errors}; upstream calls that failed (pages with an error line): ${unavailable}`,
  );

  const { rounds } = handshakeRuns;
  console.log(
    `\nQuotes service vs a plain Node https server (requestCert, Node's CA check against the same bundle), ` +
      `a new mTLS handshake per request: openssl s_time x${clients}, same certificates and routes, ${seconds} s per run:\n`,
  );
  const handshakeRatio = median(rounds.map((r) => r.service.perSecond / r.floor.perSecond));
  table(
    [
      "",
      "quotes service req/s",
      "plain Node req/s",
      "ratio",
      "CPU us per handshake, quotes service vs plain",
    ],
    [
      ...rounds.map((r) => [
        `run ${r.round}`,
        fixed(r.service.perSecond),
        fixed(r.floor.perSecond),
        fixed(r.service.perSecond / r.floor.perSecond, 2),
        `${fixed(r.service.cpuUs)} vs ${fixed(r.floor.cpuUs)}`,
      ]),
      ["median", "", "", fixed(handshakeRatio, 2), ""],
    ],
  );

  const at = (connections) => webappRuns.filter((r) => r.connections === connections);
  const peakOf = (runs, pick) => Math.max(...runs.map(pick));
  const webapp64 = peakOf(at(64), (r) => r.webapp.peakMb);
  const quotes64 = peakOf(at(64), (r) => r.quotes.peakMb);
  console.log(`\nRSS in MB (settled: ${SETTLE_SECONDS} s after the last run of a phase):\n`);
  table(
    [
      "process",
      "idle",
      "peak, 16 connections",
      "peak, 64 connections",
      "settled",
      `peak through ${handshakeRuns.handshakes} new handshakes`,
      "settled",
    ],
    [
      [
        "broker-webapp",
        fixed(memory.idle.webapp),
        fixed(peakOf(at(16), (r) => r.webapp.peakMb)),
        fixed(webapp64),
        fixed(memory.afterWebapp.webapp),
        "-",
        "-",
      ],
      [
        "stock-quotes-service",
        fixed(memory.idle.quotes),
        fixed(peakOf(at(16), (r) => r.quotes.peakMb)),
        fixed(quotes64),
        fixed(memory.afterWebapp.quotes),
        fixed(handshakeRuns.churnPeakMb),
        fixed(memory.afterChurn.quotes),
      ],
      [
        "plain Node https server",
        fixed(memory.idle.plain),
        "-",
        "-",
        "-",
        `${fixed(peakOf(rounds, (r) => r.floor.usage.peakMb))} (its runs only)`,
        fixed(memory.afterChurn.plain),
      ],
    ],
  );

  const at64 = summary.find((row) => row.connections === 64);
  const worstHandshakes = Math.max(...summary.map((row) => row.handshakes));
  const targets = [
    [
      "webapp full path at 64 connections >= 0.8 of /healthz",
      at64.ratio >= 0.8,
      fixed(at64.ratio, 2),
    ],
    [
      "quotes service >= 0.8 of the plain Node server, new handshake per request",
      handshakeRatio >= 0.8,
      fixed(handshakeRatio, 2),
    ],
    [
      "RSS <= 100 MB per service under keep-alive load at 64 connections",
      Math.max(webapp64, quotes64) <= 100,
      `webapp ${fixed(webapp64)} MB, quotes service ${fixed(quotes64)} MB`,
    ],
    [
      `quotes service RSS <= 150 MB through ${CHURN_HANDSHAKES} new handshakes`,
      handshakeRuns.churnPeakMb <= 150,
      `${fixed(handshakeRuns.churnPeakMb)} MB, settled to ${fixed(memory.afterChurn.quotes)} MB`,
    ],
    ["p99 <= 3 x p50 at 64 connections", at64.tail <= 3, fixed(at64.tail, 1)],
    ["TLS handshakes per 1,000 page loads <= 1", worstHandshakes <= 1, fixed(worstHandshakes, 2)],
  ];
  console.log("\nTargets of issue 13 (medians; peaks for RSS):\n");
  for (const [what, met, value] of targets) {
    console.log(`- ${met ? "met" : "NOT met"}: ${what}: ${value}`);
  }
}

/** The load phases of issue 13: the webapp under wrk, the quotes service under s_time. */
async function runLoadPhases(federation, { seconds, repeats, clients }) {
  const started = [];
  try {
    const services = await startServices(federation);
    started.push(services.webapp, services.quotes);
    const { process: plain, port: plainPort } = await startPlainServer(federation.files);
    started.push(plain);

    const memory = {
      idle: {
        webapp: rssMb(services.webapp.pid),
        quotes: rssMb(services.quotes.pid),
        plain: rssMb(plain.pid),
      },
    };
    // Warm-up: JIT and the kept-alive connection, not measured.
    await wrk(`http://127.0.0.1:${services.webPort}/quotes`, { connections: 16, seconds: 2 });
    await wrk(`http://127.0.0.1:${services.webPort}/healthz`, { connections: 16, seconds: 1 });

    console.log("Webapp runs:");
    const webappRuns = await benchWebapp(services, { seconds, repeats });
    await sleep(SETTLE_SECONDS * 1000);
    memory.afterWebapp = { webapp: rssMb(services.webapp.pid), quotes: rssMb(services.quotes.pid) };

    console.log("Handshake runs:");
    const handshakeRuns = await benchHandshakes(
      services.quotes,
      services.quotesPort,
      plain,
      plainPort,
      federation.files,
      { seconds, repeats, clients },
    );
    await sleep(SETTLE_SECONDS * 1000);
    memory.afterChurn = { quotes: rssMb(services.quotes.pid), plain: rssMb(plain.pid) };

    printTables({ webappRuns, handshakeRuns, memory, seconds, clients });

    // The JWT road: the same page, the webapp authenticating with a JWT-SVID bearer token
    // over TLS that authenticates only the quotes service, which validates each token.
    await Promise.all([services.webapp.stop(), services.quotes.stop()]);
    const jwtServices = await startServices(federation, "jwt");
    started.push(jwtServices.webapp, jwtServices.quotes);
    await wrk(`http://127.0.0.1:${jwtServices.webPort}/quotes`, { connections: 16, seconds: 2 });
    console.log("JWT road runs:");
    const jwtRates = [];
    for (let round = 1; round <= repeats; round += 1) {
      const run = await wrk(`http://127.0.0.1:${jwtServices.webPort}/quotes`, {
        connections: 64,
        seconds,
      });
      jwtRates.push(run.perSecond);
      console.log(
        `  round ${round}, 64 connections: /quotes ${fixed(run.perSecond)}/s, p50 ${fixed(run.p50, 2)} ms, ` +
          `p99 ${fixed(run.p99, 2)} ms, errors ${run.errors}; load ${load()}`,
      );
    }
    const mtlsRates = webappRuns.filter((r) => r.connections === 64).map((r) => r.full.perSecond);
    console.log(
      `\nPage loads per second at 64 connections, median (min-max) of ${repeats} runs:\n`,
    );
    table(
      ["road", "/quotes loads/s", "ratio to mTLS"],
      [
        ["mTLS (X.509-SVIDs both ways)", spread(mtlsRates), "1.00"],
        [
          "JWT (TLS + JWT-SVID bearer token, validated per request)",
          spread(jwtRates),
          fixed(median(jwtRates) / median(mtlsRates), 2),
        ],
      ],
    );
  } finally {
    await Promise.all(started.map((child) => child.stop()));
  }
}

/**
 * Runs the load phases, then the never-closing phase on fresh servers (`phases`: "all",
 * or "never-closing" for that one alone), and prints the tables. BENCH_SECONDS (default 5)
 * sets the length of a run, BENCH_REPEATS (default 3) the runs per measurement.
 */
export async function runSystemBenchmark({
  phases = "all",
  seconds = Number(process.env.BENCH_SECONDS ?? 5),
  repeats = Number(process.env.BENCH_REPEATS ?? 3),
  clients = 2,
} = {}) {
  if (phases === "all") {
    requireCommand("wrk", "wrk");
    requireCommand("openssl", "openssl");
  }
  console.log(
    `\nSystem benchmark: ${availableParallelism()} cores (${cpus()[0]?.model ?? "unknown CPU"}), ` +
      `Node ${process.version}; load average at the start ${load()}`,
  );
  const dir = await mkdtemp(join(tmpdir(), "spiffe-bench-"));
  let federation;
  try {
    federation = await startFederation(dir);
    if (phases === "all") await runLoadPhases(federation, { seconds, repeats, clients });
    const startServer = (name) =>
      name === "stock-quotes-service"
        ? startQuotesService(federation)
        : startPlainServer(federation.files);
    const run = await runNeverClosingPhase(startServer, federation.files);
    console.log("\nTargets of issue 23 (never-closing client):\n");
    for (const [what, met, value] of neverClosingTargets(run)) {
      console.log(`- ${met ? "met" : "NOT met"}: ${what}: ${value}`);
    }
    console.log(`\nLoad average at the end: ${load()}`);
  } finally {
    stopAll();
    await federation?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
