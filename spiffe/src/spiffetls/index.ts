export * from "./authorize.js";
export { connectMtls, createMtlsAgent, mtlsConnector } from "./client.js";
export * from "./config.js";
export * from "./errors.js";
export { peerIdOf } from "./peer.js";
export { createMtlsHttpsServer, createMtlsTlsServer } from "./server.js";
