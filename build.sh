#!/usr/bin/env bash
# Tutorial: "Build". Compiles the TypeScript, makes the agent certificates for x509pop
# node attestation and, in Docker mode, builds the images of docker-compose.yml.
# Usage: ./build.sh [--mode local|docker] [--build-ca FILE]
#   --build-ca FILE  (or SPIRE_DEMO_BUILD_CA=FILE) Docker mode: a PEM bundle of extra CAs
#                    that `npm ci` in the image build must trust, for builds behind a
#                    TLS-intercepting proxy; it never reaches the images (docker/build-ca/).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib.sh"

BUILD_CA="${SPIRE_DEMO_BUILD_CA:-}"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-ca) [ $# -ge 2 ] || die "--build-ca needs a file: a PEM bundle of CA certificates"; BUILD_CA="$2"; shift 2 ;;
    --build-ca=*) BUILD_CA="${1#--build-ca=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
demo_init ${args[@]+"${args[@]}"}
cd "$DEMO_ROOT"
if [ -n "$BUILD_CA" ]; then
  [ "$DEMO_MODE" = docker ] || die "--build-ca is for the image build of Docker mode (--mode docker)"
  if [ ! -f "$BUILD_CA" ] || [ ! -r "$BUILD_CA" ]; then die "--build-ca $BUILD_CA: no such readable file"; fi
  grep -q -- "-----BEGIN CERTIFICATE-----" "$BUILD_CA" ||
    die "--build-ca $BUILD_CA holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
fi

say "Compiling the TypeScript (npm run build)"
[ -d node_modules ] || die "node_modules is missing: run npm ci first"
npm run --silent build

scripts/make-agent-certs.sh --mode "$DEMO_MODE"

if [ "$DEMO_MODE" = docker ]; then
  say "Building the images ($(compose_name) build)"
  if [ -n "$BUILD_CA" ]; then
    extra_ca="$DEMO_ROOT/docker/build-ca/extra-ca.pem"
    cp "$BUILD_CA" "$extra_ca"
    # shellcheck disable=SC2064 # the path is fixed now
    trap "rm -f '$extra_ca'" EXIT
    note "npm ci in the image build trusts the extra CAs in $BUILD_CA (not kept in the images)"
  fi
  if [ "$(compose_name)" = "docker compose" ] && ! docker buildx version >/dev/null 2>&1; then
    # Without buildx, compose v2 would start a BuildKit container from an image it must pull.
    note "the docker CLI has no buildx: docker compose uses the classic builder (DOCKER_BUILDKIT=0)"
    export DOCKER_BUILDKIT=0
  fi
  compose build
fi
say "Build done"
