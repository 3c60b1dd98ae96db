#!/usr/bin/env bash
# A private MariaDB server for the MySQL store tests: its own data directory,
# loopback TCP on a free port, no system service, nothing outside DIR (and a
# short socket directory under /tmp when DIR's path is too long for a socket).
#
#   mariadb_server.sh start DIR   initialise DIR, start mariadbd on 127.0.0.1,
#                                 create a database and an account with a
#                                 password generated now; write DIR/server.env
#   mariadb_server.sh stop DIR    stop the server and remove DIR
#   mariadb_server.sh down DIR    kill mariadbd (SIGKILL), keep its data
#   mariadb_server.sh up DIR      start it again on the same port and socket
#   mariadb_server.sh sql DIR SQL run SQL as the server's admin (root)
#
# server.env (KEY=VALUE lines): MARIADB_HOST, MARIADB_PORT, MARIADB_USER,
# MARIADB_PASSWORD, MARIADB_DATABASE, MARIADB_DB_PREFIX (the account may
# create and drop databases named <prefix>*), MARIADB_SOCKET, and two more
# accounts with the same password on those databases: MARIADB_ONE_USER (at
# most one connection at a time) and MARIADB_DML_USER (SELECT, INSERT,
# UPDATE, DELETE only); MARIADB_TLS_USER (refused without TLS), MARIADB_TLS_CA
# (the CA of the server's certificate, made at start for IP 127.0.0.1) and
# MARIADB_TLS_OTHER_CA (a CA that did not sign it).
#
# Any failure exits non-zero with the server's error log, so the tests that
# need the server fail rather than skip.
set -euo pipefail

