#!/usr/bin/env bash
# Tutorial: "Build". Compiles the TypeScript, makes the agent certificates for x509pop
# node attestation and, in Docker mode, builds the images of docker-compose.yml.
# Usage: ./build.sh [--mode local|docker]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"
demo_init "$@"
cd "$DEMO_ROOT"

say "Compiling the TypeScript (npm run build)"
[ -d node_modules ] || die "node_modules is missing: run npm ci first"
npm run --silent build

scripts/make-agent-certs.sh --mode "$DEMO_MODE"

if [ "$DEMO_MODE" = docker ]; then
  say "Building the images (docker compose build)"
  compose build
fi
say "Build done"
