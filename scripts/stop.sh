#!/usr/bin/env bash
# `npm run stop`: stops everything local mode started (services, agents, servers), by the
# pids recorded in .data/pids. Docker mode: docker compose down.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
demo_init "$@"

if [ "$DEMO_MODE" = docker ]; then
  say "Stopping the containers ($(compose_name) down)"
  compose down
  exit 0
fi

say "Stopping the local demo"
stopped=0
for name in broker-webapp stock-quotes-service agent-broker-webapp agent-stock-quotes-service \
  spire-server-broker spire-server-stocks; do
  if running_pid "$name" >/dev/null; then
    stop_bg "$name"
    stopped=$((stopped + 1))
  else
    rm -f "$(pid_file "$name")"
  fi
done
if [ "$stopped" -eq 0 ]; then note "nothing was running"; else note "stopped $stopped processes"; fi
