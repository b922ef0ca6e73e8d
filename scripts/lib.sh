# shellcheck shell=bash
# Some variables here are only used by the scripts that source this file.
# shellcheck disable=SC2034
# Shared by build.sh, the three numbered scripts and scripts/*.sh: names, paths, output,
# and the two ways of reaching SPIRE (local processes or `docker compose exec`).
# Usage: source it, then call `demo_init "$@"`.
#
# Mode: `--mode local|docker` on the command line, else $SPIRE_DEMO_MODE, else local.
# Profile: `--profile https_spiffe|https_web` (or $SPIRE_DEMO_PROFILE), how the bundle endpoints
# authenticate; federation: `--federation config|api` (or $SPIRE_DEMO_FEDERATION), where the
# relationships are declared. The defaults are the tutorial's: https_spiffe, config.

DEMO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DATA="$DEMO_ROOT/.data"
SPIRE_BIN="$DEMO_ROOT/.spire/bin"
COMPOSE_FILE="$DEMO_ROOT/docker-compose.yml"
# The SPIRE release, named once in .env (compose reads that file for the image tags too).
SPIRE_VERSION="$(sed -n 's/^SPIRE_VERSION=//p' "$DEMO_ROOT/.env")"
export SPIRE_VERSION
TRUST_DOMAINS=(broker.org stocksmarket.org)
DEMO_MODE="${SPIRE_DEMO_MODE:-local}"
DEMO_PROFILE="${SPIRE_DEMO_PROFILE:-https_spiffe}"
DEMO_FEDERATION="${SPIRE_DEMO_FEDERATION:-config}"
DEMO_AUTH="${SPIRE_DEMO_AUTH:-mtls}"

# Paths inside the containers (docker-compose.yml sets the same values).
DOCKER_SERVER_SOCKET="/tmp/spire-server/private/api.sock"
DOCKER_AGENT_SOCKET="/tmp/agent.sock"
DOCKER_AGENT_BOOTSTRAP="/opt/spire/conf/agent/bootstrap.crt"

# ---------------------------------------------------------------- output

if [ -t 1 ]; then
  _BOLD=$'\033[1m' _RESET=$'\033[0m'
else
  _BOLD="" _RESET=""
fi

# A step the reader should see (bold on a terminal).
say() { printf '%s==> %s%s\n' "$_BOLD" "$*" "$_RESET"; }
# Detail under a step.
note() { printf '    %s\n' "$*"; }
warn() { printf '%sWARNING: %s%s\n' "$_BOLD" "$*" "$_RESET" >&2; }
die() {
  printf '%sERROR: %s%s\n' "$_BOLD" "$*" "$_RESET" >&2
  exit 1
}

# ---------------------------------------------------------------- arguments

