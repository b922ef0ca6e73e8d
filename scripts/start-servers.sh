#!/usr/bin/env bash
# Local mode: starts the two SPIRE Servers (broker.org, stocksmarket.org) as background
# processes on loopback, each from its docker/*/server.conf with -expandEnv. A server
# that is not running starts from an empty data directory, so the tutorial's steps
# (1, 2, 3) start from scratch; scripts/restart.sh starts one on its existing data
# instead. Docker mode: `docker compose up -d` does this.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
demo_init "$@"
[ "$DEMO_MODE" = local ] || die "in Docker mode the servers start with: $(compose_name) up -d"
require_spire_binaries

start_server() {
  local td="$1" name dir
  name="$(server_name "$td")"
  dir="$(server_dir "$td")"
  if running_pid "$name" >/dev/null; then
    note "$name ($td) is already running (pid $(running_pid "$name"))"
    return 0
  fi
  [ -f "$(agent_ca_cert "$td")" ] || die "no agent CA for $td: run ./build.sh first"
  rm -f "$(server_socket "$td")"
  if [ "${SPIRE_DEMO_KEEP_SERVER_DATA:-}" = 1 ] && [ -f "$dir/datastore.sqlite3" ]; then
    note "$name keeps its data in ${dir#"$DEMO_ROOT"/} (entries, agents, bundles, CA keys)"
  else
    rm -rf "$dir"
    mkdir -p "$dir"
  fi
  note "starting $name for $td: API on 127.0.0.1:$(server_port "$td"), bundle endpoint https://127.0.0.1:$(bundle_port "$td"), log in .data/logs/$name.log"
  SPIRE_SERVER_BIND_ADDRESS=127.0.0.1 \
    SPIRE_SERVER_BIND_PORT="$(server_port "$td")" \
    SPIRE_SERVER_SOCKET_PATH="$(server_socket "$td")" \
    SPIRE_SERVER_DATA_DIR="$dir" \
    SPIRE_BUNDLE_ENDPOINT_ADDRESS=127.0.0.1 \
    SPIRE_BUNDLE_ENDPOINT_PORT="$(bundle_port "$td")" \
    SPIRE_FEDERATED_BUNDLE_ENDPOINT_URL="https://127.0.0.1:$(bundle_port "$(other_td "$td")")" \
    SPIRE_AGENT_CA_PATH="$(agent_ca_cert "$td")" \
    start_bg "$name" "$DEMO_ROOT/docker/$name/server.conf" \
    "$SPIRE_BIN/spire-server" run -config "$DEMO_ROOT/docker/$name/server.conf" -expandEnv
}

say "Starting the SPIRE Servers"
mkdir -p "$(sockets_dir)"
chmod 755 "$DEMO_DATA" "$(sockets_dir)"
for td in "${TRUST_DOMAINS[@]}"; do start_server "$td"; done
for td in "${TRUST_DOMAINS[@]}"; do
  if ! wait_for 90 "$(server_name "$td") is healthy" server_healthy "$td"; then
    show_log_tail "$(server_name "$td")"
    die "$(server_name "$td") did not become healthy within 90 s (is port $(server_port "$td") or $(bundle_port "$td") in use?)"
  fi
done
