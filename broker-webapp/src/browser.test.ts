// The page in a real browser: Debian's chromium, driven by playwright-core.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import {
  Federation,
  getPage,
  REPO_ROOT,
  type ServiceProcess,
  startQuotesService,
  startWebapp,
  tableRows,
} from "./services-test-support.js";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = join(REPO_ROOT, "test-output", "quotes-page.png");
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
});
