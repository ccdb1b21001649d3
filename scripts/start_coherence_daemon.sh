#!/usr/bin/env bash
# Start wilton-coherence (control loop + JWT API) on $WILTON_COHERENCE_PORT (8001).
# Arguments pass through, e.g.  scripts/start_coherence_daemon.sh --interval 5
# The API needs WILTON_ADMIN_PASSWORD and WILTON_JWT_SECRET in the environment.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
port="${WILTON_COHERENCE_PORT:-8001}"
wilton_start coherence "$(wilton_bin wilton-coherence)" --port "$port" "$@"
wilton_wait_http "http://127.0.0.1:$port/healthz" "${WILTON_START_TIMEOUT_S:-30}" coherence
wilton_log "coherence ready: http://127.0.0.1:$port/healthz"
