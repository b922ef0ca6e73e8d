import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { pino } from "pino";
import {
  type AnswerFormat,
  createExpressApp,
  errorAnswers,
  methodNotAllowed,
  notFound,
} from "./express-app.js";
import { closeServer } from "./shutdown.js";

/** An app with one GET route, one failing route per status, and the shared answers. */
async function start(t: { after: (fn: () => Promise<void>) => void }, format: AnswerFormat) {
  const app = createExpressApp();
  app.get("/thing", (_req, res) => {
    res.send("ok");
  });
  app.all("/thing", methodNotAllowed(format));
  app.get("/bad", () => {
    throw Object.assign(new Error("secret detail"), { status: 400 });
  });
  app.get("/broken", () => {
    throw new Error("secret detail");
  });
  app.use(notFound(format, "try /thing"));
  app.use(errorAnswers(format, pino({ level: "silent" })));
  const server = createServer(app);
  t.after(() => closeServer(server));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return (path: string, method = "GET") => fetch(`${base}${path}`, { method });
}

describe("the services' shared Express answers", () => {
  test("as JSON: 405 with Allow, 404 with the hint, the status name for errors", async (t) => {
    const call = await start(t, "json");
    const ok = await call("/thing");
    assert.equal(await ok.text(), "ok");
    assert.equal(ok.headers.get("x-powered-by"), null);
    assert.equal(ok.headers.get("etag"), null);

    const post = await call("/thing", "POST");
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.deepEqual(await post.json(), { error: "method not allowed: use GET" });

    const missing = await call("/elsewhere");
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: "not found: try /thing" });

    const bad = await call("/bad");
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { error: "bad request" });
    const broken = await call("/broken");
    assert.equal(broken.status, 500);
    assert.deepEqual(await broken.json(), { error: "internal server error" });
  });

  test("as text: the same answers, one capitalised line each", async (t) => {
    const call = await start(t, "text");
    const post = await call("/thing", "DELETE");
    assert.equal(post.status, 405);
    assert.match(post.headers.get("content-type") ?? "", /^text\/plain/);
    assert.equal(await post.text(), "Method not allowed: use GET\n");
    assert.equal(await (await call("/elsewhere")).text(), "Not found: try /thing\n");
    const broken = await call("/broken");
    assert.equal(broken.status, 500);
    assert.equal(await broken.text(), "Internal server error\n");
  });
});
