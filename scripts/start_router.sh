#!/usr/bin/env bash
# Start wilton-router (the OpenAI-compatible gateway) on $WILTON_ROUTER_PORT (8080).
# Extra arguments go to wilton-router, e.g.  --config wilton.toml
set -euo pipefail
. "$(dirname "$0")/lib.sh"
port="${WILTON_ROUTER_PORT:-8080}"
wilton_start router "$(wilton_bin wilton-router)" --port "$port" "$@"
wilton_wait_http "http://127.0.0.1:$port/healthz" "${WILTON_START_TIMEOUT_S:-30}" router
wilton_log "router ready: http://127.0.0.1:$port/v1"
