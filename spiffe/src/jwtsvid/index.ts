export * from "./source.js";
export * from "./svid.js";
