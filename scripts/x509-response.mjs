#!/usr/bin/env node
// Used by 4-rotate-ca.sh: reads the JSON of `spire-agent api fetch x509 -output json` on
// stdin and writes, into the folder given as argument, the PEM files the script checks
// with openssl: svid.pem (the default SVID's chain, leaf first), bundle.pem (its own trust
// domain's bundle) and federated-<trust domain>.pem for each federated bundle. The
// private key in the response is never written.
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const outDir = process.argv[2];
if (!outDir) {
  console.error("usage: x509-response.mjs OUTPUT_FOLDER < fetch-x509.json");
  process.exit(2);
}

/** Splits concatenated DER certificates (each one a DER SEQUENCE) and returns PEM text. */
function derToPem(base64) {
  const der = Buffer.from(base64 ?? "", "base64");
  const pems = [];
  let offset = 0;
  while (offset < der.length) {
    if (der[offset] !== 0x30) throw new Error(`no DER SEQUENCE at byte ${offset}`);
    const first = der[offset + 1];
    let length = first;
    let header = 2;
    if (first & 0x80) {
      const count = first & 0x7f;
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + der[offset + 2 + i];
      header = 2 + count;
    }
    const end = offset + header + length;
    if (end > der.length) throw new Error("truncated DER certificate");
    pems.push(new X509Certificate(der.subarray(offset, end)).toString());
    offset = end;
  }
  return pems.join("");
}

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
let response;
try {
  response = JSON.parse(input);
} catch {
  console.error(`x509-response.mjs: the agent's answer is not JSON: ${input.slice(0, 200)}`);
  process.exit(1);
}
// protojson: the proto's field names, or their lowerCamelCase JSON names.
const svid = response.svids?.[0];
if (!svid) {
  console.error("x509-response.mjs: the agent's answer holds no SVID");
  process.exit(1);
}
writeFileSync(join(outDir, "svid.pem"), derToPem(svid.x509_svid ?? svid.x509Svid));
writeFileSync(join(outDir, "bundle.pem"), derToPem(svid.bundle));
const federated = response.federated_bundles ?? response.federatedBundles ?? {};
for (const [id, der] of Object.entries(federated)) {
  const name = id.replace(/^spiffe:\/\//, "");
  if (!/^[a-z0-9._-]+$/.test(name)) throw new Error(`unexpected trust domain ID ${id}`);
  writeFileSync(join(outDir, `federated-${name}.pem`), derToPem(der));
}
console.log(svid.spiffe_id ?? svid.spiffeId);
