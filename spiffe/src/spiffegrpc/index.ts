export { type GrpcMtlsClientConfig, mtlsClientCredentials } from "./client.js";
export { type CallWithAuthContext, peerIdFromCall } from "./peer.js";
export { type GrpcMtlsServerConfig, mtlsServerCredentials } from "./server.js";
