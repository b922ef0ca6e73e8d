export * from "./x509bundle.js";
