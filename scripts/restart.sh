#!/usr/bin/env bash
# Local mode: restarts one SPIRE Server on its existing data (entries, attested agents,
# federated bundles, CA keys), as after a crash or a reboot: stops it if it still runs,
# then starts it again with scripts/start-servers.sh, which leaves the other one alone.
# Its agent and the other trust domain's server reconnect by themselves.
# Docker mode: docker compose restart spire-server-broker (or spire-server-stocks).
# Usage: scripts/restart.sh spire-server-broker|spire-server-stocks [--mode local]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

name="${1:-}"
case "$name" in
  spire-server-broker | spire-server-stocks) shift ;;
  *) die "usage: scripts/restart.sh spire-server-broker|spire-server-stocks (got '${name}')" ;;
esac
demo_init "$@"
[ "$DEMO_MODE" = local ] || die "in Docker mode: docker compose restart $name"
[ -f "$DEMO_DATA/$name/datastore.sqlite3" ] ||
  die "$name has no data in .data/$name to restart on: start the demo with npm start or scripts/start-servers.sh"

say "Restarting $name on its existing data"
stop_bg "$name"
SPIRE_DEMO_KEEP_SERVER_DATA=1 "$DEMO_ROOT/scripts/start-servers.sh" --mode local
