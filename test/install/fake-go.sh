#!/usr/bin/env bash
# A stand-in for `go` in the install-spire.sh tests: it answers the few commands the script
# runs, compiles nothing, and "builds" SPIRE in seconds instead of minutes. Every call is
# appended to $FAKE_GO_LOG, one argument per line after a "--- call" line.
# FAKE_GO_PACKAGES: how many packages it pretends to compile (default 200), one every
# FAKE_GO_DELAY seconds (default 0.02).
set -euo pipefail
{
  echo "--- call"
  printf '%s\n' "$@"
} >>"${FAKE_GO_LOG:-/dev/null}"

packages="${FAKE_GO_PACKAGES:-200}"
package_names() { for i in $(seq 1 "$packages"); do printf 'example.com/fake/pkg%03d\n' "$i"; done; }

case "$1 ${2:-}" in
  "env GOVERSION") echo "${FAKE_GO_VERSION:-go1.26.8}" ;;
  "env GOMODCACHE") echo "$FAKE_GO_MODCACHE" ;;
  "mod download") sleep 0.5 ;;
  "list -deps") package_names ;;
  "install -v")
    for name in $(package_names); do
      echo "$name" >&2
      sleep "${FAKE_GO_DELAY:-0.02}"
    done
    # What the real static link prints, which must not count as packages.
    echo "# github.com/spiffe/spire/cmd/spire-server" >&2
    echo "/usr/bin/ld: warning: Using 'dlopen' in statically linked applications" >&2
    # What a build from the module proxy reports: the version .env names, plus "-dev-unk".
    # go runs in tools/spire, two folders below the root.
    version="$(sed -n 's/^SPIRE_VERSION=//p' ../../.env)"
    for bin in spire-server spire-agent; do
      printf '#!/bin/sh\necho %s-dev-unk >&2\n' "$version" >"$GOBIN/$bin"
      chmod 755 "$GOBIN/$bin"
    done
    ;;
  "version "*) echo "go version ${FAKE_GO_VERSION:-go1.26.8} linux/amd64" ;;
  *)
    echo "fake go: unexpected command: go $*" >&2
    exit 2
    ;;
esac
