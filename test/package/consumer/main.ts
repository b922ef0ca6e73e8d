// What a project that installed spiffe-node writes: a server and a client, each with its
// own X509Source on its own (fake) agent, then one HTTPS call and one gRPC call over
// SPIFFE mTLS. Copied into a fresh project outside the workspace by consumer.test.ts.
import type { AddressInfo } from "node:net";
import { Client, Server, type ServiceError } from "@grpc/grpc-js";
import {
  authorizeID,
  createMtlsAgent,
  createMtlsHttpsServer,
  parseWorkloadId,
  peerIdOf,
  type SpiffeId,
  X509Source,
} from "spiffe-node";
import { mtlsClientCredentials, mtlsServerCredentials, peerIdFromCall } from "spiffe-node/grpc";
import { FakeWorkloadApi, type IssuedSvid, TestCa } from "spiffe-node/testing";
import { request } from "undici";

const CLIENT_ID: SpiffeId = parseWorkloadId("spiffe://client.example/app");
const SERVER_ID: SpiffeId = parseWorkloadId("spiffe://server.example/api");

async function agentFor(id: SpiffeId, ca: TestCa, peerCa: TestCa): Promise<FakeWorkloadApi> {
  const agent = await FakeWorkloadApi.start();
  const svid: IssuedSvid = await ca.issue(String(id));
  agent.setX509({
    svids: [
      {
        spiffeId: String(id),
        chainDer: svid.chainDer,
        keyDer: svid.keyDer,
        bundleDer: ca.bundleDer(),
      },
    ],
    federatedBundles: { [`spiffe://${peerCa.trustDomain}`]: peerCa.bundleDer() },
  });
  return agent;
}

const [clientCa, serverCa] = await Promise.all([
  TestCa.create("client.example"),
  TestCa.create("server.example"),
]);
const clientAgent = await agentFor(CLIENT_ID, clientCa, serverCa);
const serverAgent = await agentFor(SERVER_ID, serverCa, clientCa);
const clientSource = new X509Source({ address: clientAgent.address });
const serverSource = new X509Source({ address: serverAgent.address });
await Promise.all([
  clientSource.ready({ timeoutMs: 10_000 }),
  serverSource.ready({ timeoutMs: 10_000 }),
]);
console.log(`fetched SVID ${clientSource.getX509Svid()?.id}`);

const serverConfig = {
  svidSource: serverSource,
  bundleSource: serverSource,
  authorizer: authorizeID(CLIENT_ID),
};
const clientConfig = {
  svidSource: clientSource,
  bundleSource: clientSource,
  authorizer: authorizeID(SERVER_ID),
};

// HTTPS
const https = createMtlsHttpsServer(serverConfig, (req, res) =>
  res.end(`https peer ${peerIdOf(req)}`),
);
await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
const agent = createMtlsAgent(clientConfig);
const response = await request(`https://127.0.0.1:${(https.address() as AddressInfo).port}/`, {
  dispatcher: agent,
});
console.log(await response.body.text());
await agent.close();
https.close();

// gRPC, with a service defined by hand (no .proto needed for raw bytes)
const bytes = (value: Buffer): Buffer => value;
const method = {
  path: "/consumer.Peers/WhoAmI",
  requestStream: false,
  responseStream: false,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
} as const;
const grpcServer = new Server();
grpcServer.addService(
  { whoAmI: method },
  {
    whoAmI: (
      call: Parameters<typeof peerIdFromCall>[0],
      callback: (error: null, reply: Buffer) => void,
    ) => callback(null, Buffer.from(`grpc peer ${peerIdFromCall(call)}`)),
  },
);
const port = await new Promise<number>((resolve, reject) =>
  grpcServer.bindAsync("127.0.0.1:0", mtlsServerCredentials(serverConfig), (error, bound) =>
    error ? reject(error) : resolve(bound),
  ),
);
const grpcClient = new Client(`127.0.0.1:${port}`, mtlsClientCredentials(clientConfig));
const reply = await new Promise<Buffer>((resolve, reject) =>
  grpcClient.makeUnaryRequest(
    method.path,
    bytes,
    bytes,
    Buffer.alloc(0),
    (error: ServiceError | null, value?: Buffer) =>
      error || !value ? reject(error) : resolve(value),
  ),
);
console.log(String(reply));
grpcClient.close();
await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));

clientSource.close();
serverSource.close();
await Promise.all([clientAgent.stop(), serverAgent.stop()]);
