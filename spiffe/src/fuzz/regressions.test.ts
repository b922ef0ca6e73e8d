// What the fuzz tests found, each as a named test with the input that showed it.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SvidError, X509Svid } from "../x509svid/svid.js";
import { CHAIN_KEY, EC_LEAF } from "./corpus.js";

/** The DER of the OID id-ecPublicKey (1.2.840.10045.2.1), as a leaf's key names it. */
const EC_PUBLIC_KEY_OID = Buffer.from("06072a8648ce3d0201", "hex");

describe("fuzz findings", () => {
  test("a leaf whose public key OpenSSL cannot read is a malformed chain, not an OpenSSL error (seed 202026)", () => {
    const leaf = Buffer.from(EC_LEAF);
    const at = leaf.indexOf(EC_PUBLIC_KEY_OID);
    assert.ok(at > 0);
    leaf[at + 2] = 0x2b; // 1.2.840... becomes 1.3.6...: an unknown key algorithm
    assert.throws(
      () => X509Svid.fromDer(leaf, CHAIN_KEY),
      (error: unknown) => {
        assert.ok(error instanceof SvidError, String(error));
        assert.equal(error.code, "malformed-chain");
        assert.match(error.message, /holds a public key that cannot be read/);
        return true;
      },
    );
  });
});
