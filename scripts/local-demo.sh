#!/usr/bin/env bash
# `npm start`: the whole tutorial on this machine, without Docker. Installs what is
# missing, builds, starts both SPIRE Servers, runs steps 1-2-3, starts both services,
# then waits. Ctrl-C (or `npm run stop` from another shell) stops everything it started.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
demo_init --mode local "$@"
cd "$DEMO_ROOT"

for name in broker-webapp stock-quotes-service agent-broker-webapp agent-stock-quotes-service \
  spire-server-broker spire-server-stocks; do
  if pid="$(running_pid "$name")"; then
    die "a demo is already running ($name, pid $pid): open http://localhost:8080/quotes, or stop it with npm run stop"
  fi
done

stop_all() {
  trap - INT TERM EXIT
  echo
  scripts/stop.sh --mode local || true
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -d node_modules ]; then
  say "Installing the npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
scripts/install-spire.sh
./build.sh --mode local
scripts/start-servers.sh --mode local
./1-start-spire-agents.sh --mode local
./2-bootstrap-federation.sh --mode local
./3-create-registration-entries.sh --mode local
scripts/start-services.sh --mode local

say "open http://localhost:8080/quotes ($DEMO_AUTH road: $([ "$DEMO_AUTH" = jwt ] && echo "TLS + JWT-SVID bearer token" || echo "SPIFFE mTLS"))"
note "logs: .data/logs/   stop: Ctrl-C here, or npm run stop from another shell"
note "beyond the tutorial: ./4-rotate-ca.sh in another shell rotates a CA while the page keeps working"
# Stay in the foreground while the webapp runs; `npm run stop` elsewhere ends this too.
while running_pid broker-webapp >/dev/null; do sleep 1; done
note "broker-webapp has stopped"
