#!/usr/bin/env bash
# Beyond the tutorial: "Rotate a trust domain's CA". Rotates the X.509 CA (the signing
# authority) of one trust domain with SPIRE's own commands, `spire-server localauthority
# x509 prepare | activate | taint | revoke`, and at each stage waits for, and shows, what
# the *other* trust domain sees. Nobody copies a bundle by hand: the other server fetches
# the new authority from this trust domain's bundle endpoint, which is why federation
# uses bundle endpoints rather than a one-off `bundle set`.
# On the JWT road (--auth jwt) it then rotates the trust domain's JWT authority (the key
# that signs its JWT-SVIDs) the same way: `spire-server localauthority jwt prepare |
# activate | taint | revoke`, waiting at each stage for the other trust domain.
# Usage: ./4-rotate-ca.sh [broker.org|stocksmarket.org] [--what x509|jwt|both] [--mode local|docker]
#   (default stocksmarket.org; --what: x509 on the mTLS road, both on the JWT road).
#   ROTATE_WAIT_SECONDS=N caps every wait at N seconds.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"

TD=stocksmarket.org
WHAT=""
args=()
while [ $# -gt 0 ]; do
  arg="$1"
  shift
  case "$arg" in
    broker.org | stocksmarket.org) TD="$arg" ;;
    --mode | --auth | --profile | --federation)
      [ $# -ge 1 ] || die "$arg needs a value"
      args+=("$arg" "$1")
      shift
      ;;
    --what)
      [ $# -ge 1 ] || die "--what needs a value: x509, jwt or both"
      WHAT="$1"
      shift
      ;;
    -h | --help)
      printf 'usage: %s [broker.org|stocksmarket.org] [--what x509|jwt|both] [--mode local|docker] [--auth mtls|jwt]\n' "$(basename "$0")"
      printf '  rotates the X.509 CA of that trust domain (default stocksmarket.org) and shows\n'
      printf '  how the other trust domain follows through the bundle endpoint.\n'
      printf '  --what jwt rotates its JWT authority instead, both does one then the other\n'
      printf '  (default: x509 on the mTLS road, both on the JWT road).\n'
      printf '  ROTATE_WAIT_SECONDS=N caps every wait at N seconds (default: each wait'"'"'s own limit).\n'
      exit 0
      ;;
    -*) args+=("$arg") ;;
    *) die "unknown trust domain '$arg': this demo has broker.org and stocksmarket.org (usage: $(basename "$0") [broker.org|stocksmarket.org] [--mode local|docker])" ;;
  esac
done
demo_init "${args[@]+"${args[@]}"}"
if [ -z "$WHAT" ]; then
  if [ "$DEMO_AUTH" = jwt ]; then WHAT=both; else WHAT=x509; fi
fi
case "$WHAT" in
  x509 | jwt | both) ;;
  *) die "unknown --what '$WHAT': use x509, jwt or both" ;;
esac
OTHER="$(other_td "$TD")"
SERVER="$(server_name "$TD")"
OTHER_SERVER="$(server_name "$OTHER")"

require_servers
require_agents
has_federated_bundle "$OTHER" "$TD" ||
  die "$OTHER_SERVER holds no bundle for $TD: federation is not bootstrapped; run ./2-bootstrap-federation.sh first"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- helpers

# The limit of one wait: its own, or ROTATE_WAIT_SECONDS when that is smaller.
limit() {
  local own="$1" cap="${ROTATE_WAIT_SECONDS:-}"
  if [ -n "$cap" ] && [ "$cap" -lt "$own" ]; then echo "$cap"; else echo "$own"; fi
}

# The authority ID (SPIRE's name for it: the CA certificate's Subject Key Identifier, hex)
# in the "Active", "Prepared" or "Old" block of `localauthority x509 show`.
authority_in() {
  awk -v block="$1" '
    /^[A-Za-z]/ { inside = ($1 == block) }
    inside && /Authority ID:/ { print $NF; exit }'
}

