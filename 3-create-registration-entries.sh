#!/usr/bin/env bash
# Tutorial: "Create Workload Registration Entries". On each server, one entry for its
# workload: parent ID = the x509pop ID of the agent on the workload's host, selector =
# the workload's unix user, and -federatesWith the other trust domain so the workload
# also receives that trust domain's bundle.
# With https_web (or --federation api) each server fetches the other's bundle by itself: this
# step waits for it, and says what is missing if it cannot come.
# Usage: ./3-create-registration-entries.sh [--mode local|docker] [--profile ...] [--federation ...]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"
demo_init "$@"
require_servers
require_agents
for td in "${TRUST_DOMAINS[@]}"; do
  other="$(other_td "$td")"
  has_federated_bundle "$td" "$other" && continue
  if [ "$DEMO_FEDERATION" = config ] && [ "$DEMO_PROFILE" = https_spiffe ]; then
    die "$(server_name "$td") has no bundle for $other yet, and -federatesWith needs it: run ./2-bootstrap-federation.sh first"
  fi
  if [ "$DEMO_FEDERATION" = api ] && ! spire_server "$td" federation show -trustDomain "$other" >/dev/null 2>&1; then
    die "$(server_name "$td") has no federation relationship with $other yet: run ./2-bootstrap-federation.sh --federation api first"
  fi
  wait_for_federated_bundle "$td" "$other"
done

# The tutorial's selectors name the unix users webapp and quotes-service. Local mode
# creates those users only when run as root; otherwise both services run as the current
# user, so the entries select that user's uid instead.
selector_for() {
  if [ "$DEMO_MODE" = local ] && [ "$(id -u)" -ne 0 ]; then
    echo "unix:uid:$(id -u)"
  else
    echo "unix:user:$(workload_user "$1")"
  fi
}
if [ "$DEMO_MODE" = local ] && [ "$(id -u)" -ne 0 ]; then
  warn "not running as root: the entries select unix:uid:$(id -u) (you) instead of the tutorial's unix:user:webapp / unix:user:quotes-service"
fi

for td in "${TRUST_DOMAINS[@]}"; do
  other="$(other_td "$td")"
  parent="$(agent_id "$td")"
  spiffe_id="$(workload_id "$td")"
  selector="$(selector_for "$td")"
  say "Registering $spiffe_id on $(server_name "$td"), federated with $other"
  note "parent ID (the agent on $(agent_host "$td")): $parent"
  note "selector: $selector"
  existing="$(spire_server "$td" entry show -spiffeID "$spiffe_id" -parentID "$parent" -selector "$selector")"
  if grep -q "^Entry ID" <<<"$existing"; then
    note "the entry already exists: nothing to do"
    continue
  fi
  output="$(spire_server "$td" entry create -parentID "$parent" -spiffeID "$spiffe_id" \
    -selector "$selector" -federatesWith "spiffe://$other" 2>&1)" || {
    if grep -q "AlreadyExists" <<<"$output"; then
      note "the entry already exists: nothing to do"
      continue
    fi
    printf '%s\n' "$output" >&2
    die "spire-server entry create failed on $(server_name "$td")"
  }
  note "created entry $(sed -n 's/^Entry ID *: *//p' <<<"$output")"
done
say "Entries created. Within a few seconds (agent sync) the workloads receive their SVIDs and the federated bundles."
note "watch it: open http://localhost:8080/quotes"
