#!/usr/bin/env bash
# Tutorial: "Bootstrap federation". Each server's bundle, in SPIFFE format
# (`spire-server bundle show -format spiffe`), is given to the other server
# (`spire-server bundle set -format spiffe -id spiffe://<trust domain>`). From then on each
# server authenticates the other's bundle endpoint and keeps the bundle up to date itself.
# (SPIRE 0.11 called these `experimental bundle show|set`.)
# --profile https_web: nothing to bootstrap (explained below); this step only says so.
# --federation api: the servers have no federates_with; this step creates each relationship
# with `spire-server federation create` (with the bootstrap bundle for https_spiffe).
# Usage: ./2-bootstrap-federation.sh [--mode local|docker] [--profile ...] [--federation ...]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"
demo_init "$@"
require_servers

explain_web_pki() {
  note "With the https_web profile a bundle endpoint presents an ordinary TLS certificate (from"
  note "the demo Web PKI CA that build.sh made), and a server checks it against the CAs it"
  note "trusts (SSL_CERT_FILE, set to that CA for the SPIRE Servers), as a browser checks a web"
  note "site. It needs no copy of the other trust domain's bundle first, so there is no"
  note "bundle show / bundle set: each server fetches the other's bundle by itself."
}

# Run time (--federation api): `federation create` on each server, unless the relationship exists.
create_relationship() {
  local td="$1" other existing args
  other="$(other_td "$td")"
  say "Creating the federation relationship with $other on $(server_name "$td") ($DEMO_PROFILE)"
  if existing="$(spire_server "$td" federation show -trustDomain "$other" 2>/dev/null)"; then
    grep -q "profile *: *$DEMO_PROFILE" <<<"$existing" ||
      die "$(server_name "$td") already has a relationship with $other, with another profile:"$'\n'"$existing"$'\n'"delete it (spire-server federation delete -id $other) or choose that profile"
    note "the relationship already exists: nothing to do"
    return 0
  fi
  args=(-trustDomain "$other" -bundleEndpointURL "$(bundle_endpoint_url "$other")"
    -bundleEndpointProfile "$DEMO_PROFILE")
  if [ "$DEMO_PROFILE" = https_spiffe ]; then
    # The bootstrap bundle goes into the relationship itself, read from stdin.
    args+=(-endpointSpiffeID "spiffe://$other/spire/server"
      -trustDomainBundlePath /dev/stdin -trustDomainBundleFormat spiffe)
    note "$(server_name "$other"): spire-server bundle show -format spiffe"
  fi
  note "$(server_name "$td"): spire-server federation create ${args[*]}"
  if [ "$DEMO_PROFILE" = https_spiffe ]; then
    spire_server "$other" bundle show -format spiffe | spire_server "$td" federation create "${args[@]}" >/dev/null
  else
    spire_server "$td" federation create "${args[@]}" </dev/null >/dev/null
  fi
}

if [ "$DEMO_FEDERATION" = api ]; then
  [ "$DEMO_PROFILE" = https_spiffe ] || explain_web_pki
  for td in "${TRUST_DOMAINS[@]}"; do create_relationship "$td"; done
  for td in "${TRUST_DOMAINS[@]}"; do
    say "$(server_name "$td"): spire-server federation list"
    spire_server "$td" federation list | sed 's/^/    /'
  done
  if [ "$DEMO_PROFILE" = https_spiffe ]; then
    for td in "${TRUST_DOMAINS[@]}"; do
      has_federated_bundle "$td" "$(other_td "$td")" ||
        die "$(server_name "$td") does not list a bundle for $(other_td "$td") after federation create"
    done
  fi
  say "The relationships exist. Next: ./3-create-registration-entries.sh"
  exit 0
fi

if [ "$DEMO_PROFILE" = https_web ]; then
  say "Web PKI (https_web): no bootstrap is needed"
  explain_web_pki
  note "The relationships are in the server configs (federates_with ... bundle_endpoint_profile \"https_web\")."
  for td in "${TRUST_DOMAINS[@]}"; do
    if has_federated_bundle "$td" "$(other_td "$td")"; then
      note "$(server_name "$td") already fetched the $(other_td "$td") bundle from its endpoint"
    else
      note "$(server_name "$td") has not fetched the $(other_td "$td") bundle yet (it retries once a minute)"
    fi
  done
  say "Nothing to do. Next: ./3-create-registration-entries.sh"
  exit 0
fi

for td in "${TRUST_DOMAINS[@]}"; do
  other="$(other_td "$td")"
  say "Giving the $td bundle to $(server_name "$other") ($other)"
  bundle="$(spire_server "$td" bundle show -format spiffe)"
  if has_federated_bundle "$other" "$td"; then
    note "$(server_name "$other") already holds a bundle for $td; setting it again"
  fi
  note "$(server_name "$td"): spire-server bundle show -format spiffe"
  note "$(server_name "$other"): spire-server bundle set -format spiffe -id spiffe://$td"
  printf '%s\n' "$bundle" | spire_server "$other" bundle set -format spiffe -id "spiffe://$td" >/dev/null
done

for td in "${TRUST_DOMAINS[@]}"; do
  has_federated_bundle "$td" "$(other_td "$td")" ||
    die "$(server_name "$td") does not list a bundle for $(other_td "$td") after bundle set"
  note "$(server_name "$td") lists the $(other_td "$td") bundle (spire-server bundle list)"
done
say "Federation is bootstrapped. Next: ./3-create-registration-entries.sh"
