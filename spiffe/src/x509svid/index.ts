export type { LeafRule } from "./rules.js";
export * from "./source.js";
export * from "./svid.js";
export * from "./verify.js";
