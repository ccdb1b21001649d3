#!/usr/bin/env bash
# Start the SIMULATED API model for `scripts/up.sh --demo`: the stack's fake upstream with a
# frontier latency profile, serving the model "sim-frontier" on 127.0.0.1:$WILTON_DEMO_PORT (8090).
# Its answers are canned text, not a real provider's: the name says so on purpose.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
port="${WILTON_DEMO_PORT:-8090}"
wilton_start demo-upstream "$(wilton_bin python)" -m wilton_core.testing.fake_upstream \
    --port "$port" --name sim-frontier --profile frontier
wilton_wait_http "http://127.0.0.1:$port/healthz" "${WILTON_START_TIMEOUT_S:-30}" demo-upstream
wilton_log "demo upstream ready: http://127.0.0.1:$port/v1 (model sim-frontier, SIMULATED)"
