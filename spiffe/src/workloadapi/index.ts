export * from "./address.js";
export * from "./agent-problem.js";
export * from "./client.js";
export * from "./errors.js";
export * from "./x509source.js";
