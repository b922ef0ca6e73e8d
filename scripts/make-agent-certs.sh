#!/usr/bin/env bash
# Makes the x509pop node-attestation material, once, under .data/certs (git-ignored):
# per trust domain an agent CA (the server's ca_bundle_path) and one key + certificate for
# the agent of its workload host. The private keys are made here and never committed.
# Safe to run again: existing files are kept (their agent IDs stay the same).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
demo_init "$@"

command -v openssl >/dev/null 2>&1 || die "openssl is needed to make the agent certificates (apt-get install openssl)"

make_for() {
  local td="$1" dir host ca_key ca_cert key cert ext
  dir="$(certs_dir "$td")"
  host="$(agent_host "$td")"
  ca_key="$dir/agent-ca.key"
  ca_cert="$(agent_ca_cert "$td")"
  key="$(agent_key "$td")"
  cert="$(agent_cert "$td")"
  if [ -f "$ca_cert" ] && [ -f "$cert" ] && [ -f "$key" ]; then
    note "$td: agent CA and $host agent certificate already exist in ${dir#"$DEMO_ROOT"/}"
    return 0
  fi
  mkdir -p "$dir"
  chmod 755 "$dir"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 365 \
      -keyout "$ca_key" -out "$ca_cert" -subj "/O=SPIFFE federation demo/CN=$td agent CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      2>/dev/null
    ext="$(mktemp)"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=clientAuth" >"$ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$key" \
      -subj "/O=SPIFFE federation demo/CN=$host" 2>/dev/null |
      openssl x509 -req -sha256 -days 365 -CA "$ca_cert" -CAkey "$ca_key" -CAcreateserial \
        -extfile "$ext" -out "$cert" 2>/dev/null
    rm -f "$ext" "$dir/agent-ca.srl"
  )
  # Certificates are public; the keys stay readable by their owner only.
  chmod 644 "$ca_cert" "$cert"
  note "$td: made an agent CA and the $host agent key + certificate in ${dir#"$DEMO_ROOT"/}"
}

say "Agent certificates for x509pop node attestation"
mkdir -p "$DEMO_DATA"
# Two runs at once (e.g. test files run in parallel) must not mix two CAs' files.
exec 9>"$DEMO_DATA/.certs.lock"
flock 9
for td in "${TRUST_DOMAINS[@]}"; do make_for "$td"; done
