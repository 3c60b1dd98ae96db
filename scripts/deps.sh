#!/usr/bin/env bash
# Installs the Debian 12 packages turnkey needs.
#   scripts/deps.sh          build and run
#   scripts/deps.sh --test   also what the test suite needs
# Idempotent: packages already present are not touched, and apt-get update runs
# only when something is missing.
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config openssl
  libevent-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libsodium-dev
  libhttp-parser-dev libwslay-dev libspdlog-dev libfmt-dev libcli11-dev
  libsystemd-dev libhiredis-dev libsqlite3-dev default-libmysqlclient-dev
  libgtest-dev libgmock-dev
)
test_pkgs=(
  coturn            # turnutils_stunclient / turnutils_uclient: clients nobody here wrote
  clang-19 libclang-rt-19-dev   # libFuzzer (clang 14's libstdc++ lacks std::expected)
  python3 procps iproute2 curl
  mariadb-server mariadb-client   # MySQL store tests run against a real server on loopback
  # Redis client tests run against a private redis-server on loopback
  # (tests/redis/redis_server.sh); the package's own service is kept from
  # starting and from starting at boot (below).
  redis-server
  nodejs            # with npm: socket.io-client and playwright-core for the client tests
  # python-socketio, a second Socket.IO client nobody here wrote
  # (tests/integration/test_python_socketio.py); websocket-client and requests
  # are its WebSocket and long-polling transports, which python3-engineio does
  # not depend on.
  python3-socketio python3-engineio python3-websocket python3-requests
  # Pion, the Go WebRTC stack, as TURN and WebRTC client nobody here wrote
  # (tests/integration/test_pion.py builds tests/go/pioncheck from these
  # sources offline, in GOPATH mode).
  golang-go golang-github-pion-turn.v2-dev golang-github-pion-stun-dev
  golang-github-pion-webrtc.v3-dev
  chromium          # headless browser for the WebRTC call test
  systemd           # systemd-analyze verify of the unit files
  prometheus        # promtool check metrics on a live scrape (its service is kept from starting)
)

pkgs=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # The coturn package would start its own turnserver on install where an init
  # system runs; we only want its client tools, so keep services from starting.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # policy-rc.d (ours, or one the system had) kept the package's redis-server
  # from starting, but under systemd the unit is still enabled and would start
  # at the next boot, holding port 6379. The tests run their own server.
  if [[ " ${missing[*]} " == *" redis-server "* && -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now redis-server.service >/dev/null 2>&1 || true
  fi
fi