# Splits a PEM file into one file per certificate: DIR/cert.N.pem.
split_pem() {
  local file="$1" dir="$2"
  rm -rf "$dir" && mkdir -p "$dir"
  awk -v dir="$dir" '/-BEGIN CERTIFICATE-/ { n++ } n { print > (dir "/cert." n ".pem") }' "$file"
}

# Subject Key Identifier of a certificate, lower-case hex without colons.
skid_of() {
  openssl x509 -in "$1" -noout -ext subjectKeyIdentifier 2>/dev/null | sed -n '2p' | tr -d ' :' | tr 'A-F' 'a-f'
}
# Authority Key Identifier of a certificate (the SKID of the CA that signed it).
akid_of() {
  openssl x509 -in "$1" -noout -ext authorityKeyIdentifier 2>/dev/null | sed -n '2p' |
    sed 's/^ *keyid://' | tr -d ' :' | tr 'A-F' 'a-f'
}
# The first 8 bytes of the SHA-256 fingerprint, as the page's trust panel shows them.
short_fingerprint() {
  openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//' | cut -d: -f1-8
}

# True if the PEM file holds a certificate whose SKID is the authority ID.
pem_has_authority() {
  local file="$1" id="$2" cert
  [ -s "$file" ] || return 1
  split_pem "$file" "$WORK/split"
  for cert in "$WORK"/split/cert.*.pem; do
    [ "$(skid_of "$cert")" = "$id" ] && return 0
  done
  return 1
}

# "<authority ID> (SHA-256 AB:CD:..., expires ...)", from this trust domain's own bundle.
describe_authority() {
  local id="$1" cert
  spire_server "$TD" bundle show >"$WORK/own.pem"
  split_pem "$WORK/own.pem" "$WORK/own"
  for cert in "$WORK"/own/cert.*.pem; do
    if [ "$(skid_of "$cert")" = "$id" ]; then
      echo "$id (SHA-256 $(short_fingerprint "$cert"), expires $(openssl x509 -in "$cert" -noout -enddate | sed 's/^notAfter=//'))"
      return 0
    fi
  done
  echo "$id"
}

# The bundle for TD that the other trust domain's server holds (fetched from the endpoint).
other_server_has() {
  spire_server "$OTHER" bundle list -id "spiffe://$TD" >"$WORK/other-server.pem" 2>/dev/null &&
    pem_has_authority "$WORK/other-server.pem" "$1"
}

