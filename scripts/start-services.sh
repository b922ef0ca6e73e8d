#!/usr/bin/env bash
# Local mode: starts stock-quotes-service (HTTPS mTLS on 127.0.0.1:8090) and
# broker-webapp (HTTP on 127.0.0.1:8080), each talking to the Workload API of its own
# agent. As root each runs as the tutorial's unix user (webapp, quotes-service), created
# here if missing, so `unix:user:` selectors attest them; otherwise both run as you.
# Docker mode: the containers of docker-compose.yml run them.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
demo_init "$@"
[ "$DEMO_MODE" = local ] || die "in Docker mode the services run in their containers: $(compose_name) up -d"

NODE="$(command -v node)" || die "node is not on PATH"
for service in stock-quotes-service broker-webapp; do
  [ -f "$DEMO_ROOT/$service/dist/main.js" ] || die "$service/dist/main.js is missing: run ./build.sh (or npm run build) first"
done

AS_ROOT=false
[ "$(id -u)" -eq 0 ] && AS_ROOT=true

ensure_user() {
  local user="$1"
  if id -u "$user" >/dev/null 2>&1; then
    note "unix user $user exists (uid $(id -u "$user"))"
  else
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
    note "created the system user $user (uid $(id -u "$user"))"
  fi
}

# A service running as another user must be able to walk down to the project's files:
# every folder above the project needs the execute bit for "other".
ensure_traversable() {
  local dir="$DEMO_ROOT" mode
  while :; do
    mode="$(stat -c '%a' "$dir")"
    if [ $((${mode: -1} & 1)) -eq 0 ]; then
      warn "the folder $dir cannot be entered by other users (mode $(stat -c '%A' "$dir")), so the webapp and quotes-service users could not reach the project"
      chmod o+x "$dir"
      warn "CHANGED: chmod o+x $dir (now $(stat -c '%A' "$dir")); undo with chmod o-x $dir after the demo"
    fi
    [ "$dir" = / ] && break
    dir="$(dirname "$dir")"
  done
}

# The command prefix that runs a program as user (setpriv execs it, so the recorded pid is
# the program's own).
as_user_prefix() {
  if $AS_ROOT; then
    printf '%s\0' setpriv "--reuid=$1" "--regid=$(id -g "$1")" --init-groups
  fi
}

as_user() {
  local user="$1" prefix
  shift
  mapfile -d '' -t prefix < <(as_user_prefix "$user")
  "${prefix[@]}" "$@"
}

check_readable() {
  local user="$1" path
  for path in "$DEMO_ROOT/node_modules/express/package.json" "$DEMO_ROOT/spiffe/dist/index.js" \
    "$DEMO_ROOT/$2/dist/main.js" "$NODE"; do
    as_user "$user" test -r "$path" ||
      die "user $user cannot read $path: make the project readable by others (chmod -R o+rX $DEMO_ROOT)"
  done
}

start_service() {
  local name="$1" user="$2" td="$3"
  shift 3
  if running_pid "$name" >/dev/null; then
    note "$name is already running (pid $(running_pid "$name"))"
    return 0
  fi
  check_readable "$user" "$name"
  note "starting $name as user $user with the Workload API of the agent on $(agent_host "$td"); log in .data/logs/$name.log"
  local prefix
  mapfile -d '' -t prefix < <(as_user_prefix "$user")
  # A young generation of 2 x 4 MB instead of V8's 2 x 16 MB: see "Memory" in the services' READMEs.
  start_bg "$name" "$DEMO_ROOT/$name/dist/main.js" "${prefix[@]}" \
    "$NODE" --max-semi-space-size=4 --heap-growing-percent=10 "$DEMO_ROOT/$name/dist/main.js" --socket "unix://$(agent_socket "$td")" "$@"
}

say "Starting the workloads"
if $AS_ROOT; then
  ensure_user "$(workload_user broker.org)"
  ensure_user "$(workload_user stocksmarket.org)"
  ensure_traversable
  QUOTES_USER="$(workload_user stocksmarket.org)"
  WEBAPP_USER="$(workload_user broker.org)"
else
  warn "not running as root: both services run as $(id -un) (uid $(id -u)); the registration entries select unix:uid:$(id -u)"
  QUOTES_USER="$(id -un)"
  WEBAPP_USER="$(id -un)"
fi
chmod 755 "$DEMO_DATA" "$(sockets_dir)"

start_service stock-quotes-service "$QUOTES_USER" stocksmarket.org \
  --host 127.0.0.1 --port 8090 --health-port 8091 --auth "$DEMO_AUTH"
start_service broker-webapp "$WEBAPP_USER" broker.org \
  --host 127.0.0.1 --port 8080 --quotes-url https://localhost:8090/quotes --auth "$DEMO_AUTH"

webapp_up() {
  "$NODE" -e 'fetch("http://127.0.0.1:8080/healthz").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))'
}
if ! wait_for 60 "broker-webapp answers on http://localhost:8080" webapp_up; then
  show_log_tail broker-webapp
  die "broker-webapp did not answer on port 8080 within 60 s (is the port in use?)"
fi
