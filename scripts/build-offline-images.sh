#!/usr/bin/env bash
# Docker mode without an image registry (air-gapped machines, or CI machines that reach
# only package registries): builds local stand-ins for the three upstream images that
# docker-compose.yml and docker/workload.Dockerfile use, tagged with the official names so
# that compose never pulls:
#   ghcr.io/spiffe/spire-server:<SPIRE_VERSION of .env>  FROM scratch, static spire-server from .spire/bin
#   ghcr.io/spiffe/spire-agent:<SPIRE_VERSION of .env>   FROM scratch, static spire-agent from .spire/bin
#   node:20-bookworm-slim               Debian bookworm (debootstrap) + this machine's Node 20
# The SPIRE stand-ins are laid out like the official images (no shell, same paths, user and
# entry point), so anything that would break in the real images breaks in them too.
# An image that already exists is kept unless --force is given.
# Needs: a container engine (scripts/container-engine.sh), Linux, SPIRE built
# statically (scripts/install-spire.sh), and for the Node image root, debootstrap and Node 20.
# Usage: scripts/build-offline-images.sh [--force] [--mode docker]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FORCE=false
args=()
for arg in "$@"; do
  if [ "$arg" = --force ]; then FORCE=true; else args+=("$arg"); fi
done
demo_init --mode docker ${args[@]+"${args[@]}"}
[ "$DEMO_MODE" = docker ] || die "the offline images are for Docker mode only"

SERVER_IMAGE="ghcr.io/spiffe/spire-server:$SPIRE_VERSION"
AGENT_IMAGE="ghcr.io/spiffe/spire-agent:$SPIRE_VERSION"
NODE_IMAGE="node:20-bookworm-slim"
WORK="$DEMO_DATA/offline-images"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# docker_build TAG CONTEXT: the docker CLI uses BuildKit (buildx) when it has it; podman's
# Docker API and older engines take the classic builder. Output goes to a log, shown on failure.
docker_build() {
  local log="$WORK/build.log" builder=()
  docker buildx version >/dev/null 2>&1 || builder=(env DOCKER_BUILDKIT=0)
  ${builder[@]+"${builder[@]}"} docker build --build-arg "SPIRE_VERSION=$SPIRE_VERSION" -t "$1" "$2" >"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; die "building $1 failed"; }
}

needed() {
  if image_exists "$1" && ! $FORCE; then
    note "$1 is already here: kept (--force rebuilds it)"
    return 1
  fi
}

build_spire_image() {
  local component="$1" image="$2" context="$WORK/spire-$1"
  needed "$image" || return 0
  say "Building the stand-in for $image (FROM scratch, static spire-$component)"
  local bin="$SPIRE_BIN/spire-$component"
  [ -x "$bin" ] || die "$bin is missing: run scripts/install-spire.sh first"
  ldd "$bin" >/dev/null 2>&1 &&
    die "$bin is linked dynamically and cannot run FROM scratch: remove .spire/bin and run scripts/install-spire.sh, which builds it statically"
  rm -rf "$context"
  mkdir -p "$context"
  cp "$bin" "$context/"
  cp /etc/ssl/certs/ca-certificates.crt "$context/" 2>/dev/null ||
    die "no /etc/ssl/certs/ca-certificates.crt to put in the image (apt-get install ca-certificates)"
  cp "$DEMO_ROOT/docker/offline/spire-$component.Dockerfile" "$context/Dockerfile"
  # The official image's empty folders.
  local root="$context/$component-root"
  mkdir -p "$root/etc/spire/$component" "$root/var/lib/spire/$component"
  if [ "$component" = server ]; then
    mkdir -p "$root/run/spire/server/private" "$root/tmp/spire-server/private"
  else
    mkdir -p "$root/run/spire/agent/public" "$root/tmp/spire-agent/public"
  fi
  docker_build "$image" "$context"
  rm -rf "$context"
}

debian_mirror() {
  local mirror
  mirror="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)"
  [ -n "$mirror" ] || mirror="$(sed -n 's/^deb  *\(http[^ ]*\) .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n 1)"
  echo "${DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}"
}

build_node_image() {
  needed "$NODE_IMAGE" || return 0
  say "Building the stand-in for $NODE_IMAGE (Debian bookworm + this machine's Node 20)"
  [ "$(id -u)" -eq 0 ] || die "making a Debian root file system needs root (debootstrap, chroot)"
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is needed for the Node stand-in: apt-get install debootstrap"
  local node npm_dir version rootfs context="$WORK/node"
  node="$(readlink -f "$(command -v node)")"
  version="$("$node" --version)"
  [[ "$version" == v20.* ]] || die "the stand-in carries this machine's Node, which must be Node 20 (found $version)"
  npm_dir="$(npm prefix -g)/lib/node_modules/npm"
  [ -f "$npm_dir/bin/npm-cli.js" ] || die "npm is not at $npm_dir"
  rm -rf "$context"
  mkdir -p "$context"
  rootfs="$(mktemp -d "$WORK/rootfs.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the folder is this call's
  trap "rm -rf '$rootfs'" EXIT
  note "debootstrap --variant=minbase bookworm from $(debian_mirror) (about a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" "$(debian_mirror)" >"$WORK/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see ${WORK#"$DEMO_ROOT"/}/debootstrap.log (set DEBIAN_MIRROR to a reachable Debian mirror)"
  note "adding Node $version and npm $("$node" "$npm_dir/bin/npm-cli.js" --version) in /usr/local, and the node user (uid 1000)"
  install -D -m 0755 "$node" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$context/rootfs.tar" .
  rm -rf "$rootfs"
  trap - EXIT
  cp "$DEMO_ROOT/docker/offline/node.Dockerfile" "$context/Dockerfile"
  docker_build "$NODE_IMAGE" "$context"
  rm -rf "$context"
}

[ "$(uname -s)" = Linux ] || die "the stand-ins are built from this machine's Linux binaries"
mkdir -p "$WORK"
started=$(date +%s)
build_spire_image server "$SERVER_IMAGE"
build_spire_image agent "$AGENT_IMAGE"
build_node_image
say "Offline images ready in $(($(date +%s) - started)) s: $SERVER_IMAGE, $AGENT_IMAGE, $NODE_IMAGE"
