export * from "./jwtbundle.js";
export * from "./spiffebundle.js";
export * from "./x509bundle.js";
