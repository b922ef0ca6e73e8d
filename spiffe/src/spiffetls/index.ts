export * from "./authorize.js";
export { connectMtls, createMtlsAgent, mtlsConnector, tlsConnector } from "./client.js";
export * from "./config.js";
export * from "./errors.js";
export { peerIdOf } from "./peer.js";
export { createMtlsHttpsServer, createMtlsTlsServer, createTlsHttpsServer } from "./server.js";
