export * from "./agent-advice.js";
export * from "./command-line.js";
export * from "./identity-log.js";
export * from "./listen.js";
export * from "./logger.js";
export * from "./quote-json.js";
export * from "./shutdown.js";
export * from "./workload-api.js";
