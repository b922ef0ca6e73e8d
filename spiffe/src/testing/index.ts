export * from "./ca.js";
export * from "./fake-workload-api.js";
