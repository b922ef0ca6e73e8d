#!/usr/bin/env bash
# Tutorial: "Start SPIRE Agents". For each trust domain, copies the server's bundle
# (`spire-server bundle show`, PEM) to the agent of its workload host as the agent's
# bootstrap trust bundle (trust_bundle_path), then starts the agent, which attests to
# its server with x509pop.
# Usage: ./1-start-spire-agents.sh [--mode local|docker]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"
demo_init "$@"
require_servers

start_local_agent() {
  local td="$1" host dir name
  host="$(agent_host "$td")"
  dir="$(agent_dir "$td")"
  name="agent-$host"
  [ -f "$(agent_cert "$td")" ] || die "no agent certificate for $host: run ./build.sh first"
  # A fresh data directory: the agent attests again rather than reuse an SVID that a
  # restarted server would not know.
  rm -rf "$dir"
  rm -f "$(agent_socket "$td")"
  mkdir -p "$dir/data"
  spire_server "$td" bundle show >"$dir/bootstrap.crt"
  note "wrote the $td bundle to ${dir#"$DEMO_ROOT"/}/bootstrap.crt"
  note "starting the agent of $host: Workload API at $(agent_socket "$td"), log in .data/logs/$name.log"
  SPIRE_SERVER_ADDRESS=127.0.0.1 \
    SPIRE_SERVER_PORT="$(server_port "$td")" \
    SPIRE_AGENT_SOCKET_PATH="$(agent_socket "$td")" \
    SPIRE_AGENT_TRUST_BUNDLE_PATH="$dir/bootstrap.crt" \
    SPIRE_AGENT_DATA_DIR="$dir/data" \
    SPIRE_AGENT_KEY_PATH="$(agent_key "$td")" \
    SPIRE_AGENT_CERT_PATH="$(agent_cert "$td")" \
    start_bg "$name" "$DEMO_ROOT/docker/$host/agent.conf" \
    "$SPIRE_BIN/spire-agent" run -config "$DEMO_ROOT/docker/$host/agent.conf" -expandEnv
}

start_docker_agent() {
  local td="$1" host
  host="$(agent_host "$td")"
  spire_server "$td" bundle show |
    compose exec -T -u root "$host" sh -c "cat > '$DOCKER_AGENT_BOOTSTRAP'"
  note "wrote the $td bundle to $host:$DOCKER_AGENT_BOOTSTRAP"
  note "starting the agent in the $host container ($(compose_name) exec -d)"
  compose exec -d -u root "$host" /opt/spire/bin/spire-agent run \
    -config /opt/spire/conf/agent/agent.conf -expandEnv
}

for td in "${TRUST_DOMAINS[@]}"; do
  host="$(agent_host "$td")"
  if agent_healthy "$td" || { [ "$DEMO_MODE" = local ] && running_pid "agent-$host" >/dev/null; }; then
    say "The SPIRE Agent on $host ($td) is already running: nothing to do"
    continue
  fi
  say "Starting the SPIRE Agent on $host, bootstrapped with the $td bundle from $(server_name "$td")"
  if [ "$DEMO_MODE" = local ]; then start_local_agent "$td"; else start_docker_agent "$td"; fi
done

for td in "${TRUST_DOMAINS[@]}"; do
  if ! wait_for 90 "the agent on $(agent_host "$td") attested to $(server_name "$td") as $(agent_id "$td")" agent_healthy "$td"; then
    [ "$DEMO_MODE" = local ] && show_log_tail "agent-$(agent_host "$td")"
    die "the agent on $(agent_host "$td") did not become healthy within 90 s (see its log)"
  fi
done
if [ "$DEMO_MODE" = local ]; then
  # The workloads run as other users; they must reach the agents' sockets.
  chmod 755 "$(sockets_dir)"
fi
say "Both agents are running. Next: ./2-bootstrap-federation.sh"
