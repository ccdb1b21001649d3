#!/usr/bin/env bash
# Start wilton-insight (hourly reports). Arguments pass through, e.g.  --interval 600 --model local
# It has no HTTP port: readiness is "still alive after a moment"; runs show up in
# wilton_insight_runs_total on the exporter and in `wiltonctl status`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
wilton_start insight "$(wilton_bin wilton-insight)" "$@"
sleep "${WILTON_INSIGHT_SETTLE_S:-1}"
wilton_pid insight >/dev/null || wilton_die "insight exited; see $WILTON_LOG_DIR/insight.log"
wilton_log "insight running (log $WILTON_LOG_DIR/insight.log)"
