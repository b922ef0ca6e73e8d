export * from "./bundle/index.js";
export * from "./errors/index.js";
export * from "./jwtsvid/index.js";
export * from "./logger/index.js";
export * from "./spiffeid/index.js";
export * from "./spiffetls/index.js";
export * from "./workloadapi/index.js";
export * from "./x509svid/index.js";
