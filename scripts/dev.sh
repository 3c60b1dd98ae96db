#!/usr/bin/env bash
# The README's run command: installs what turnkey needs, builds it, writes a
# development config on localhost (once, under dev/), and starts turnkey in the
# foreground. Stop it with Ctrl-C.
#
# Everything it generates stays under dev/: the config, a self-signed TLS
# certificate, the TURN secret and the SQLite state. Delete dev/ to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build
# The demo page at / serves socket.io-client's browser build from
# web/node_modules (signal.web_root defaults to this tree's web/).
if [[ ! -d web/node_modules/socket.io-client ]]; then
  (cd web && npm ci --no-audit --no-fund)
fi

dev="$PWD/dev"
mkdir -p "$dev/state" "$dev/tls"
chmod 700 "$dev"

if [[ ! -f "$dev/tls/cert.pem" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -keyout "$dev/tls/key.pem" -out "$dev/tls/cert.pem" 2>/dev/null
  chmod 600 "$dev/tls/key.pem"
fi
if [[ ! -f "$dev/turn-secrets" ]]; then
  (umask 077; openssl rand -hex 32 > "$dev/turn-secrets")
fi

if [[ ! -f "$dev/turnkey.yaml" ]]; then
  cat > "$dev/turnkey.yaml" <<YAML
# Development config written by scripts/dev.sh. Localhost only.
realm: turnkey.local
state_dir: $dev/state
log: {level: info, format: text}
tls:
  certificate: $dev/tls/cert.pem
  private_key: $dev/tls/key.pem
turn:
  listeners:
    - {transport: udp, address: 127.0.0.1, port: ${TURNKEY_TURN_PORT:-3478}}
    - {transport: tcp, address: 127.0.0.1, port: ${TURNKEY_TURN_PORT:-3478}}
    - {transport: tls, address: 127.0.0.1, port: ${TURNKEY_TURNS_PORT:-5349}}
    - {transport: dtls, address: 127.0.0.1, port: ${TURNKEY_TURNS_PORT:-5349}}
  relay:
    addresses: [127.0.0.1]
    # A thousand ports: plenty for local calls, and within any descriptor limit.
    ports: {min: 49152, max: 50151}
  auth:
    secrets_file: $dev/turn-secrets
  peers:
    # Both browsers of a local demo call sit on this machine.
    allow: [127.0.0.1/32, "::1/128"]
signal:
  listen: {address: 127.0.0.1, port: ${TURNKEY_HTTP_PORT:-8080}, tls: false}
  ice_servers:
    urls: ["stun:127.0.0.1:${TURNKEY_TURN_PORT:-3478}", "turn:127.0.0.1:${TURNKEY_TURN_PORT:-3478}?transport=udp"]
database:
  driver: sqlite
metrics: {listen: "127.0.0.1:${TURNKEY_METRICS_PORT:-9641}"}
YAML
fi

# A dev database made by an older build gets this build's schema changes.
build/turnkey migrate --config "$dev/turnkey.yaml"
echo "turnkey: starting with $dev/turnkey.yaml"
exec build/turnkey serve --config "$dev/turnkey.yaml"
