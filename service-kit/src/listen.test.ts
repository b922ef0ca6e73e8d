import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { describe, test } from "node:test";
import { ListenError, listen } from "./listen.js";
import { closeServer } from "./shutdown.js";

function newServer(t: { after: (fn: () => Promise<void>) => void }): Server {
  const server = createServer();
  t.after(() => closeServer(server));
  return server;
}

describe("listen", () => {
  test("resolves with the bound port (0 = any free port)", async (t) => {
    const port = await listen(newServer(t), 0, "127.0.0.1", "--port");
    assert.ok(port > 0);
  });

  test("a port in use names the flag to change", async (t) => {
    const port = await listen(newServer(t), 0, "127.0.0.1", "--port");
    await assert.rejects(listen(newServer(t), port, "127.0.0.1", "--health-port"), (error) => {
      assert.ok(error instanceof ListenError);
      assert.equal(
        error.message,
        `port ${port} is in use: stop the other process or pass --health-port`,
      );
      return true;
    });
  });

  test("a host that is not an address of this machine says so", async (t) => {
    await assert.rejects(listen(newServer(t), 0, "192.0.2.1", "--port"), {
      name: "ListenError",
      message: /cannot listen on host "192\.0\.2\.1": it is not an address of this machine/,
    });
  });
});

describe("closeServer", () => {
  test("resolves at once for a server that is not listening", async () => {
    await closeServer(createServer());
    await closeServer(undefined);
  });
});
