// The two mTLS clients of the benchmark's never-closing phase, each run as its own process
// so that its CPU and memory are not the server's or the benchmark's:
// - `never-closing`: what the tutorial's original Go webapp does on every page load. Each
//   load opens a new mTLS connection, sends one GET, reads the answer and leaves the
//   connection open; only the server can close it. LANES loads run at once, back to back.
// - `pooling`: a well-behaved client, one kept-alive https.Agent with a few connections,
//   sending GETs one after another; it counts every request that was not answered 200.
// Both take the webapp's certificate from BENCH_CERT and BENCH_KEY, talk to 127.0.0.1:PORT,
// run for SECONDS, then print one JSON line with what they counted and exit.
import { readFileSync } from "node:fs";
import { Agent, get } from "node:https";
import { connect } from "node:tls";

const [mode, portText, secondsText, lanesText = "8"] = process.argv.slice(2);
const port = Number(portText);
const deadline = performance.now() + Number(secondsText) * 1000;
const cert = readFileSync(process.env.BENCH_CERT ?? "");
const key = readFileSync(process.env.BENCH_KEY ?? "");
const REQUEST = `GET /quotes HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;

const counts = { loads: 0, failed: 0, refused: 0, peakOpen: 0, closedByServer: 0 };
const open = new Set();

/** One page load of the original webapp: a new connection, one GET, the socket left open. */
function load() {
  return new Promise((resolve) => {
    let answer = "";
    let secured = false;
    let done = false;
    const finish = (outcome) => {
      if (done) return;
      done = true;
      counts[outcome] += 1;
      resolve();
    };
    // No session reuse: every connection is a full handshake, as a new Go transport's is.
    const socket = connect({ host: "127.0.0.1", port, cert, key, rejectUnauthorized: false });
    socket.setEncoding("utf8");
    socket.once("secureConnect", () => {
      secured = true;
      open.add(socket);
      counts.peakOpen = Math.max(counts.peakOpen, open.size);
      socket.write(REQUEST);
    });
    socket.on("data", (chunk) => {
      answer += chunk;
      const headerEnd = answer.indexOf("\r\n\r\n");
      if (headerEnd < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(answer)?.[1] ?? Number.NaN);
      if (answer.length - headerEnd - 4 < length) return;
      finish(answer.startsWith("HTTP/1.1 200") ? "loads" : "failed");
    });
    socket.on("error", () => {});
    socket.once("close", () => {
      if (open.delete(socket) && done) counts.closedByServer += 1;
      // Closed before the handshake ended: the server turned the connection away.
      finish(secured ? "failed" : "refused");
    });
  });
}

async function neverClosing(lanes) {
  const lane = async () => {
    while (performance.now() < deadline) await load();
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  counts.openAtEnd = open.size;
  for (const socket of open) socket.destroy();
}

async function pooling(connections) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, cert, key });
  const failures = new Map();
  const seen = new WeakSet();
  counts.connectionsOpened = 0;
  const one = () =>
    new Promise((resolve) => {
      const request = get(
        { host: "127.0.0.1", port, path: "/quotes", agent, rejectUnauthorized: false },
        (response) => {
          response.resume();
          response.once("end", () => {
            if (response.statusCode === 200) counts.loads += 1;
            else counts.failed += 1;
            resolve();
          });
        },
      );
      request.once("socket", (socket) => {
        if (seen.has(socket)) return;
        seen.add(socket);
        counts.connectionsOpened += 1;
      });
      request.setTimeout(10_000, () => request.destroy(new Error("no answer within 10 s")));
      request.once("error", (error) => {
        counts.failed += 1;
        failures.set(error.message, (failures.get(error.message) ?? 0) + 1);
        resolve();
      });
    });
  const lane = async () => {
    while (performance.now() < deadline) await one();
  };
  await Promise.all(Array.from({ length: connections }, lane));
  counts.failures = Object.fromEntries(failures);
  agent.destroy();
}

if (mode === "never-closing") await neverClosing(Number(lanesText));
else if (mode === "pooling") await pooling(Number(lanesText));
else {
  console.error("usage: node mtls-clients.mjs never-closing|pooling PORT SECONDS [LANES]");
  process.exit(2);
}
console.log(JSON.stringify(counts));
