import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import express from "express";
import { expressServerOptions } from "./express-server.js";
import { closeServer } from "./shutdown.js";

describe("expressServerOptions", () => {
  test("requests and responses arrive with the app's prototypes, and Express works as usual", async (t) => {
    const app = express();
    const seen: { sameRequestPrototype: boolean; sameResponsePrototype: boolean }[] = [];
    const options = expressServerOptions(app);
    app.get("/echo", (req, res) => {
      seen.push({
        sameRequestPrototype: Object.getPrototypeOf(req) === app.request,
        sameResponsePrototype: Object.getPrototypeOf(res) === app.response,
      });
      assert.equal(req.app, app);
      res.status(201).json({ name: req.query.name, path: req.path, method: req.method });
    });
    const server = createServer(options, app);
    // Before Express's own listener: what the server built, before Express touched it.
    const built: boolean[] = [];
    server.prependListener("request", (req, res) => {
      built.push(
        Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response,
      );
    });
    t.after(() => closeServer(server));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;

    for (let i = 0; i < 2; i += 1) {
      const response = await fetch(`http://127.0.0.1:${port}/echo?name=quotes`);
      assert.equal(response.status, 201);
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
      assert.deepEqual(await response.json(), { name: "quotes", path: "/echo", method: "GET" });
    }
    const missing = await fetch(`http://127.0.0.1:${port}/nowhere`);
    assert.equal(missing.status, 404, "Express's own 404 handler still answers");
    // Built with the app's prototypes: Express's setPrototypeOf had nothing to change.
    assert.deepEqual(built, [true, true, true]);
    assert.deepEqual(seen, [
      { sameRequestPrototype: true, sameResponsePrototype: true },
      { sameRequestPrototype: true, sameResponsePrototype: true },
    ]);
  });
});
