#!/bin/sh
# Installs the Node.js test dependencies (socket.io-client, engine.io-client)
# from package-lock.json into tests/js/node_modules, once. The tests in this
# folder (ctest js_socketio_protocol) need them; nothing else does.
set -eu
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
