export * from "./spiffe-error.js";
