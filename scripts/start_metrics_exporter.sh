#!/usr/bin/env bash
# Start wilton-exporter (Prometheus metrics from the store) on $WILTON_EXPORTER_PORT (8000).
# Extra arguments go to wilton-exporter, e.g.  --store-url sqlite:///data/wilton.db
set -euo pipefail
. "$(dirname "$0")/lib.sh"
port="${WILTON_EXPORTER_PORT:-8000}"
wilton_start exporter "$(wilton_bin wilton-exporter)" --port "$port" "$@"
wilton_wait_http "http://127.0.0.1:$port/healthz" "${WILTON_START_TIMEOUT_S:-30}" exporter
wilton_log "exporter ready: http://127.0.0.1:$port/metrics"
