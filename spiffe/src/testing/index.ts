// The fake's call records name these.
export type { WorkloadApiMethod, WorkloadApiStreamMethod } from "../workloadapi/proto.js";
export * from "./ca.js";
export * from "./extensions.js";
export * from "./fake-workload-api.js";
export * from "./jwt.js";
