// CommonJS consumers load the ES module build with require() (Node 20.19+ and 22.12+).
const spiffe = require("spiffe-node");
const grpc = require("spiffe-node/grpc");

const id = spiffe.parseWorkloadId("spiffe://client.example/app");
console.log(
  `require: ${id} ${typeof spiffe.X509Source} ${typeof grpc.mtlsServerCredentials} ${typeof grpc.mtlsClientCredentials}`,
);
