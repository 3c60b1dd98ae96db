# Helpers shared by the private test servers (tests/sql/mariadb_server.sh,
# tests/redis/redis_server.sh). Sourced, not run. The sourcing script sets
# `dir` (the server's directory), `env_file` (its KEY=VALUE file),
# `pid_file`, `server_name` (the log prefix) and `server_log` (the file
# whose end `die` shows).

log() { echo "${server_name}: $*" >&2; }
die() {
  log "$*"
  if [[ -f "$server_log" ]]; then
    log "last lines of $server_log:"
    tail -n 30 "$server_log" >&2 || true
  fi
  exit 1
}

# The first of the named programs found on PATH or in /usr/sbin, /usr/bin.
find_bin() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    if [[ -x "/usr/sbin/$name" ]]; then echo "/usr/sbin/$name"; return 0; fi
    if [[ -x "/usr/bin/$name" ]]; then echo "/usr/bin/$name"; return 0; fi
  done
  return 1
}

read_env() {
  [[ -f "$env_file" ]] || die "$env_file missing: run '$0 start $dir' first"
  # shellcheck disable=SC1090
  source "$env_file"
}

server_pid() {
  [[ -f "$pid_file" ]] && cat "$pid_file" 2>/dev/null || true
}

# A zombie is not alive: a daemon's parent here may be slow to reap it.
alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null &&
    [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != "Z" ]]
}

# Waits (up to 30 s) for a process to exit.
wait_gone() {
  local pid="$1" i
  for ((i = 0; i < 300; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# Stops the server of pid_file (SIGTERM, then SIGKILL if it lingers);
# `name` names it in messages.
stop_server() {
  local name="$1" pid
  pid=$(server_pid)
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid"; then
      log "$name $pid ignored SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" || die "$name $pid does not exit"
    fi
  fi
}

free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
