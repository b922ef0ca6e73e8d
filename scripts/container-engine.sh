#!/usr/bin/env bash
# Docker mode needs a container engine that speaks the Docker API. This script finds one:
# - an engine that already answers (`docker info` works, e.g. Docker on a laptop) is used
#   as it is, and nothing on the system is changed;
# - otherwise, where podman is installed (Debian: apt-get install podman runc
#   docker-compose), it starts podman's Docker-API service for this project on a socket
#   under .data, with the project's own engine settings (no file in /etc is touched), and
#   a loop that runs the containers' healthchecks (podman schedules them with systemd
#   timers, and without systemd they never run, so `condition: service_healthy` in
#   docker-compose.yml would wait forever).
# The numbered scripts find that service by themselves; other commands need
#   export DOCKER_HOST="$(scripts/container-engine.sh docker-host)"
# Usage: scripts/container-engine.sh start|stop|status|docker-host
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

engine_answers() { docker_api_answers "${DOCKER_HOST:-}"; }

start_podman_service() {
  command -v podman >/dev/null 2>&1 ||
    die "no container engine answers (docker info fails) and podman is not installed: install Docker (with the compose plugin), or on Debian: apt-get install podman runc docker-compose"
  command -v runc >/dev/null 2>&1 || die "podman here needs runc (crun fails without cgroups v2): apt-get install runc"
  mkdir -p "$(dirname "$(podman_conf)")" "$(sockets_dir)"
  # runc refuses container limits above the podman process's own (podman lowers its
  # process limit to 32768 where the hard limit is higher): ask for modest ones, plenty
  # for four small containers, and never more than this shell's hard limits.
  local nofile=20000 nproc=4096
  if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$nofile" ]; then nofile="$(ulimit -Hn)"; fi
  if [ "$(ulimit -Hu)" != unlimited ] && [ "$(ulimit -Hu)" -lt "$nproc" ]; then nproc="$(ulimit -Hu)"; fi
  cat >"$(podman_conf)" <<CONF
# Written by scripts/container-engine.sh for this project's podman service only.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
  rm -f "$(podman_socket)"
  say "Starting podman's Docker-API service on $(podman_socket) (log in .data/logs/podman-service.log)"
  CONTAINERS_CONF="$(podman_conf)" start_bg podman-service "$(podman_socket)" \
    podman system service --time=0 "unix://$(podman_socket)"
  if ! wait_for 30 "the podman service answers" docker_api_answers "unix://$(podman_socket)"; then
    show_log_tail podman-service
    die "podman's Docker-API service did not answer within 30 s (see its log)"
  fi
  CONTAINERS_CONF="$(podman_conf)" start_bg podman-healthchecks "$DEMO_ROOT/scripts/container-engine.sh" \
    "$DEMO_ROOT/scripts/container-engine.sh" run-healthchecks
  note "running the containers' healthchecks every 2 s (podman has no systemd timers here)"
}

# Runs `podman healthcheck run` for every running container, every 2 s, until stopped.
run_healthchecks() {
  local id
  while :; do
    for id in $(podman ps -q 2>/dev/null); do
      podman healthcheck run "$id" >/dev/null 2>&1 || true
    done
    sleep 2
  done
}

case "${1:-}" in
  start)
    if running_pid podman-service >/dev/null; then
      say "The project's podman service is already running: export DOCKER_HOST=unix://$(podman_socket)"
    elif engine_answers; then
      say "A container engine answers${DOCKER_HOST:+ at $DOCKER_HOST}: using it as it is"
    else
      start_podman_service
      say "Docker API ready: export DOCKER_HOST=unix://$(podman_socket)"
    fi
    ;;
  stop)
    if running_pid podman-service >/dev/null || running_pid podman-healthchecks >/dev/null; then
      say "Stopping the project's podman service"
      stop_bg podman-healthchecks
      stop_bg podman-service
      rm -f "$(podman_socket)"
    else
      note "the project's podman service is not running"
    fi
    ;;
  status)
    if running_pid podman-service >/dev/null; then
      echo "the project's podman service runs (pid $(running_pid podman-service)) on unix://$(podman_socket)"
    elif engine_answers; then
      echo "a container engine answers${DOCKER_HOST:+ at $DOCKER_HOST}"
    else
      echo "no container engine answers"
      exit 1
    fi
    ;;
  docker-host)
    if running_pid podman-service >/dev/null; then echo "unix://$(podman_socket)"; else echo "${DOCKER_HOST:-}"; fi
    ;;
  run-healthchecks) run_healthchecks ;;
  *) die "usage: $(basename "$0") start|stop|status|docker-host" ;;
esac