demo_init() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --mode) [ $# -ge 2 ] || die "--mode needs a value: local or docker"; DEMO_MODE="$2"; shift 2 ;;
      --mode=*) DEMO_MODE="${1#--mode=}"; shift ;;
      --profile) [ $# -ge 2 ] || die "--profile needs a value: https_spiffe or https_web"; DEMO_PROFILE="$2"; shift 2 ;;
      --profile=*) DEMO_PROFILE="${1#--profile=}"; shift ;;
      --federation) [ $# -ge 2 ] || die "--federation needs a value: config or api"; DEMO_FEDERATION="$2"; shift 2 ;;
      --federation=*) DEMO_FEDERATION="${1#--federation=}"; shift ;;
      --auth) [ $# -ge 2 ] || die "--auth needs a value: mtls or jwt"; DEMO_AUTH="$2"; shift 2 ;;
      --auth=*) DEMO_AUTH="${1#--auth=}"; shift ;;
      -h | --help)
        printf 'usage: %s %s\n' "$(basename "$0")" "$DEMO_USAGE"
        printf '  --mode local      (default) SPIRE and the services run as processes on this machine\n'
        printf '  --mode docker     SPIRE and the services run in the containers of docker-compose.yml\n'
        printf '  --profile https_spiffe  (default) bundle endpoints authenticate with SPIFFE (bootstrap in step 2)\n'
        printf '  --profile https_web     bundle endpoints present a Web PKI certificate (no bootstrap)\n'
        printf '  --federation config     (default) federates_with in the server configs\n'
        printf '  --federation api        step 2 creates the relationships (spire-server federation create)\n'
        printf '  --auth mtls       (default) the webapp authenticates with its X.509-SVID (mutual TLS)\n'
        printf '  --auth jwt        the webapp sends a JWT-SVID over TLS that authenticates the quotes service\n'
        printf 'Also: SPIRE_DEMO_MODE, SPIRE_DEMO_PROFILE, SPIRE_DEMO_FEDERATION, SPIRE_DEMO_AUTH.\n'
        exit 0
        ;;
      *) die "unknown argument '$1' (usage: $(basename "$0") $DEMO_USAGE)" ;;
    esac
  done
  case "$DEMO_MODE" in
    local | docker) ;;
    *) die "unknown mode '$DEMO_MODE': use --mode local or --mode docker (or SPIRE_DEMO_MODE)" ;;
  esac
  case "$DEMO_PROFILE" in
    https_spiffe | https_web) ;;
    *) die "unknown profile '$DEMO_PROFILE': use --profile https_spiffe or --profile https_web (or SPIRE_DEMO_PROFILE)" ;;
  esac
  case "$DEMO_FEDERATION" in
    config | api) ;;
    *) die "unknown federation '$DEMO_FEDERATION': use --federation config or --federation api (or SPIRE_DEMO_FEDERATION)" ;;
  esac
  case "$DEMO_AUTH" in
    mtls | jwt) ;;
    *) die "unknown auth '$DEMO_AUTH': use --auth mtls or --auth jwt (or SPIRE_DEMO_AUTH)" ;;
  esac
  export SPIRE_DEMO_MODE="$DEMO_MODE" SPIRE_DEMO_PROFILE="$DEMO_PROFILE" SPIRE_DEMO_FEDERATION="$DEMO_FEDERATION"
  export SPIRE_DEMO_AUTH="$DEMO_AUTH"
  if [ "$DEMO_MODE" = docker ]; then docker_init; fi
}

DEMO_USAGE="[--mode local|docker] [--profile https_spiffe|https_web] [--federation config|api] [--auth mtls|jwt]"

# ---------------------------------------------------------------- Docker mode: engine and compose

# The project's own podman Docker-API service (scripts/container-engine.sh), for machines
# with podman and no Docker daemon.
podman_socket() { echo "$(sockets_dir)/podman.sock"; }
podman_conf() { echo "$DEMO_DATA/podman/containers.conf"; }

