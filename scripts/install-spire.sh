#!/usr/bin/env bash
# Provides spire-server and spire-agent in .spire/bin (git-ignored), at the version that
# .env names (SPIRE_VERSION) and tools/spire/go.mod pins.
# On Linux they are linked statically, like the official release binaries: the same two
# files then run in local mode and inside the FROM-scratch SPIRE images that
# scripts/build-offline-images.sh makes when the image registry cannot be reached.
# 1. binaries already there at the right version (and static on Linux): nothing to do;
# 2. Go installed and recent enough (tools/spire/go.mod): build them from the Go tool
#    module in tools/spire (pinned in go.mod/go.sum);
# 3. otherwise: download the official release archive and check its SHA-256 against
#    tools/spire/release-checksums.sha256 before unpacking.
# `--from go` or `--from release` forces one way. Safe to run again.
#
# For the tests only: SPIRE_INSTALL_TEST_RELEASE_URL replaces the release download URL's
# base (the folder that holds the archive) and SPIRE_INSTALL_TEST_RELEASE_SHA256 the
# expected checksum, so the download path can be tested against a local HTTP server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPIRE_VERSION="$(sed -n 's/^SPIRE_VERSION=//p' "$ROOT/.env")"
BIN_DIR="$ROOT/.spire/bin"
TOOL_MODULE="$ROOT/tools/spire"
CHECKSUMS="$TOOL_MODULE/release-checksums.sha256"
RELEASE_URL="https://github.com/spiffe/spire/releases/download/v$SPIRE_VERSION"
SPIRE_PACKAGES=(github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent)

say() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
die() {
  printf 'error: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit 1
}

usage() {
  cat <<USAGE
usage: scripts/install-spire.sh [--from auto|go|release]
Puts spire-server and spire-agent $SPIRE_VERSION into .spire/bin.
  auto     (default) build with Go if Go $(go_needed) or newer is installed, else download
           the official release archive
  go       build from the Go module in tools/spire (several minutes the first time)
  release  download spire-$SPIRE_VERSION-<os>-<arch>-musl.tar.gz from the SPIRE releases on
           GitHub and check its SHA-256 against tools/spire/release-checksums.sha256
Binaries already in .spire/bin at version $SPIRE_VERSION are kept: delete them to reinstall.
USAGE
}

go_needed() { sed -n 's/^go //p' "$TOOL_MODULE/go.mod"; }

FROM=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || die "--from needs a value: auto, go or release"; FROM="$2"; shift 2 ;;
    --from=*) FROM="${1#--from=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
case "$FROM" in
  auto | go | release) ;;
  *) die "unknown source '$FROM' for --from: use auto, go or release" ;;
esac

# ---------------------------------------------------------------- progress

# m:ss
clock() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }

PROGRESS_PID=""
# progress_start LABEL TOTAL COUNTER UNIT: until progress_stop, shows "LABEL: n/TOTAL UNIT
# (p %), m:ss" where n is what the COUNTER function prints. On a terminal the line is
# redrawn every second; without one (CI logs) a new line is printed at each further 10 %,
# or after 30 s without one. TOTAL 0 means unknown: then the count and time only.
progress_start() {
  local label="$1" total="$2" counter="$3" unit="$4"
  (
    local started=$SECONDS last_line=$SECONDS next_step=10 sleeper="" count pct line
    trap '[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM
    while :; do
      sleep 1 &
      sleeper=$!
      wait "$sleeper" || true
      sleeper=""
      # Gone with the script, even if it was killed too hard to clean up.
      kill -0 "$$" 2>/dev/null || exit 0
      count="$("$counter")"
      if [ "$total" -gt 0 ]; then
        # Never 100 % before the step has really finished.
        [ "$count" -lt "$total" ] || count=$((total - 1))
        pct=$((count * 100 / total))
        line="$label: $count/$total $unit ($pct %), $(clock $((SECONDS - started)))"
      else
        pct=0
        line="$label: $count $unit, $(clock $((SECONDS - started)))"
      fi
      if [ -t 1 ]; then
        printf '\r\033[K%s' "$line"
      elif [ "$pct" -ge "$next_step" ] || [ $((SECONDS - last_line)) -ge 30 ]; then
        printf '%s\n' "$line"
        last_line=$SECONDS
        while [ "$pct" -ge "$next_step" ]; do next_step=$((next_step + 10)); done
      fi
    done
  ) &
  PROGRESS_PID=$!
}

