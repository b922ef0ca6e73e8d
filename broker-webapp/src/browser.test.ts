// The page in a real browser: Debian's chromium, driven by playwright-core.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BrowserContext, chromium } from "playwright-core";
import { FakeWorkloadApi, TestCa } from "spiffe-node/testing";
import {
  eventually,
  Federation,
  getPage,
  QUOTES_ID,
  REPO_ROOT,
  ServiceProcess,
  startQuotesService,
  startWebapp,
  tableRows,
  WEBAPP_ID,
  WEBAPP_MAIN,
} from "./services-test-support.js";

const CHROMIUM = "/usr/bin/chromium";
/** gRPC status code 7 (the webapp does not depend on grpc-js itself). */
const PERMISSION_DENIED = 7;
const SCREENSHOT = join(REPO_ROOT, "test-output", "quotes-page.png");
const TRUST_SCREENSHOT = join(REPO_ROOT, "test-output", "trust-panel-rotation.png");
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("the quotes page in Chromium", { timeout: 120_000 }, () => {
  let federation: Federation;
  let quotes: ServiceProcess;
  let webapp: ServiceProcess;
  let webPort: number;
  let profile: string;

  before(async () => {
    federation = await Federation.create();
    await federation.issueWebappSvid();
    await federation.issueQuotesSvid();
    quotes = startQuotesService(federation);
    webapp = startWebapp(federation, `https://127.0.0.1:${await quotes.port()}/quotes`);
    webPort = await webapp.port();
    profile = await mkdtemp(join(tmpdir(), "quotes-chromium-"));
  });

  after(async () => {
    await Promise.all([webapp?.stop(), quotes?.stop()]);
    await federation?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it("loads, reloads by itself every second, and the quotes move", async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} not found: the browser test needs Debian's chromium; run \`apt-get install chromium\``,
    );
    // Open most quotes first, so the screenshot shows prices rather than dashes.
    for (let load = 0; load < 15; load++) await getPage(webPort);

    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const problems: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(message.text());
      });
      page.on("pageerror", (error) => problems.push(error.message));
      let loads = 0;
      page.on("load", () => {
        loads += 1;
      });

      const url = `http://127.0.0.1:${webPort}/quotes`;
      await page.goto(url);
      assert.equal(await page.locator("tbody tr").count(), 11);
      assert.equal(
        await page
          .locator("thead th")
          .allInnerTexts()
          .then((t) => t.join(" ")),
        "Symbol Price Open Low High Close Time",
      );
      const first = await page.locator("tbody").textContent();
      const loadsAtFirst = loads;

      // The page reloads itself (nothing here navigates); wait for reloads until the table moves.
      let latest = first;
      const deadline = Date.now() + 15_000;
      while (latest === first && Date.now() < deadline) {
        await page.waitForEvent("load", { timeout: 5_000 });
        latest = await page.locator("tbody").textContent();
      }
      assert.ok(loads > loadsAtFirst, "the page reloaded by itself");
      assert.notEqual(latest, first, "prices or times changed between two loads");
      assert.equal(page.url(), url);
      assert.match(
        (await page.locator("caption").textContent()) ?? "",
        /^Last Updated: \d{2}:\d{2}:\d{2}$/,
      );
      assert.doesNotMatch(await page.content(), /Quotes service unavailable/);
      assert.deepEqual(problems, [], "no script errors or CSP violations");

      await mkdir(join(REPO_ROOT, "test-output"), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      assert.ok(existsSync(SCREENSHOT));
      console.log(`screenshot: ${SCREENSHOT}; ${loads} loads seen`);
      // The server-rendered rows match what the browser shows.
      assert.equal(tableRows(await page.content()).length, 11);
    } finally {
      await context.close();
    }
  });

  it("the trust panel shows a CA rotation: two authorities, and which one issued the quotes service's certificate", async () => {
    // The stock market prepares a second authority: the webapp receives both in the
    // federated bundle, and the quotes service gets an SVID from the new one.
    const nextStocksCa = await TestCa.create("stocksmarket.org");
    const bothStocks = Buffer.concat([federation.stocksCa.bundleDer(), nextStocksCa.bundleDer()]);
    // The quotes service moves first. The webapp's kept-alive connection keeps the old
    // handshake until the webapp's own trust changes (then it opens a new connection), so
    // that change must come after the quotes service presents the new certificate.
    const rotatedFrom = quotes.mark();
    const quotesSvid = await nextStocksCa.issue(QUOTES_ID);
    federation.stocksApi.setX509({
      svids: [
        {
          spiffeId: QUOTES_ID,
          chainDer: quotesSvid.chainDer,
          keyDer: quotesSvid.keyDer,
          bundleDer: bothStocks,
        },
      ],
      federatedBundles: { "spiffe://broker.org": federation.brokerCa.bundleDer() },
    });
    await quotes.waitForLog((l) => l.msg === "X.509 SVID rotated", "quotes SVID rotated", {
      from: rotatedFrom,
    });
    const webappSvid = await federation.brokerCa.issue(WEBAPP_ID);
    federation.brokerApi.setX509({
      svids: [
        {
          spiffeId: WEBAPP_ID,
          chainDer: webappSvid.chainDer,
          keyDer: webappSvid.keyDer,
          bundleDer: federation.brokerCa.bundleDer(),
        },
      ],
      federatedBundles: { "spiffe://stocksmarket.org": bothStocks },
    });
    const short = (fingerprint: string) => fingerprint.split(":").slice(0, 8).join(":");
    const oldPrint = short(federation.stocksCa.certificate.fingerprint256);
    const newPrint = short(nextStocksCa.certificate.fingerprint256);

    const health = await eventually(
      async () => {
        await getPage(webPort);
        const body = (await (await fetch(`http://127.0.0.1:${webPort}/healthz`)).json()) as {
          trust: {
            bundles: { trustDomain: string; authorities: { sha256: string }[] }[];
            quotesServiceIssuer: { trustDomain: string; authority: { sha256: string } | null };
          };
        };
        return body.trust.quotesServiceIssuer?.authority?.sha256 === newPrint ? body : undefined;
      },
      "the webapp to verify the quotes service's certificate from the new authority",
      30_000,
    );
    const stocks = health.trust.bundles.find((b) => b.trustDomain === "stocksmarket.org");
    assert.deepEqual(
      stocks?.authorities.map((a) => a.sha256),
      [oldPrint, newPrint],
      "/healthz lists both stocksmarket.org authorities",
    );

    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(`http://127.0.0.1:${webPort}/quotes`);
      const trust = page.locator("section.trust");
      assert.ok(await trust.isVisible(), "the trust panel is on the page");
      const identityBox = await page.locator("section.identity").boundingBox();
      const trustBox = await trust.boundingBox();
      assert.ok(identityBox && trustBox, "both panels are laid out");
      assert.ok(
        trustBox.x > identityBox.x && Math.abs(trustBox.y - identityBox.y) < 5,
        "the trust panel sits beside the identity panel",
      );
      const terms = await trust.locator("dt").allTextContents();
      const details = await trust.locator("dd").allTextContents();
      const entry = (term: string) => details[terms.indexOf(term)] ?? "";
      assert.match(
        entry("broker.org"),
        /^changed \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}; 1 authority/,
      );
      assert.match(entry("stocksmarket.org"), /; 2 authorities/);
      assert.ok(entry("stocksmarket.org").includes(oldPrint), "the old authority is listed");
      assert.match(
        (await trust.locator("li.issuer").textContent()) ?? "",
        new RegExp(`^${newPrint} \\(until [^)]+\\): issued the quotes service's certificate$`),
        "the new authority is listed and marked as the issuer",
      );
      assert.match(
        entry("Quotes service's certificate issued by"),
        new RegExp(`^stocksmarket\\.org authority ${newPrint}`),
      );
      await mkdir(join(REPO_ROOT, "test-output"), { recursive: true });
      await page.screenshot({ path: TRUST_SCREENSHOT, fullPage: true });
      assert.ok(existsSync(TRUST_SCREENSHOT));
      console.log(`screenshot: ${TRUST_SCREENSHOT}`);
    } finally {
      await context.close();
    }
  });
});

