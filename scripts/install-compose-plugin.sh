#!/usr/bin/env bash
# Installs the Docker compose plugin v2 (`docker compose`) for the docker CLI, built from
# the Go module pinned in tools/compose (go.mod, go.sum), for machines whose Docker CLI has
# no compose plugin (Docker Desktop and Docker's own packages already have one). The tests
# run Docker mode with both compose front ends, this one and docker-compose v1.
# Installs into ${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose. Safe to run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOL_MODULE="$ROOT/tools/compose"
VERSION="$(sed -n 's/^\tgithub.com\/docker\/compose\/v2 \(v[^ ]*\).*/\1/p' "$TOOL_MODULE/go.mod")"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

say() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

[ -n "$VERSION" ] || { echo "error: no github.com/docker/compose/v2 version in $TOOL_MODULE/go.mod" >&2; exit 1; }
if docker compose version >/dev/null 2>&1; then
  say "The docker CLI already has a compose plugin ($(docker compose version)): nothing to do."
  exit 0
fi
command -v go >/dev/null 2>&1 || {
  echo "error: building the compose plugin needs Go ($(sed -n 's/^go //p' "$TOOL_MODULE/go.mod") or newer); or install Docker's docker-compose-plugin package" >&2
  exit 1
}
say "Building the Docker compose plugin $VERSION from tools/compose (a few minutes the first time)."
start=$(date +%s)
mkdir -p "$PLUGIN_DIR"
(
  cd "$TOOL_MODULE"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$VERSION" \
    -o "$PLUGIN_DIR/docker-compose" github.com/docker/compose/v2/cmd
)
docker compose version >/dev/null || { echo "error: the docker CLI does not find the plugin in $PLUGIN_DIR" >&2; exit 1; }
say "$(docker compose version) installed in $PLUGIN_DIR in $(($(date +%s) - start)) s."
