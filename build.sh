#!/usr/bin/env bash
# Tutorial: "Build". Compiles the TypeScript, makes the agent certificates for x509pop
# node attestation and the demo Web PKI for --profile https_web and, in Docker mode, builds
# the images of docker-compose.yml.
# Usage: ./build.sh [--mode local|docker] [--build-ca FILE]
#   --build-ca FILE  (or SPIRE_DEMO_BUILD_CA=FILE) Docker mode: a PEM bundle of CAs that
#                    `npm ci` in the image build trusts besides Node's own, for builds
#                    behind a TLS-intercepting proxy; it never reaches the images
#                    (docker/build-ca/). Default: the CA bundle this host's npm trusts (npm's
#                    cafile, else the system bundle), so a build behind the proxy the host
#                    already trusts just works. `--build-ca none` hands over nothing.
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
# The CA bundle that npm on this host trusts: its cafile setting, else the system bundle.
host_ca_bundle() {
  local file
  file="$(npm config get cafile 2>/dev/null || true)"
  case "$file" in "" | null | undefined) file="" ;; esac
  for file in "$file" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    if [ -n "$file" ] && [ -r "$file" ]; then
      echo "$file"
      return 0
    fi
  done
}

BUILD_CA_FROM="--build-ca"
if [ "$BUILD_CA" = none ]; then
  BUILD_CA=""
elif [ -z "$BUILD_CA" ] && [ "$DEMO_MODE" = docker ]; then
  BUILD_CA="$(host_ca_bundle)"
  BUILD_CA_FROM="this host's trust (--build-ca none: do not hand it over)"
elif [ -n "$BUILD_CA" ]; then
  [ "$DEMO_MODE" = docker ] || die "--build-ca is for the image build of Docker mode (--mode docker)"
fi
if [ -n "$BUILD_CA" ]; then
  if [ ! -f "$BUILD_CA" ] || [ ! -r "$BUILD_CA" ]; then die "--build-ca $BUILD_CA: no such readable file"; fi
  grep -q -- "-----BEGIN CERTIFICATE-----" "$BUILD_CA" ||
    die "--build-ca $BUILD_CA holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
fi

say "Compiling the TypeScript (npm run build)"
[ -d node_modules ] || die "node_modules is missing: run npm ci first"
npm run --silent build

scripts/make-agent-certs.sh --mode "$DEMO_MODE"
scripts/make-web-pki.sh --mode "$DEMO_MODE"

if [ "$DEMO_MODE" = docker ]; then
  say "Building the images ($(compose_name) build)"
  if [ -n "$BUILD_CA" ]; then
    extra_ca="$DEMO_ROOT/docker/build-ca/extra-ca.pem"
    cp "$BUILD_CA" "$extra_ca"
    # shellcheck disable=SC2064 # the path is fixed now
    trap "rm -f '$extra_ca'" EXIT
    note "npm ci in the image build trusts the CAs in $BUILD_CA, from $BUILD_CA_FROM (not kept in the images)"
  fi
  if [ "$(compose_name)" = "docker compose" ] && ! docker buildx version >/dev/null 2>&1; then
    # Without buildx, compose v2 would start a BuildKit container from an image it must pull.
    note "the docker CLI has no buildx: docker compose uses the classic builder (DOCKER_BUILDKIT=0)"
    export DOCKER_BUILDKIT=0
  fi
  build_log="$DEMO_DATA/image-build.log"
  mkdir -p "$DEMO_DATA"
  if ! compose build 2>&1 | tee "$build_log"; then
    # npm's error codes when it does not trust the registry's certificate chain.
    if grep -qE 'SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_UNTRUSTED|DEPTH_ZERO_SELF_SIGNED_CERT' "$build_log"; then
      if [ -n "$BUILD_CA" ]; then
        handed="The build trusted $BUILD_CA (from $BUILD_CA_FROM), which does not hold the CA that signed it."
      else
        handed="No CA bundle was handed to the build."
      fi
      die "npm ci inside the image build does not trust the TLS certificate of the npm registry (a TLS-intercepting proxy between this machine and the registry?). $handed
    Fix: ./build.sh --mode docker --build-ca /path/to/proxy-ca.pem (or SPIRE_DEMO_BUILD_CA=/path/to/proxy-ca.pem), with the PEM bundle of the proxy's CA.
    The full build output is in $build_log"
    fi
    die "$(compose_name) build failed (output above, also in $build_log)"
  fi
fi
say "Build done"
