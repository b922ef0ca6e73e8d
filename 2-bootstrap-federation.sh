#!/usr/bin/env bash
# Tutorial: "Bootstrap federation". Each server's bundle, in SPIFFE format
# (`spire-server bundle show -format spiffe`), is given to the other server
# (`spire-server bundle set -format spiffe -id spiffe://<trust domain>`). From then on each
# server authenticates the other's bundle endpoint and keeps the bundle up to date itself.
# (SPIRE 0.11 called these `experimental bundle show|set`.)
# Usage: ./2-bootstrap-federation.sh [--mode local|docker]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"
demo_init "$@"
require_servers

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