progress_stop() {
  [ -n "$PROGRESS_PID" ] || return 0
  kill "$PROGRESS_PID" 2>/dev/null || true
  wait "$PROGRESS_PID" 2>/dev/null || true
  PROGRESS_PID=""
  if [ -t 1 ]; then printf '\r\033[K'; fi
}

WORK_DIR=""
cleanup() {
  progress_stop
  if [ -n "$WORK_DIR" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- checks

# `spire-server --version` prints e.g. "X.Y.Z" (release) or "X.Y.Z-dev-unk" (built from the
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

check_installed() {
  local bin
  for bin in spire-server spire-agent; do
    if ! has_right_version "$bin"; then
      die "$BIN_DIR/$bin reports version '$(binary_version "$BIN_DIR/$bin" || true)', expected $SPIRE_VERSION (static on Linux)." \
        "$1"
    fi
  done
}

if has_right_version spire-server && has_right_version spire-agent; then
  say "SPIRE $SPIRE_VERSION is already installed in .spire/bin ($(binary_version "$BIN_DIR/spire-server"))."
  exit 0
fi

# Why Go cannot build SPIRE here, or nothing when it can.
go_problem() {
  if ! command -v go >/dev/null 2>&1; then
    echo "Go is not installed"
    return
  fi
  local have needed
  have="$(go env GOVERSION 2>/dev/null || true)"
  have="${have#go}"
  needed="$(go_needed)"
  if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$needed" "$have" | sort -V | head -n 1)" != "$needed" ]; then
    echo "Go ${have:-of unknown version} is older than the $needed that tools/spire/go.mod needs"
  fi
}

# ---------------------------------------------------------------- build with Go

# The module zips `go mod download` fetches: one go.sum line each (the lines without
# /go.mod), stored in the module cache under case-escaped paths (A -> !a).
expected_module_zips() {
  awk '
    function escape(s,   out, i, c) {
      out = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        out = out (c ~ /[A-Z]/ ? "!" tolower(c) : c)
      }
      return out
    }
    $2 !~ /\/go\.mod$/ { print escape($1) "/@v/" escape($2) ".zip" }
  ' "$TOOL_MODULE/go.sum"
}

count_downloaded() {
  local zip count=0
  while IFS= read -r zip; do
    if [ -f "$MODULE_CACHE/cache/download/$zip" ]; then count=$((count + 1)); fi
  done <"$WORK_DIR/module-zips"
  echo "$count"
}

# go install -v prints each package's import path when it compiles it; the linker's
# warnings are other lines, so only exact package paths count.
count_compiled() { grep -cxF -f "$WORK_DIR/packages" "$WORK_DIR/build.log" || true; }

build_with_go() {
  local start=$SECONDS build_flags=() total pinned
  pinned="$(sed -n 's#^[[:space:]]*github.com/spiffe/spire v\([^ ]*\).*#\1#p' "$TOOL_MODULE/go.mod")"
  [ "$pinned" = "$SPIRE_VERSION" ] ||
    die "tools/spire/go.mod pins SPIRE '${pinned:-nothing}', but .env says SPIRE_VERSION=$SPIRE_VERSION." \
      "Run in tools/spire: go get -tool github.com/spiffe/spire/cmd/spire-server@v$SPIRE_VERSION github.com/spiffe/spire/cmd/spire-agent@v$SPIRE_VERSION"
  WORK_DIR="$(mktemp -d)"
  mkdir -p "$BIN_DIR"
  say "Building SPIRE $SPIRE_VERSION (spire-server, spire-agent) from tools/spire with $(go env GOVERSION)."
  say "The first build downloads the modules and compiles for several minutes; later runs are cached."
  cd "$TOOL_MODULE"

  MODULE_CACHE="$(go env GOMODCACHE)"
  expected_module_zips >"$WORK_DIR/module-zips"
  # Only the modules the two commands import (about 320 of go.sum's 412). `go mod download`
  # would fetch every module's .info too, which the proxy refuses for some pseudo-versions
  # SPIRE pins (spire-plugin-sdk in 1.15), although it serves their source.
  echo "- downloading the modules that spire-server and spire-agent import (checked against tools/spire/go.sum)"
  progress_start "  downloading" 0 count_downloaded modules
  go list -deps "${SPIRE_PACKAGES[@]}" >/dev/null
  progress_stop
  echo "  modules ready after $(clock $((SECONDS - start)))"

  # cgo is needed for the sqlite data store. On Linux, netgo and osusergo keep the resolver
  # and user lookups in Go (no glibc NSS plugins to load), so glibc links statically; the
  # linker's warning about dlopen comes from sqlite's extension loading, which SPIRE never uses.
  if [ "$(uname -s)" = Linux ]; then
    echo "- compiling, statically linked (cgo is needed for the sqlite data store)"
    build_flags=(-tags 'netgo,osusergo' -ldflags '-s -w -linkmode external -extldflags "-static"')
  else
    echo "- compiling (cgo is needed for the sqlite data store)"
  fi
  # The packages this build will compile: those not already in Go's build cache.
  CGO_ENABLED=1 go list -deps ${build_flags[@]+"${build_flags[@]}"} \
    -f '{{if .Stale}}{{.ImportPath}}{{end}}' "${SPIRE_PACKAGES[@]}" >"$WORK_DIR/packages"
  total="$(grep -c . "$WORK_DIR/packages" || true)"
  : >"$WORK_DIR/build.log"
  progress_start "  compiling" "$total" count_compiled packages
  if ! CGO_ENABLED=1 GOBIN="$BIN_DIR" go install -v ${build_flags[@]+"${build_flags[@]}"} \
    "${SPIRE_PACKAGES[@]}" 2>"$WORK_DIR/build.log"; then
    progress_stop
    echo "The build failed; the last lines of its output:" >&2
    tail -n 30 "$WORK_DIR/build.log" >&2
    die "go install of SPIRE $SPIRE_VERSION failed (output above)." \
      "Or skip the build: scripts/install-spire.sh --from release"
  fi
  progress_stop
  echo "  compiled $(count_compiled) packages; the rest came from Go's build cache"
  check_installed "Check the version pinned in tools/spire/go.mod."
  say "SPIRE $SPIRE_VERSION built and installed in .spire/bin in $(clock $((SECONDS - start))) (m:ss)."
}

