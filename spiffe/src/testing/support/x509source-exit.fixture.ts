// Run by x509source.test.ts in a child process: uses an X509Source the way a service
// would, closes it, and then does nothing more. If close() left a timer, socket or
// stream behind, this process would not exit by itself and the test would time out.
import { status } from "@grpc/grpc-js";
import { X509Source } from "../../workloadapi/x509source.js";
import { TestCa } from "../ca.js";
import { FakeWorkloadApi } from "../fake-workload-api.js";
import { fakeSvid } from "./workloadapi.js";

const ca = await TestCa.create("example.org");
const serving = await FakeWorkloadApi.start();
serving.setX509({ svids: [await fakeSvid(ca, "spiffe://example.org/workload")] });
const refusing = await FakeWorkloadApi.start();
refusing.failWith(status.PERMISSION_DENIED);

// A source with an established stream.
const established = new X509Source({ address: serving.address, logger: silent() });
await established.ready({ timeoutMs: 5000 });

// A source waiting out a long backoff delay after a refusal, with ready() pending.
const waiting = new X509Source({
  address: refusing.address,
  backoff: { initialMs: 60_000, maxMs: 60_000 },
  logger: silent(),
});
const pending = waiting.ready({ timeoutMs: 60_000 }).catch((error: Error) => error.message);
while (waiting.lastError === undefined) await new Promise((r) => setTimeout(r, 5));

established.close();
waiting.close();
const outcome = await pending;
// Let the cancel reach the server before it stops.
while (serving.cancelledStreams === 0) await new Promise((r) => setTimeout(r, 5));
await serving.stop();
await refusing.stop();
console.log(JSON.stringify({ pending: outcome, cancelled: serving.cancelledStreams }));

function silent() {
  const nothing = () => {};
  return { debug: nothing, info: nothing, warn: nothing, error: nothing };
}
