export { type GrpcMtlsClientConfig, mtlsClientCredentials } from "./client.js";
export { type CallWithAuthContext, peerIdFromCall } from "./peer.js";
export { mtlsServerCredentials } from "./server.js";