# ---------------------------------------------------------------- official release archive

# The release archive's platform part, e.g. linux-amd64-musl; fails on other platforms.
release_platform() {
  local os arch
  os="$(uname -s)"
  arch="$(uname -m)"
  case "$os" in
    Linux) ;;
    Darwin)
      die "SPIRE publishes no release archive for macOS (only Linux amd64/arm64 and Windows)." \
        "Install Go $(go_needed) or newer and run scripts/install-spire.sh --from go," \
        "or use Docker mode (README, \"Docker mode\"), which runs the Linux images."
      ;;
    *) die "no SPIRE release archive for the operating system '$os' (SPIRE publishes Linux amd64/arm64 archives)." \
      "Install Go $(go_needed) or newer and run scripts/install-spire.sh --from go." ;;
  esac
  case "$arch" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no SPIRE release archive for the processor '$arch' (SPIRE publishes Linux amd64 and arm64 archives)." \
      "Install Go $(go_needed) or newer and run scripts/install-spire.sh --from go." ;;
  esac
  echo "linux-$arch-musl"
}

# The SHA-256 committed for ARCHIVE (a line "<hex>  <archive>", as in SPIRE's
# spire-<version>-<platform>_sha256sum.txt files), or nothing.
committed_checksum() {
  [ -f "$CHECKSUMS" ] || return 0
  awk -v name="$1" '$1 !~ /^#/ && ($2 == name || $2 == "*" name) { print tolower($1); exit }' "$CHECKSUMS"
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

file_size() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo 0; fi; }
downloaded_mib() { echo $(($(file_size "$WORK_DIR/archive.tar.gz") / 1048576)); }

# Says in plain words why curl failed (its exit code) and what to do.
download_failed() {
  local code="$1" url="$2" reason
  case "$code" in
    5 | 6) reason="the host name cannot be resolved (no network, or no DNS)" ;;
    7) reason="no connection to the server (no network, a firewall, or the server is down)" ;;
    22) reason="the server answered with an HTTP error: $(cat "$WORK_DIR/curl.err" 2>/dev/null || true)" ;;
    28) reason="the download timed out" ;;
    35 | 51 | 58 | 60) reason="the TLS connection failed (a proxy that intercepts TLS?)" ;;
    *) reason="curl failed with exit code $code: $(cat "$WORK_DIR/curl.err" 2>/dev/null || true)" ;;
  esac
  die "cannot download $url: $reason." \
    "Without network access to GitHub, either install Go $(go_needed) or newer (the build needs" \
    "only the Go module proxy) and run scripts/install-spire.sh --from go, or copy" \
    "bin/spire-server and bin/spire-agent from the archive, fetched elsewhere, into $BIN_DIR."
}

