// A gRPC client with SPIFFE mTLS: it calls Greeter.SayHello only on a server that proves
// it is spiffe://stocksmarket.org/quotes-service.
// SPIFFE_ENDPOINT_SOCKET=unix:///tmp/agent.sock node dist/grpc-client.js 127.0.0.1:50051

import { fileURLToPath } from "node:url";
import {
  type ChannelCredentials,
  type Client,
  type GrpcObject,
  loadPackageDefinition,
  type ServiceError,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { authorizeID, parseWorkloadId, X509Source } from "spiffe-node";
import { mtlsClientCredentials } from "spiffe-node/grpc";

const target = process.argv[2] ?? "127.0.0.1:50051";
const proto = loadPackageDefinition(
  loadSync(fileURLToPath(new URL("../greeter.proto", import.meta.url))),
);
// proto-loader builds the client class at run time; this says what it has.
interface GreeterClient extends Client {
  SayHello(
    request: { name: string },
    callback: (error: ServiceError | null, reply?: { message: string }) => void,
  ): void;
}
const Greeter = (proto.greeter as GrpcObject).Greeter as unknown as new (
  target: string,
  credentials: ChannelCredentials,
) => GreeterClient;

const source = new X509Source();
await source.ready({ timeoutMs: 30_000 });

const credentials = mtlsClientCredentials({
  svidSource: source,
  bundleSource: source,
  authorizer: authorizeID(parseWorkloadId("spiffe://stocksmarket.org/quotes-service")),
  trustChanges: source,
  // grpc-js reports a refused server as UNAVAILABLE; this gets the library's error.
  onPeerRejected: (error) => console.error(`server refused: ${error.message}`),
});
const client = new Greeter(target, credentials);
client.SayHello({ name: "webapp" }, (error, reply) => {
  console.log(error ? `failed: ${error.message}` : reply?.message);
  client.close();
  source.close();
  process.exitCode = error ? 1 : 0;
});
