export * from "./ca.js";
export * from "./extensions.js";
export * from "./fake-workload-api.js";
export * from "./jwt.js";
