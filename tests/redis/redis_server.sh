#!/usr/bin/env bash
# A private Redis server for the Redis client tests: loopback TCP on a free
# port, a password generated at start, no persistence, no system service,
# nothing outside DIR.
#
#   redis_server.sh start DIR   start redis-server on 127.0.0.1 with a new
#                               password; write DIR/server.env
#   redis_server.sh stop DIR    stop the server and remove DIR
#   redis_server.sh down DIR    kill redis-server (SIGKILL), keep its port
#   redis_server.sh up DIR      start it again on the same port and password
#   redis_server.sh pause DIR   freeze redis-server (SIGSTOP): connections stay
#                               open, nothing is answered
#   redis_server.sh resume DIR  let it go on (SIGCONT)
#
# server.env (KEY=VALUE lines): REDIS_HOST, REDIS_PORT, REDIS_PASSWORD.
#
# Any failure exits non-zero with the server's log, so the tests that need
# the server fail rather than skip.
set -euo pipefail

usage() { echo "usage: $0 start|stop|down|up|pause|resume DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action="$1"
dir="$2"
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac

env_file="$dir/server.env"
pid_file="$dir/redis.pid"
server_name=redis_server
server_log="$dir/redis.log"
# shellcheck source=../lib/test_server.sh
source "$(dirname "$0")/../lib/test_server.sh"

REDIS_SERVER=$(find_bin redis-server) || die "redis-server not found (apt-get install redis-server)"
REDIS_CLI=$(find_bin redis-cli) || die "redis-cli not found (apt-get install redis-tools)"

conf_file="$dir/redis.conf"

ping() {
  REDISCLI_AUTH="$REDIS_PASSWORD" "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning \
    ping 2>/dev/null | grep -q PONG
}

# The password goes in a config file only DIR's owner reads, never on a
# command line (ps would show it).
write_config() {
  (
    umask 077
    cat >"$conf_file" <<CONF
bind 127.0.0.1
port ${REDIS_PORT}
requirepass ${REDIS_PASSWORD}
save ""
appendonly no
daemonize yes
pidfile ${pid_file}
logfile ${dir}/redis.log
dir ${dir}
CONF
  )
}

# Starts redis-server on REDIS_PORT and waits until it answers.
launch() {
  rm -f "$pid_file"
  write_config
  # daemonize: the server must outlive this script (ctest runs start and stop
  # as separate tests); setsid keeps it from the test runner's signals.
  setsid "$REDIS_SERVER" "$conf_file" </dev/null >>"$dir/stdout.log" 2>&1 || return 1
  local i
  for ((i = 0; i < 300; i++)); do
    if ping; then
      return 0
    fi
    if [[ $i -gt 20 ]] && ! alive "$(server_pid)"; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

start() {
  if [[ -f "$env_file" ]]; then
    log "stopping a server left over in $dir"
    stop
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  REDIS_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
  local attempt
  for attempt in 1 2 3; do
    REDIS_PORT=$(free_port)
    if launch; then break; fi
    # Someone may have taken the port between our probe and the bind.
    if [[ $attempt -eq 3 ]]; then die "redis-server did not start"; fi
    log "start on port $REDIS_PORT failed, trying another port"
    alive "$(server_pid)" && kill -KILL "$(server_pid)" 2>/dev/null || true
  done
  (
    umask 077
    cat >"$env_file" <<ENV
REDIS_HOST=127.0.0.1
REDIS_PORT=${REDIS_PORT}
REDIS_PASSWORD=${REDIS_PASSWORD}
ENV
  )
  log "$("$REDIS_SERVER" --version | awk '{print $1, $2, $3}') on 127.0.0.1:${REDIS_PORT}, env in $env_file"
}

stop() {
  stop_server redis-server
  rm -rf "$dir"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  down)
    read_env
    pid=$(server_pid)
    alive "$pid" || die "redis-server is not running"
    kill -KILL "$pid"
    wait_gone "$pid" || die "redis-server $pid survived SIGKILL"
    ;;
  up)
    read_env
    alive "$(server_pid)" && die "redis-server is already running"
    launch || die "redis-server did not start again on port $REDIS_PORT"
    ;;
  pause | resume)
    read_env
    pid=$(server_pid)
    alive "$pid" || die "redis-server is not running"
    kill "-$([[ $action == pause ]] && echo STOP || echo CONT)" "$pid"
    ;;
  *) usage ;;
esac
