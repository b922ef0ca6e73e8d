#!/usr/bin/env bash
# Makes the demo "Web PKI" for --profile https_web, once, under .data/certs/web-pki
# (git-ignored): a CA, and for each SPIRE Server a key + serving certificate for its bundle
# endpoint, valid for every name the other server uses to reach it (the compose host name,
# localhost, 127.0.0.1). A real deployment would get these from a public or company CA.
# The private keys are made here and never committed. Safe to run again: existing files are kept.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
demo_init "$@"

command -v openssl >/dev/null 2>&1 || die "openssl is needed to make the Web PKI certificates (apt-get install openssl)"

dir="$(web_pki_dir)"
ca_key="$dir/web-ca.key"
ca_cert="$(web_ca_cert)"

make_ca() {
  if [ -f "$ca_cert" ] && [ -f "$ca_key" ]; then
    note "the demo Web PKI CA already exists in ${dir#"$DEMO_ROOT"/}"
    return 0
  fi
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 365 \
      -keyout "$ca_key" -out "$ca_cert" -subj "/O=SPIFFE federation demo/CN=demo Web PKI CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      2>/dev/null
  )
  chmod 644 "$ca_cert"
  note "made the demo Web PKI CA in ${dir#"$DEMO_ROOT"/}"
}

make_serving_cert() {
  local name key cert ext
  name="$(server_name "$1")"
  key="$(web_key "$1")"
  cert="$(web_cert "$1")"
  if [ -f "$cert" ] && [ -f "$key" ]; then
    note "$name: bundle endpoint certificate already exists"
    return 0
  fi
  (
    umask 077
    ext="$(mktemp)"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" >"$ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$key" \
      -subj "/O=SPIFFE federation demo/CN=$name" 2>/dev/null |
      openssl x509 -req -sha256 -days 365 -CA "$ca_cert" -CAkey "$ca_key" -CAcreateserial \
        -extfile "$ext" -out "$cert" 2>/dev/null
    rm -f "$ext" "$dir/web-ca.srl"
  )
  chmod 644 "$cert"
  note "$name: made the bundle endpoint key + certificate (DNS:$name, DNS:localhost, IP:127.0.0.1)"
}

say "Demo Web PKI for the https_web profile (a CA and a bundle endpoint certificate per server)"
mkdir -p "$dir"
chmod 755 "$DEMO_DATA/certs" "$dir"
exec 9>"$DEMO_DATA/.certs.lock"
flock 9
make_ca
for td in "${TRUST_DOMAINS[@]}"; do make_serving_cert "$td"; done