/** Runs `use` with a fresh headless Chromium profile, closed afterwards. */
async function withChromium(use: (context: BrowserContext) => Promise<void>): Promise<void> {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} not found: the browser test needs Debian's chromium; run \`apt-get install chromium\``,
  );
  const profile = await mkdtemp(join(tmpdir(), "quotes-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    await use(context);
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

describe("the waiting page in Chromium, in plain words", { timeout: 120_000 }, () => {
  let socketDir: string;
  let fakeAgent: FakeWorkloadApi;
  const webapps: ServiceProcess[] = [];

  before(async () => {
    socketDir = await mkdtemp(join(tmpdir(), "waiting-page-"));
    fakeAgent = await FakeWorkloadApi.start();
    // What a real SPIRE Agent answers until a registration entry matches the caller.
    fakeAgent.failWith(PERMISSION_DENIED, "no identity issued");
  });

  after(async () => {
    await Promise.all(webapps.map((webapp) => webapp.stop()));
    await fakeAgent?.stop();
    if (socketDir) await rm(socketDir, { recursive: true, force: true });
  });

  const startWebappOn = (socket: string): ServiceProcess => {
    const webapp = new ServiceProcess("broker-webapp", WEBAPP_MAIN, [
      ...["--host", "127.0.0.1", "--port", "0", "--socket", socket],
      ...["--quotes-url", "https://127.0.0.1:1/quotes"],
    ]);
    webapps.push(webapp);
    return webapp;
  };

  /** Loads the page until it shows `reason`, checks the wording, and takes a screenshot. */
  const checkWaitingPage = async (
    webapp: ServiceProcess,
    expected: { reason: RegExp; fix: string; screenshot: string },
  ) => {
    const port = await webapp.port();
    await withChromium(async (context) => {
      const page = context.pages()[0] ?? (await context.newPage());
      const url = `http://127.0.0.1:${port}/quotes`;
      let reason = "";
      const deadline = Date.now() + 15_000;
      while (!expected.reason.test(reason) && Date.now() < deadline) {
        await page.goto(url);
        reason = (await page.locator(".waiting .reason").textContent()) ?? "";
      }
      assert.match(reason, expected.reason);
      const block = ((await page.locator(".waiting").textContent()) ?? "").trim();
      assert.match(block, /^Waiting for an X\.509 SVID from the SPIRE Agent\./);
      assert.equal(await page.locator(".waiting .fix").textContent(), expected.fix);
      assert.doesNotMatch(block, /UNAVAILABLE|PERMISSION_DENIED|\[|grpc/i, "no raw gRPC detail");
      assert.equal(await page.locator("tbody tr").count(), 0);
      await mkdir(join(REPO_ROOT, "test-output"), { recursive: true });
      const path = join(REPO_ROOT, "test-output", expected.screenshot);
      await page.screenshot({ path, fullPage: true });
      assert.ok(existsSync(path));
      console.log(`screenshot: ${path}`);
    });
  };

  it("no agent: says there is no socket and names step 1; the log keeps the gRPC detail", async () => {
    const socket = join(socketDir, "agent.sock");
    const webapp = startWebappOn(`unix://${socket}`);
    await checkWaitingPage(webapp, {
      reason: new RegExp(
        `^There is no SPIRE Agent socket at ${socket}: the agent is not running\\.$`,
      ),
      fix: "Start the agents: run ./1-start-spire-agents.sh.",
      screenshot: "waiting-no-agent.png",
    });
    const logged = await webapp.waitForLog(
      (line) => /^still waiting/.test(line.msg) && line.problem === "no-socket",
      "still waiting (no socket)",
      { from: 0 },
    );
    assert.match(logged.msg, /no SPIRE Agent socket .* run \.\/1-start-spire-agents\.sh/);
    assert.match(String(logged.agentSaid), /UNAVAILABLE/, "the full answer stays in the log");
  });

  it("no entry yet: says the agent answered without an entry and names step 3", async () => {
    const webapp = startWebappOn(fakeAgent.address);
    await checkWaitingPage(webapp, {
      reason: /answered, but no registration entry matches this workload yet\.$/,
      fix: "Create the entries: run ./3-create-registration-entries.sh (the agent picks them up within about a second).",
      screenshot: "waiting-no-entry.png",
    });
    const logged = await webapp.waitForLog(
      (line) => /^still waiting/.test(line.msg) && line.problem === "no-entry",
      "still waiting (no entry)",
      { from: 0 },
    );
    assert.match(String(logged.agentSaid), /PERMISSION_DENIED: no identity issued/);
  });
});
