// A gRPC server with SPIFFE mTLS: any workload of broker.org may call Greeter.SayHello.
// SPIFFE_ENDPOINT_SOCKET=unix:///tmp/agent.sock PORT=50051 node dist/grpc-server.js

import { fileURLToPath } from "node:url";
import {
  type GrpcObject,
  loadPackageDefinition,
  Server,
  type ServerUnaryCall,
  type ServiceClientConstructor,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { authorizeMemberOf, TrustDomain, X509Source } from "spiffe-node";
import { mtlsServerCredentials, peerIdFromCall } from "spiffe-node/grpc";

// Compiled to dist/, so the .proto file is one folder up.
const proto = loadPackageDefinition(
  loadSync(fileURLToPath(new URL("../greeter.proto", import.meta.url))),
);
const { Greeter } = proto.greeter as GrpcObject;

const source = new X509Source();
await source.ready({ timeoutMs: 30_000 });

const server = new Server();
server.addService((Greeter as ServiceClientConstructor).service, {
  SayHello(call: ServerUnaryCall<{ name: string }, unknown>, reply: sendUnaryData<unknown>) {
    reply(null, { message: `hello ${call.request.name}, you are ${peerIdFromCall(call)}` });
  },
});

const credentials = mtlsServerCredentials({
  svidSource: source,
  bundleSource: source,
  authorizer: authorizeMemberOf(TrustDomain.parse("broker.org")),
  // Open connections are verified again when the bundles change.
  trustChanges: source,
  onPeerRejected: (error, address) => console.error(`refused ${address}: ${error.message}`),
});
server.bindAsync(`127.0.0.1:${process.env.PORT ?? 50051}`, credentials, (error, port) => {
  if (error) throw error;
  console.log(`listening on 127.0.0.1:${port}`);
});

process.once("SIGTERM", () => server.tryShutdown(() => source.close()));
