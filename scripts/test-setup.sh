#!/usr/bin/env bash
# The first part of `npm test`: installs what the tests need and is missing, so that the
# test command works on a fresh machine. Each part says what it does and how long it took;
# on a machine that has everything, it only checks (a few seconds).
#   - Debian packages: chromium (browser test), shellcheck (script lint), docker-compose v1,
#     and, where no container engine answers, podman, runc, debootstrap, iptables and the
#     CNI DNS plugin (Docker-mode test); installed with apt-get when run as root,
#     otherwise named for you to install;
#   - npm packages (npm ci) when node_modules is missing;
#   - SPIRE (the version in .env) in .spire/bin (scripts/install-spire.sh);
#   - the Docker compose plugin v2 when the docker CLI has none (scripts/install-compose-plugin.sh).
# SPIRE_DEMO_SKIP_DOCKER_TEST=1 leaves out what only the Docker-mode test needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

part_started=""
part() {
  local now
  now=$(date +%s)
  [ -z "$part_started" ] || echo "   (took $((now - part_started)) s)"
  part_started=$now
  [ $# -eq 0 ] || echo "== test set-up: $*"
}

docker_test=true
[ "${SPIRE_DEMO_SKIP_DOCKER_TEST:-}" != 1 ] || docker_test=false

part "Debian packages"
packages=(chromium shellcheck docker-compose)
if $docker_test && ! { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }; then
  # No engine answers: the Docker-mode test runs on podman (scripts/container-engine.sh),
  # with stand-in images made by debootstrap. Where an engine answers, it is used as it is.
  packages+=(podman runc debootstrap iptables golang-github-containernetworking-plugin-dnsname)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "   all there: ${packages[*]}"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "   installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "error: the tests need these Debian packages: ${missing[*]}" >&2
  echo "Install them (sudo apt-get install ${missing[*]}), or run npm test as root on Debian." >&2
  exit 1
fi

part "npm packages"
if [ -d node_modules ]; then echo "   node_modules is there"; else npm ci --no-audit --no-fund; fi

part "SPIRE $(sed -n 's/^SPIRE_VERSION=//p' .env) binaries"
scripts/install-spire.sh

if $docker_test; then
  part "Docker compose plugin v2 (the Docker-mode test uses both compose front ends)"
  scripts/install-compose-plugin.sh
fi
part
