export * from "./spiffeid.js";
