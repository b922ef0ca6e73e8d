// The fake's call records name these.
export type { WorkloadApiMethod } from "../workloadapi/proto.js";
export * from "./ca.js";
export * from "./extensions.js";
export * from "./fake-workload-api.js";