install_from_release() {
  local start=$SECONDS platform archive url expected expected_from actual total code=0 bin
  platform="$(release_platform)"
  archive="spire-$SPIRE_VERSION-$platform.tar.gz"
  url="${SPIRE_INSTALL_TEST_RELEASE_URL:-$RELEASE_URL}/$archive"
  expected="$(committed_checksum "$archive")"
  expected_from="tools/spire/release-checksums.sha256"
  if [ -n "${SPIRE_INSTALL_TEST_RELEASE_SHA256:-}" ]; then
    expected="$SPIRE_INSTALL_TEST_RELEASE_SHA256"
    expected_from="SPIRE_INSTALL_TEST_RELEASE_SHA256 (tests only)"
  fi
  if ! [[ "$expected" =~ ^[0-9a-f]{64}$ ]]; then
    die "no SHA-256 for $archive in tools/spire/release-checksums.sha256, so it cannot be checked." \
      "Add the line from spire-$SPIRE_VERSION-${platform}_sha256sum.txt, published next to the archive" \
      "on https://github.com/spiffe/spire/releases/tag/v$SPIRE_VERSION, to that file," \
      "or build SPIRE with Go instead: scripts/install-spire.sh --from go"
  fi
  command -v curl >/dev/null 2>&1 || die "curl is needed to download $archive." "Install curl, or build with Go: scripts/install-spire.sh --from go"
  command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1 ||
    die "sha256sum (or shasum) is needed to check $archive." "Install coreutils."

  WORK_DIR="$(mktemp -d)"
  say "Downloading the official SPIRE $SPIRE_VERSION release archive $archive."
  echo "- from $url"
  # The size first: for the progress line, and a quick, clear failure without network.
  curl -sSfLI --connect-timeout 15 --max-time 60 -o "$WORK_DIR/headers" "$url" 2>"$WORK_DIR/curl.err" || code=$?
  [ "$code" -eq 0 ] || download_failed "$code" "$url"
  total="$(tr -d '\r' <"$WORK_DIR/headers" | awk 'tolower($1) == "content-length:" { size = $2 } END { print size + 0 }')"
  progress_start "  downloading" "$((total / 1048576))" downloaded_mib MiB
  curl -sSfL --connect-timeout 15 --retry 2 -o "$WORK_DIR/archive.tar.gz" "$url" 2>"$WORK_DIR/curl.err" || code=$?
  progress_stop
  [ "$code" -eq 0 ] || download_failed "$code" "$url"
  echo "  downloaded $(($(file_size "$WORK_DIR/archive.tar.gz") / 1024)) KiB in $(clock $((SECONDS - start)))"

  actual="$(sha256_of "$WORK_DIR/archive.tar.gz")"
  if [ "$actual" != "$expected" ]; then
    die "checksum mismatch for $archive: it is not the archive the project recorded, so it was not unpacked." \
      "expected SHA-256 $expected" \
      "got      SHA-256 $actual" \
      "Run the script again (a download can be cut short); if it persists, do not use that archive."
  fi
  echo "- SHA-256 $actual matches $expected_from"

  mkdir -p "$WORK_DIR/unpacked" "$BIN_DIR"
  if ! tar -xzf "$WORK_DIR/archive.tar.gz" -C "$WORK_DIR/unpacked" \
    "spire-$SPIRE_VERSION/bin/spire-server" "spire-$SPIRE_VERSION/bin/spire-agent" 2>"$WORK_DIR/tar.err"; then
    die "$archive does not hold spire-$SPIRE_VERSION/bin/spire-server and spire-agent: $(head -n 3 "$WORK_DIR/tar.err")"
  fi
  for bin in spire-server spire-agent; do
    # Copy, then rename: a reader never sees a half-written binary.
    cp "$WORK_DIR/unpacked/spire-$SPIRE_VERSION/bin/$bin" "$BIN_DIR/.$bin.new"
    chmod 755 "$BIN_DIR/.$bin.new"
    mv -f "$BIN_DIR/.$bin.new" "$BIN_DIR/$bin"
  done
  check_installed "The archive did not hold SPIRE $SPIRE_VERSION."
  say "SPIRE $SPIRE_VERSION installed in .spire/bin from the release archive in $(clock $((SECONDS - start))) (m:ss)."
}

# ---------------------------------------------------------------- choose

case "$FROM" in
  go)
    problem="$(go_problem)"
    if [ -n "$problem" ]; then
      die "$problem, so SPIRE cannot be built here." \
        "Install Go $(go_needed) or newer, or use the official release: scripts/install-spire.sh --from release"
    fi
    build_with_go
    ;;
  release) install_from_release ;;
  auto)
    problem="$(go_problem)"
    if [ -z "$problem" ]; then
      build_with_go
    else
      say "$problem: using the official release archive instead of building SPIRE."
      install_from_release
    fi
    ;;
esac