# Runs `spire-agent api fetch x509` as a trust domain's workload (its unix user), so it
# sees exactly what that workload receives, and writes the PEM files into DIR.
fetch_as_workload() {
  local td="$1" dir="$2" user
  user="$(workload_user "$td")"
  rm -rf "$dir" && mkdir -p "$dir"
  if [ "$DEMO_MODE" = docker ]; then
    compose exec -T -u "$user" "$(agent_host "$td")" /opt/spire/bin/spire-agent api fetch x509 \
      -output json -socketPath "$DOCKER_AGENT_SOCKET"
  elif [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
      "$SPIRE_BIN/spire-agent" api fetch x509 -output json -socketPath "$(agent_socket "$td")"
  else
    "$SPIRE_BIN/spire-agent" api fetch x509 -output json -socketPath "$(agent_socket "$td")"
  fi 2>"$dir/stderr" | node "$DEMO_ROOT/scripts/x509-response.mjs" "$dir" >/dev/null 2>>"$dir/stderr"
}

other_workload_has() {
  fetch_as_workload "$OTHER" "$WORK/other-workload" &&
    pem_has_authority "$WORK/other-workload/federated-$TD.pem" "$1"
}
other_workload_lacks() {
  fetch_as_workload "$OTHER" "$WORK/other-workload" &&
    ! pem_has_authority "$WORK/other-workload/federated-$TD.pem" "$1"
}
other_server_lacks() {
  spire_server "$OTHER" bundle list -id "spiffe://$TD" >"$WORK/other-server.pem" 2>/dev/null &&
    ! pem_has_authority "$WORK/other-server.pem" "$1"
}
workload_signed_by() {
  fetch_as_workload "$TD" "$WORK/workload" &&
    [ "$(akid_of "$WORK/workload/svid.pem")" = "$1" ]
}

# ---------------------------------------------------------------- what the waits are

REFRESH_NOTE="$OTHER_SERVER fetches the $TD bundle from $SERVER's bundle endpoint by itself, every 15 s here (a quarter of its refresh_hint of 1m; SPIRE's default refresh_hint is 5m)"
SYNC_NOTE="the agent on $(agent_host "$OTHER") passes bundle changes to its workload at its next sync with $OTHER_SERVER (every 500 ms in this demo, 5 s by default)"

wait_step() {
  local seconds="$1" done_text="$2" failure="$3"
  shift 3
  if ! wait_for "$seconds" "$done_text" "$@"; then
    die "$failure"
  fi
}

# ---------------------------------------------------------------- the rotation

rotate_x509() {
say "Rotating the X.509 CA of $TD on $SERVER"
fetch_as_workload "$TD" "$WORK/workload" ||
  die "$(workload_id "$TD") has no SVID yet ($(tail -n 1 "$WORK/workload/stderr")): run ./3-create-registration-entries.sh first"
shown="$(spire_server "$TD" localauthority x509 show)"
active="$(authority_in Active <<<"$shown")"
prepared="$(authority_in Prepared <<<"$shown")"
old="$(authority_in Old <<<"$shown")"
[ -n "$active" ] || die "spire-server localauthority x509 show on $SERVER names no active X.509 authority"
spire_server "$TD" bundle show >"$WORK/own-bundle.pem"

if [ -n "$old" ] && pem_has_authority "$WORK/own-bundle.pem" "$old"; then
  # An earlier run activated a new authority but stopped before revoking the old one.
  say "An earlier rotation of $TD did not finish: the old authority is still in the bundle"
  note "old authority: $(describe_authority "$old")"
  note "active authority: $(describe_authority "$active")"
  note "finishing that rotation (taint, then revoke) instead of starting another"
  retiring="$old"
  new="$active"
else
  note "active authority: $(describe_authority "$active")"
  note "it signs every SVID of $TD, and $OTHER trusts it through the federated bundle"

  say "1/4 prepare: a new authority joins the $TD bundle, not yet signing anything"
  if [ -n "$prepared" ]; then
    note "an authority is already prepared (an earlier run stopped before activating it, or SPIRE"
    note "prepared its next CA itself): using it rather than preparing another, which would"
    note "leave an unused authority in the bundle"
  else
    note "$SERVER: spire-server localauthority x509 prepare"
    output="$(spire_server "$TD" localauthority x509 prepare)"
    prepared="$(authority_in Prepared <<<"$output")"
    [ -n "$prepared" ] || die "localauthority x509 prepare printed no authority ID: $output"
  fi
  note "prepared authority: $(describe_authority "$prepared")"

  say "2/4 wait until $OTHER trusts the new authority (nobody runs bundle set)"
  note "why: $REFRESH_NOTE"
  seconds="$(limit 90)"
  wait_step "$seconds" "$OTHER_SERVER lists the new authority in its bundle for $TD" \
    "not activating: after $seconds s, $OTHER_SERVER still does not list the prepared authority $prepared in its bundle for $TD. Activating it now would soon make $SERVER present a bundle-endpoint certificate signed by an authority $OTHER_SERVER does not trust: it could no longer authenticate the endpoint, and federation would stay broken until ./2-bootstrap-federation.sh is run again. The authority stays prepared: see .data/logs/$OTHER_SERVER.log (Bundle refreshed / Error updating bundle), then run this script again to continue." \
    other_server_has "$prepared"
  note "why: $SYNC_NOTE"
  seconds="$(limit 60)"
  wait_step "$seconds" "$(workload_id "$OTHER") received the new authority in its federated $TD bundle" \
    "not activating: after $seconds s, $(workload_id "$OTHER") still has no $TD bundle with the prepared authority $prepared, although $OTHER_SERVER lists it. Is the agent on $(agent_host "$OTHER") running (./1-start-spire-agents.sh) and does the entry federate with $TD (./3-create-registration-entries.sh)? Run this script again to continue." \
    other_workload_has "$prepared"

  say "3/4 activate the new authority and taint the old one"
  note "$SERVER: spire-server localauthority x509 activate -authorityID $prepared"
  spire_server "$TD" localauthority x509 activate -authorityID "$prepared" >/dev/null
  note "new SVIDs of $TD are signed by $prepared from now on"
  retiring="$active"
  new="$prepared"
fi

note "$SERVER: spire-server localauthority x509 taint -authorityID $retiring"
if ! output="$(spire_server "$TD" localauthority x509 taint -authorityID "$retiring" 2>&1)"; then
  grep -qi "already tainted" <<<"$output" || die "localauthority x509 taint failed: $output"
  note "(it was already tainted)"
fi
note "tainted: agents renew every SVID that $retiring signed now, instead of at half its lifetime"
note "why the wait: the agent on $(agent_host "$TD") learns of the taint at its next sync, then renews"
seconds="$(limit 90)"
if ! wait_for "$seconds" "$(workload_id "$TD") has a new SVID signed by the new authority" \
  workload_signed_by "$new"; then
  die "after $seconds s, $(workload_id "$TD") still has an SVID signed by $(akid_of "$WORK/workload/svid.pem"), not by the new authority $new: see .data/logs/agent-$(agent_host "$TD").log. The old authority is tainted but still trusted; run this script again to finish (it revokes the old authority only after the workload has moved)."
fi
fetch_as_workload "$OTHER" "$WORK/other-workload" ||
  die "could not read what $(workload_id "$OTHER") holds: $(tail -n 1 "$WORK/other-workload/stderr")"
if openssl verify -CAfile "$WORK/other-workload/federated-$TD.pem" "$WORK/workload/svid.pem" >/dev/null 2>&1; then
  note "the $TD bundle that $(workload_id "$OTHER") holds verifies that new SVID (openssl verify)"
else
  die "the $TD bundle that $(workload_id "$OTHER") holds does not verify the new SVID of $(workload_id "$TD")"
fi

say "4/4 revoke the old authority: $TD no longer trusts it, and neither does $OTHER"
note "$SERVER: spire-server localauthority x509 revoke -authorityID $retiring"
spire_server "$TD" localauthority x509 revoke -authorityID "$retiring" >/dev/null
note "why the wait: $REFRESH_NOTE"
seconds="$(limit 90)"
wait_step "$seconds" "$OTHER_SERVER no longer lists the old authority in its bundle for $TD" \
  "after $seconds s, $OTHER_SERVER still lists the revoked authority $retiring in its bundle for $TD: see .data/logs/$OTHER_SERVER.log (Bundle refreshed / Error updating bundle)" \
  other_server_lacks "$retiring"
seconds="$(limit 60)"
wait_step "$seconds" "$(workload_id "$OTHER") no longer has it in its federated $TD bundle" \
  "after $seconds s, $(workload_id "$OTHER") still has the revoked authority $retiring in its $TD bundle: is the agent on $(agent_host "$OTHER") running?" \
  other_workload_lacks "$retiring"
say "The CA of $TD is rotated: it signs with $(describe_authority "$new")"
if [ "$DEMO_MODE" = local ]; then
  note "the page's Trust panel (http://localhost:8080/quotes) shows the same from the webapp's side"
fi
}

# ---------------------------------------------------------------- the JWT authority

# Key IDs of the JWT authorities in a SPIFFE bundle document (JSON) on stdin.
jwt_kids() {
  node -e '
    let text = "";
    process.stdin.on("data", (chunk) => (text += chunk)).on("end", () => {
      const keys = JSON.parse(text).keys ?? [];
      for (const key of keys) if (key.use === undefined || key.use === "jwt-svid") if (key.kid) console.log(key.kid);
    });'
}

other_server_has_jwt() {
  spire_server "$OTHER" bundle list -id "spiffe://$TD" -format spiffe 2>/dev/null | jwt_kids | grep -qxF "$1"
}
other_server_lacks_jwt() {
  spire_server "$OTHER" bundle list -id "spiffe://$TD" -format spiffe >"$WORK/other-server.json" 2>/dev/null &&
    ! jwt_kids <"$WORK/other-server.json" | grep -qxF "$1"
}

# `spire-agent api fetch jwt` as a trust domain's workload: its token for an audience
# (default a probe; the agent caches one token per audience) and the JWT bundles it holds,
# as that workload receives them.
fetch_jwt_as_workload() {
  local td="$1" audience="${2:-rotation-probe}" user
  user="$(workload_user "$td")"
  if [ "$DEMO_MODE" = docker ]; then
    compose exec -T -u "$user" "$(agent_host "$td")" /opt/spire/bin/spire-agent api fetch jwt \
      -audience "$audience" -socketPath "$DOCKER_AGENT_SOCKET"
  elif [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
      "$SPIRE_BIN/spire-agent" api fetch jwt -audience "$audience" -socketPath "$(agent_socket "$td")"
  else
    "$SPIRE_BIN/spire-agent" api fetch jwt -audience "$audience" -socketPath "$(agent_socket "$td")"
  fi 2>/dev/null
}
# Key IDs of TD's JWT bundle that the OTHER workload holds: the (indented, multi-line)
# JSON after "bundle(spiffe://TD):" in the output of `spire-agent api fetch jwt`.
other_workload_jwt_kids() {
  fetch_jwt_as_workload "$OTHER" | node -e '
    let text = "";
    process.stdin.on("data", (chunk) => (text += chunk)).on("end", () => {
      const parts = text.split(/^(token|hint|bundle)\(([^)]*)\):$/m);
      for (let i = 1; i + 2 < parts.length; i += 3) {
        if (parts[i] !== "bundle" || parts[i + 1] !== process.argv[1]) continue;
        for (const key of JSON.parse(parts[i + 2]).keys ?? []) if (key.kid) console.log(key.kid);
      }
    });' "spiffe://$TD"
}
other_workload_has_jwt() { other_workload_jwt_kids | grep -qxF "$1"; }
other_workload_lacks_jwt() {
  local kids
  kids="$(other_workload_jwt_kids)" && [ -n "$kids" ] && ! grep -qxF "$1" <<<"$kids"
}
# Whether the token TD's workload gets now for the audience it uses in this demo (the
# other workload's ID) names key $1: the agent keeps handing out a cached token until
# half its lifetime, even one signed by a tainted key.
workload_jwt_signed_by() {
  local token
  token="$(fetch_jwt_as_workload "$TD" "$(workload_id "$OTHER")" | awk '/^token\(/ { getline; print $1; exit }')" || return 1
  [ -n "$token" ] || return 1
  [ "$(node -e 'console.log(JSON.parse(Buffer.from(process.argv[1].split(".")[0], "base64url")).kid ?? "")' "$token")" = "$1" ]
}

rotate_jwt() {
  say "Rotating the JWT authority of $TD on $SERVER"
  local shown active prepared old output seconds retiring new
  shown="$(spire_server "$TD" localauthority jwt show)"
  active="$(authority_in Active <<<"$shown")"
  prepared="$(authority_in Prepared <<<"$shown")"
  old="$(authority_in Old <<<"$shown")"
  [ -n "$active" ] || die "spire-server localauthority jwt show on $SERVER names no active JWT authority"
  note "active JWT authority (key ID): $active; it signs every JWT-SVID of $TD"
  if [ -n "$old" ] && spire_server "$TD" bundle show -format spiffe | jwt_kids | grep -qxF "$old"; then
    say "An earlier JWT rotation of $TD did not finish: finishing it (taint, then revoke)"
    retiring="$old"
    new="$active"
  else
    say "1/4 prepare: a new JWT key joins the $TD bundle, not yet signing anything"
    if [ -z "$prepared" ]; then
      note "$SERVER: spire-server localauthority jwt prepare"
      output="$(spire_server "$TD" localauthority jwt prepare)"
      prepared="$(authority_in Prepared <<<"$output")"
      [ -n "$prepared" ] || die "localauthority jwt prepare printed no authority ID: $output"
    else
      note "a JWT authority is already prepared: using it"
    fi
    note "prepared JWT authority (key ID): $prepared"

    say "2/4 wait until $OTHER trusts the new JWT key"
    note "why: $REFRESH_NOTE"
    seconds="$(limit 90)"
    wait_step "$seconds" "$OTHER_SERVER lists the new JWT key in its bundle for $TD" \
      "not activating: after $seconds s, $OTHER_SERVER does not list the prepared JWT key $prepared for $TD; tokens signed by it would be refused there. Run this script again to continue." \
      other_server_has_jwt "$prepared"
    note "why: $SYNC_NOTE"
    seconds="$(limit 60)"
    wait_step "$seconds" "$(workload_id "$OTHER") received the new JWT key in its $TD bundle" \
      "not activating: after $seconds s, $(workload_id "$OTHER") has no $TD JWT bundle with $prepared. Run this script again to continue." \
      other_workload_has_jwt "$prepared"

    say "3/4 activate the new JWT key and taint the old one"
    note "$SERVER: spire-server localauthority jwt activate -authorityID $prepared"
    spire_server "$TD" localauthority jwt activate -authorityID "$prepared" >/dev/null
    retiring="$active"
    new="$prepared"
  fi
  note "$SERVER: spire-server localauthority jwt taint -authorityID $retiring"
  if ! output="$(spire_server "$TD" localauthority jwt taint -authorityID "$retiring" 2>&1)"; then
    grep -qi "already tainted" <<<"$output" || die "localauthority jwt taint failed: $output"
    note "(it was already tainted)"
  fi
  note "tainted: new JWT-SVIDs are signed by $new, but the agent hands out a token it cached"
  note "until half its lifetime (2.5 min for SPIRE's default 5 min): revoking the old key"
  note "before then would leave $(workload_id "$TD") a token nobody accepts"
  seconds="$(limit 200)"
  wait_step "$seconds" "$(workload_id "$TD") gets its JWT-SVID for $(workload_id "$OTHER") signed by the new key" \
    "after $seconds s, $(workload_id "$TD") still gets JWT-SVIDs signed by another key than $new; the old key is tainted but still trusted. Run this script again to finish." \
    workload_jwt_signed_by "$new"

  say "4/4 revoke the old JWT key: tokens it signed are refused everywhere"
  note "$SERVER: spire-server localauthority jwt revoke -authorityID $retiring"
  note "(workloads using the library drop a cached token whose key leaves the bundle, and fetch a new one)"
  spire_server "$TD" localauthority jwt revoke -authorityID "$retiring" >/dev/null
  seconds="$(limit 90)"
  wait_step "$seconds" "$OTHER_SERVER no longer lists the old JWT key for $TD" \
    "after $seconds s, $OTHER_SERVER still lists the revoked JWT key $retiring for $TD" \
    other_server_lacks_jwt "$retiring"
  seconds="$(limit 60)"
  wait_step "$seconds" "$(workload_id "$OTHER") no longer has it in its $TD JWT bundle" \
    "after $seconds s, $(workload_id "$OTHER") still has the revoked JWT key $retiring" \
    other_workload_lacks_jwt "$retiring"
  say "The JWT authority of $TD is rotated: it signs with key $new"
}

if [ "$WHAT" != jwt ]; then rotate_x509; fi
if [ "$WHAT" != x509 ]; then rotate_jwt; fi
