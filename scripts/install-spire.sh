#!/usr/bin/env bash
# Provides spire-server and spire-agent v1.13.3 in .spire/bin (git-ignored).
# On Linux they are linked statically, like the official release binaries: the same two
# files then run in local mode and inside the FROM-scratch SPIRE images that
# scripts/build-offline-images.sh makes when the image registry cannot be reached.
# 1. binaries already there at the right version (and static on Linux): nothing to do;
# 2. Go available: build them from the Go tool module in tools/spire (pinned in go.mod/go.sum);
# 3. otherwise: stop and say how to get them.
# Safe to run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPIRE_VERSION="1.13.3"
BIN_DIR="$ROOT/.spire/bin"
TOOL_MODULE="$ROOT/tools/spire"

say() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

# `spire-server --version` prints e.g. "1.13.3" (release) or "1.13.3-dev-unk" (built from the
# module proxy, which carries no VCS data) on stderr.
binary_version() { "$1" --version 2>&1 | head -n 1; }

# ldd fails on a static executable ("not a dynamic executable").
is_static() { [ "$(uname -s)" != Linux ] || ! ldd "$1" >/dev/null 2>&1; }

has_right_version() {
  local bin="$BIN_DIR/$1"
  [ -x "$bin" ] || return 1
  case "$(binary_version "$bin")" in
    "$SPIRE_VERSION" | "$SPIRE_VERSION"-*) is_static "$bin" ;;
    *) return 1 ;;
  esac
}

if has_right_version spire-server && has_right_version spire-agent; then
  say "SPIRE $SPIRE_VERSION is already installed in .spire/bin ($(binary_version "$BIN_DIR/spire-server"))."
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  GO_NEEDED="$(sed -n 's/^go //p' "$TOOL_MODULE/go.mod")"
  cat >&2 <<MSG
SPIRE $SPIRE_VERSION binaries are missing from $BIN_DIR and Go is not installed.
Get them one of two ways:
  1. Install Go ($GO_NEEDED or newer) and run this script again: it builds spire-server and
     spire-agent from the Go module pinned in tools/spire (takes a few minutes).
  2. Download the official release archive spire-$SPIRE_VERSION-linux-amd64-musl.tar.gz from
     the SPIRE project's GitHub releases page and copy bin/spire-server and bin/spire-agent
     from it into $BIN_DIR.
MSG
  exit 1
fi

mkdir -p "$BIN_DIR"
say "Building SPIRE $SPIRE_VERSION (spire-server, spire-agent) from tools/spire with $(go version | cut -d' ' -f3)."
say "The first build downloads the modules and compiles for several minutes; later runs are cached."
start=$(date +%s)
(
  cd "$TOOL_MODULE"
  echo "- downloading modules listed in tools/spire/go.sum"
  go mod download
  # cgo is needed for the sqlite data store. On Linux, netgo and osusergo keep the resolver
  # and user lookups in Go (no glibc NSS plugins to load), so glibc links statically; the
  # linker's warning about dlopen comes from sqlite's extension loading, which SPIRE never uses.
  build_flags=()
  if [ "$(uname -s)" = Linux ]; then
    echo "- compiling, statically linked (cgo is needed for the sqlite data store)"
    build_flags=(-tags 'netgo,osusergo' -ldflags '-s -w -linkmode external -extldflags "-static"')
  else
    echo "- compiling (cgo is needed for the sqlite data store)"
  fi
  CGO_ENABLED=1 GOBIN="$BIN_DIR" go install ${build_flags[@]+"${build_flags[@]}"} \
    github.com/spiffe/spire/cmd/spire-server \
    github.com/spiffe/spire/cmd/spire-agent
)
for bin in spire-server spire-agent; do
  if ! has_right_version "$bin"; then
    echo "error: $BIN_DIR/$bin reports version '$(binary_version "$BIN_DIR/$bin" || true)', expected $SPIRE_VERSION (static on Linux)." >&2
    echo "Check the version pinned in tools/spire/go.mod." >&2
    exit 1
  fi
done
say "SPIRE $SPIRE_VERSION installed in .spire/bin in $(($(date +%s) - start)) s."