usage() { echo "usage: $0 start|stop|down|up DIR | sql DIR SQL" >&2; exit 2; }
[[ $# -eq 2 || ( $# -eq 3 && "$1" == sql ) ]] || usage
action="$1"
dir="$2"
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac

env_file="$dir/server.env"
pid_file="$dir/mariadbd.pid"
server_name=mariadb_server
server_log="$dir/error.log"
# shellcheck source=../lib/test_server.sh
source "$(dirname "$0")/../lib/test_server.sh"

MARIADBD=$(find_bin mariadbd mysqld) || die "mariadbd not found (apt-get install mariadb-server)"
INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
CLIENT=$(find_bin mariadb mysql) || die "mariadb client not found (apt-get install mariadb-client)"
ADMIN=$(find_bin mariadb-admin mysqladmin) || die "mariadb-admin not found"

# mariadbd refuses to run as root unless told to; as another user it runs as
# that user and needs no option.
user_args=()
admin_user="$(id -un)"
if [[ $(id -u) -eq 0 ]]; then
  user_args=(--user=root)
  admin_user=root
fi

admin() { "$CLIENT" --no-defaults --socket="$MARIADB_SOCKET" -u "$admin_user" "$@"; }

# A CA and a server certificate for 127.0.0.1 made now (TLS to the database),
# and a second CA that did not sign it.
make_certificates() {
  local tls="$dir/tls" ca
  mkdir -p "$tls"
  for ca in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
      -subj "/CN=turnkey test $ca" -keyout "$tls/$ca.key" -out "$tls/$ca.pem" 2>>"$tls/log" ||
      die "openssl: making $ca failed: $(cat "$tls/log")"
  done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>>"$tls/log" &&
    printf 'subjectAltName = IP:127.0.0.1\n' >"$tls/server.ext" &&
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 3 -extfile "$tls/server.ext" -out "$tls/server.pem" 2>>"$tls/log" ||
    die "openssl: making the server certificate failed: $(cat "$tls/log")"
}

# Starts mariadbd on MARIADB_PORT / MARIADB_SOCKET and waits until it answers.
launch() {
  rm -f "$pid_file" "$MARIADB_SOCKET"
  # setsid: the server must outlive this script (ctest runs start and stop
  # as separate tests) and not get the test runner's signals.
  setsid "$MARIADBD" --no-defaults "${user_args[@]}" \
    --datadir="$dir/data" --socket="$MARIADB_SOCKET" --pid-file="$pid_file" \
    --port="$MARIADB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
    --log-error="$dir/error.log" --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_bin --innodb-buffer-pool-size=32M \
    --innodb-use-native-aio=0 --performance-schema=OFF --max-connections=200 \
    --ssl-ca="$dir/tls/ca.pem" --ssl-cert="$dir/tls/server.pem" --ssl-key="$dir/tls/server.key" \
    </dev/null >>"$dir/stdout.log" 2>&1 &
  local launcher=$! i
  for ((i = 0; i < 600; i++)); do
    if "$ADMIN" --no-defaults --socket="$MARIADB_SOCKET" -u "$admin_user" ping >/dev/null 2>&1; then
      return 0
    fi
    if ! alive "$launcher" && ! alive "$(server_pid)"; then
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
  mkdir -p "$dir/data"
  # A Unix socket path must fit in sun_path (108 bytes).
  local socket_dir="$dir"
  if [[ ${#dir} -gt 80 ]]; then
    socket_dir=$(mktemp -d /tmp/tk-mariadb.XXXXXX)
    echo "$socket_dir" >"$dir/socket_dir"
  fi
  "$INSTALL_DB" --no-defaults "${user_args[@]}" --datadir="$dir/data" \
    --auth-root-authentication-method=socket --skip-test-db \
    >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }

  make_certificates
  MARIADB_SOCKET="$socket_dir/mysqld.sock"
  local attempt
  for attempt in 1 2 3; do
    MARIADB_PORT=$(free_port)
    if launch; then break; fi
    # Someone may have taken the port between our probe and the bind.
    if [[ $attempt -eq 3 ]]; then die "mariadbd did not start"; fi
    log "start on port $MARIADB_PORT failed, trying another port"
    alive "$(server_pid)" && kill -KILL "$(server_pid)" 2>/dev/null || true
  done

  MARIADB_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
  MARIADB_USER=turnkey_test
  MARIADB_DATABASE=tk_main
  MARIADB_DB_PREFIX=tk_
  admin <<SQL || die "creating the test database and account failed"
CREATE DATABASE ${MARIADB_DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER '${MARIADB_USER}'@'127.0.0.1' IDENTIFIED BY '${MARIADB_PASSWORD}';
CREATE USER '${MARIADB_USER}'@'localhost' IDENTIFIED BY '${MARIADB_PASSWORD}';
GRANT ALL PRIVILEGES ON \`tk\\_%\`.* TO '${MARIADB_USER}'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`tk\\_%\`.* TO '${MARIADB_USER}'@'localhost';
-- Held to one connection at a time: a pool larger than that is refused.
CREATE USER 'turnkey_one'@'127.0.0.1' IDENTIFIED BY '${MARIADB_PASSWORD}'
  WITH MAX_USER_CONNECTIONS 1;
GRANT ALL PRIVILEGES ON \`tk\\_%\`.* TO 'turnkey_one'@'127.0.0.1';
-- What the operator guide gives \`turnkey serve\`: rows only, no DDL.
CREATE USER 'turnkey_dml'@'127.0.0.1' IDENTIFIED BY '${MARIADB_PASSWORD}';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`tk\\_%\`.* TO 'turnkey_dml'@'127.0.0.1';
-- Refused unless the connection is encrypted.
CREATE USER 'turnkey_tls'@'127.0.0.1' IDENTIFIED BY '${MARIADB_PASSWORD}' REQUIRE SSL;
GRANT ALL PRIVILEGES ON \`tk\\_%\`.* TO 'turnkey_tls'@'127.0.0.1';
SQL
  umask 077
  cat >"$env_file" <<EOF
MARIADB_HOST=127.0.0.1
MARIADB_PORT=${MARIADB_PORT}
MARIADB_USER=${MARIADB_USER}
MARIADB_ONE_USER=turnkey_one
MARIADB_DML_USER=turnkey_dml
MARIADB_TLS_USER=turnkey_tls
MARIADB_TLS_CA=$dir/tls/ca.pem
MARIADB_TLS_OTHER_CA=$dir/tls/other-ca.pem
MARIADB_PASSWORD=${MARIADB_PASSWORD}
MARIADB_DATABASE=${MARIADB_DATABASE}
MARIADB_DB_PREFIX=${MARIADB_DB_PREFIX}
MARIADB_SOCKET=${MARIADB_SOCKET}
EOF
  log "MariaDB $("$MARIADBD" --version | awk '{print $3}') on 127.0.0.1:${MARIADB_PORT}, env in $env_file"
}

stop() {
  stop_server mariadbd
  if [[ -f "$dir/socket_dir" ]]; then
    rm -rf "$(cat "$dir/socket_dir")"
  fi
  rm -rf "$dir"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  down)
    read_env
    pid=$(server_pid)
    alive "$pid" || die "mariadbd is not running"
    kill -KILL "$pid"
    wait_gone "$pid" || die "mariadbd $pid survived SIGKILL"
    ;;
  sql)
    read_env
    admin -e "$3"
    ;;
  up)
    read_env
    alive "$(server_pid)" && die "mariadbd is already running"
    launch || die "mariadbd did not start again"
    ;;
  *) usage ;;
esac