# docker_api_answers HOST: true if a Docker API answers at HOST (a DOCKER_HOST value; empty
# means the docker CLI's default engine or context).
docker_api_answers() {
  if command -v docker >/dev/null 2>&1; then
    if [ -n "$1" ]; then DOCKER_HOST="$1" docker info >/dev/null 2>&1; else env -u DOCKER_HOST docker info >/dev/null 2>&1; fi
  elif [[ "$1" == unix://* ]]; then
    curl -sf --max-time 5 --unix-socket "${1#unix://}" http://engine/_ping >/dev/null 2>&1
  else
    return 1
  fi
}

# Both compose front ends work: the `docker compose` plugin (v2) and the standalone
# `docker-compose` (v1, which the tutorial uses and Debian ships). SPIRE_DEMO_COMPOSE picks
# one ("docker compose" or "docker-compose") when both are installed.
COMPOSE_CMD=()
detect_compose() {
  local choice="${SPIRE_DEMO_COMPOSE:-}"
  if { [ -z "$choice" ] || [ "$choice" = "docker compose" ]; } && docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
    COMPOSE_VERSION="$(docker compose version --short 2>/dev/null || true)"
  elif { [ -z "$choice" ] || [ "$choice" = docker-compose ]; } && docker-compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker-compose)
    COMPOSE_VERSION="$(docker-compose version --short 2>/dev/null || true)"
  elif [ -n "$choice" ]; then
    die "SPIRE_DEMO_COMPOSE=$choice, but '$choice version' fails: install it, or unset SPIRE_DEMO_COMPOSE to use whichever compose is installed"
  else
    die "Docker mode needs compose: install the Docker compose plugin (docker compose) or docker-compose (Debian: apt-get install docker-compose); or use --mode local"
  fi
}
compose_name() { echo "${COMPOSE_CMD[*]}"; }

docker_init() {
  detect_compose
  # Found by itself, so the numbered scripts work in a new shell too.
  if [ -z "${DOCKER_HOST:-}" ] && running_pid podman-service >/dev/null; then
    DOCKER_HOST="unix://$(podman_socket)"
    export DOCKER_HOST
  fi
  printf 'Docker mode: %s %s%s\n' "$(compose_name)" "${COMPOSE_VERSION:-}" \
    "${DOCKER_HOST:+, engine at $DOCKER_HOST}" >&2
  docker_api_answers "${DOCKER_HOST:-}" ||
    die "no container engine answers${DOCKER_HOST:+ at $DOCKER_HOST}: start Docker, or on a machine with podman run scripts/container-engine.sh start"
}

# ---------------------------------------------------------------- names (facts of the tutorial)

other_td() { if [ "$1" = broker.org ]; then echo stocksmarket.org; else echo broker.org; fi; }
server_name() { if [ "$1" = broker.org ]; then echo spire-server-broker; else echo spire-server-stocks; fi; }
agent_host() { if [ "$1" = broker.org ]; then echo broker-webapp; else echo stock-quotes-service; fi; }
workload_user() { if [ "$1" = broker.org ]; then echo webapp; else echo quotes-service; fi; }
workload_id() { if [ "$1" = broker.org ]; then echo spiffe://broker.org/webapp; else echo spiffe://stocksmarket.org/quotes-service; fi; }

# ---------------------------------------------------------------- local-mode layout

# Loopback ports that do not clash: server APIs 8181/8182, bundle endpoints 8443/8444.
# (The webapp keeps 8080, the quotes service 8090.)
server_port() { if [ "$1" = broker.org ]; then echo 8181; else echo 8182; fi; }
bundle_port() { if [ "$1" = broker.org ]; then echo 8443; else echo 8444; fi; }
server_dir() { echo "$DEMO_DATA/$(server_name "$1")"; }
agent_dir() { echo "$DEMO_DATA/$(agent_host "$1")"; }
# Unix socket paths are limited to 107 bytes: a project in a deep folder keeps its
# sockets in a short folder under /tmp instead, named after the project's path.
sockets_dir() {
  if [ "${#DEMO_DATA}" -le 60 ]; then
    echo "$DEMO_DATA/sockets"
  else
    echo "/tmp/spire-federation-demo-$(printf '%s' "$DEMO_ROOT" | cksum | cut -d' ' -f1)"
  fi
}
server_socket() { echo "$(sockets_dir)/$(server_name "$1").sock"; }
agent_socket() { echo "$(sockets_dir)/$(agent_host "$1")-agent.sock"; }

# x509pop material made by scripts/make-agent-certs.sh (both modes use it).
certs_dir() { echo "$DEMO_DATA/certs/$1"; }
agent_ca_cert() { echo "$(certs_dir "$1")/agent-ca.crt"; }
agent_cert() { echo "$(certs_dir "$1")/$(agent_host "$1").crt"; }
agent_key() { echo "$(certs_dir "$1")/$(agent_host "$1").key"; }

# --profile https_web: the demo Web PKI made by scripts/make-web-pki.sh, a CA (which each
# server trusts through SSL_CERT_FILE) and a serving certificate per server's bundle endpoint.
web_pki_dir() { echo "$DEMO_DATA/certs/web-pki"; }
web_ca_cert() { echo "$(web_pki_dir)/web-ca.crt"; }
web_cert() { echo "$(web_pki_dir)/$(server_name "$1").crt"; }
web_key() { echo "$(web_pki_dir)/$(server_name "$1").key"; }

# The server config for the chosen profile and federation, relative to the server's folder in
# docker/: server.conf is the tutorial's (https_spiffe, config); the others differ only in their
# federation block (README: "Two profiles, two ways to federate").
server_conf() {
  local suffix=""
  [ "$DEMO_PROFILE" = https_spiffe ] || suffix=".$DEMO_PROFILE"
  [ "$DEMO_FEDERATION" = config ] || suffix="$suffix.$DEMO_FEDERATION"
  echo "server$suffix.conf"
}

# The x509pop agent ID: spiffe://<td>/spire/agent/x509pop/<SHA-1 hex of the certificate DER>.
agent_id() {
  local cert fingerprint
  cert="$(agent_cert "$1")"
  [ -f "$cert" ] || die "no agent certificate at $cert: run ./build.sh first"
  fingerprint="$(openssl x509 -in "$cert" -outform DER | sha1sum | cut -c1-40)"
  echo "spiffe://$1/spire/agent/x509pop/$fingerprint"
}

# ---------------------------------------------------------------- processes (local mode)

pid_file() { echo "$DEMO_DATA/pids/$1.pid"; }
log_file() { echo "$DEMO_DATA/logs/$1.log"; }

# True while pid is a live (not zombie) process whose command line contains marker.
pid_matches() {
  local pid="$1" marker="$2" state
  [ -r "/proc/$pid/stat" ] || return 1
  state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
  [ "$state" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

# Prints the pid recorded for name if that process still runs.
running_pid() {
  local file pid marker
  file="$(pid_file "$1")"
  [ -f "$file" ] || return 1
  read -r pid marker <"$file" || true
  [ -n "${pid:-}" ] && [ -n "${marker:-}" ] || return 1
  pid_matches "$pid" "$marker" || return 1
  echo "$pid"
}

# start_bg NAME MARKER COMMAND...: runs COMMAND in the background with its output in
# .data/logs/NAME.log (started afresh), and records its pid (plus a marker from its command line, so a
# reused pid is never mistaken for it) in .data/pids/NAME.pid.
start_bg() {
  local name="$1" marker="$2"
  shift 2
  mkdir -p "$DEMO_DATA/pids" "$DEMO_DATA/logs"
  "$@" >"$(log_file "$name")" 2>&1 </dev/null &
  echo "$! $marker" >"$(pid_file "$name")"
}

# stop_bg NAME: SIGTERM, then SIGKILL after 15 s; removes the pid file.
stop_bg() {
  local name="$1" pid i
  if pid="$(running_pid "$name")"; then
    note "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do
      running_pid "$name" >/dev/null || break
      [ "$i" -lt 60 ] || { warn "$name (pid $pid) ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
      sleep 0.25
    done
  fi
  rm -f "$(pid_file "$name")"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second.
wait_for() {
  local seconds="$1" what="$2" deadline
  shift 2
  deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  note "$what (after $((seconds - deadline + $(date +%s))) s)"
}

show_log_tail() {
  local file
  file="$(log_file "$1")"
  [ -f "$file" ] || return 0
  printf '    last lines of %s:\n' "${file#"$DEMO_ROOT"/}" >&2
  tail -n 15 "$file" | sed 's/^/      /' >&2
}

# ---------------------------------------------------------------- reaching SPIRE

require_spire_binaries() {
  [ "$DEMO_MODE" = local ] || return 0
  local bin
  for bin in spire-server spire-agent; do
    [ -x "$SPIRE_BIN/$bin" ] || die "$bin is missing from .spire/bin: run scripts/install-spire.sh (builds SPIRE $SPIRE_VERSION with Go, or downloads the official release archive)"
  done
}

compose() {
  "${COMPOSE_CMD[@]}" -f "$COMPOSE_FILE" "$@"
}

# spire_server TD ARGS...: runs `spire-server ARGS... -socketPath <that server's socket>`.
# ARGS must be the subcommand and its flags (the socket flag goes last).
spire_server() {
  local td="$1"
  shift
  if [ "$DEMO_MODE" = local ]; then
    "$SPIRE_BIN/spire-server" "$@" -socketPath "$(server_socket "$td")"
  else
    compose exec -T "$(server_name "$td")" /opt/spire/bin/spire-server "$@" -socketPath "$DOCKER_SERVER_SOCKET"
  fi
}

# spire_agent TD ARGS...: runs `spire-agent ARGS... -socketPath <that agent's socket>`.
spire_agent() {
  local td="$1"
  shift
  if [ "$DEMO_MODE" = local ]; then
    "$SPIRE_BIN/spire-agent" "$@" -socketPath "$(agent_socket "$td")"
  else
    compose exec -T -u root "$(agent_host "$td")" /opt/spire/bin/spire-agent "$@" -socketPath "$DOCKER_AGENT_SOCKET"
  fi
}

server_healthy() { spire_server "$1" healthcheck >/dev/null 2>&1; }
agent_healthy() { spire_agent "$1" healthcheck >/dev/null 2>&1; }

require_servers() {
  require_spire_binaries
  local td
  for td in "${TRUST_DOMAINS[@]}"; do
    server_healthy "$td" && continue
    if [ "$DEMO_MODE" = local ]; then
      die "the SPIRE server of $td ($(server_name "$td")) is not running: run npm start, or scripts/start-servers.sh, first"
    else
      die "the SPIRE server of $td ($(server_name "$td")) is not running: run ./build.sh --mode docker and $(compose_name) up -d first"
    fi
  done
}

require_agents() {
  local td
  for td in "${TRUST_DOMAINS[@]}"; do
    agent_healthy "$td" || die "no SPIRE agent is running on $(agent_host "$td") ($td): run ./1-start-spire-agents.sh first"
  done
}

# True if SERVER_TD holds a federated bundle for OTHER_TD.
has_federated_bundle() {
  spire_server "$1" bundle list -id "spiffe://$2" >/dev/null 2>&1
}

# The URL of TD's bundle endpoint, as the other server reaches it.
bundle_endpoint_url() {
  if [ "$DEMO_MODE" = local ]; then echo "https://127.0.0.1:$(bundle_port "$1")"; else echo "https://$(server_name "$1"):8443"; fi
}

# The last error SERVER_TD's server logged while fetching OTHER_TD's bundle, if any.
last_bundle_fetch_error() {
  local logs
  if [ "$DEMO_MODE" = local ]; then
    logs="$(cat "$(log_file "$(server_name "$1")")" 2>/dev/null || true)"
  else
    logs="$(compose logs --no-color "$(server_name "$1")" 2>/dev/null || true)"
  fi
  grep "subsystem_name=bundle_client trust_domain=$2\$" <<<"$logs" | tail -n 1 |
    sed -n 's/^.*time="\([^"]*\)".*msg="Error updating bundle" error="\(.*\)" subsystem_name=.*$/\1: \2/p' | sed 's/\\"/"/g'
}

# wait_for_federated_bundle SERVER_TD OTHER_TD: with https_web or federation create, the server
# fetches the bundle by itself; a failed fetch is retried once a minute. Waits up to 75 s, and
# stops at once on a certificate error, which waiting does not cure.
wait_for_federated_bundle() {
  local td="$1" other="$2" deadline error
  deadline=$(($(date +%s) + 75))
  note "waiting for $(server_name "$td") to fetch the $other bundle from $(bundle_endpoint_url "$other")"
  until has_federated_bundle "$td" "$other"; do
    error="$(last_bundle_fetch_error "$td" "$other")"
    if grep -qiE 'x509|certificate|tls:' <<<"$error" || [ "$(date +%s)" -ge "$deadline" ]; then
      warn "$(server_name "$td") could not fetch the $other bundle from $(bundle_endpoint_url "$other") ${error:+"(its log, at $error)"}"
      if [ "$DEMO_PROFILE" = https_web ] && grep -qi 'unknown authority\|x509' <<<"$error"; then
        die "$(server_name "$td") does not trust the certificate that $(server_name "$other")'s bundle endpoint presents. With https_web it checks that certificate against the CAs in its SSL_CERT_FILE (the demo CA, $(web_ca_cert | sed "s|^$DEMO_ROOT/||")): the endpoint must serve a certificate issued by that CA (./build.sh makes one), for the host name in the URL. SPIRE retries once a minute; after the fix, run this step again"
      fi
      die "$(server_name "$td") has no bundle for $other, and -federatesWith needs it: see its log; with https_spiffe, ./2-bootstrap-federation.sh hands it the bundle again"
    fi
    sleep 1
  done
  note "$(server_name "$td") fetched the $other bundle from its endpoint by itself"
}
