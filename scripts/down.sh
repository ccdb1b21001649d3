#!/usr/bin/env bash
# Stop everything scripts/up.sh started, in reverse order. Safe to run when nothing runs.
# Same WILTON_RUN_DIR as up.sh (default ./run, relative to the repository root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
export WILTON_RUN_DIR="${WILTON_RUN_DIR:-./run}"
. "$here/lib.sh"
for name in insight coherence exporter router demo-upstream local-model; do
    wilton_stop "$name"
done
rm -f "$WILTON_RUN_DIR/up.mode"
wilton_log "stack stopped (data kept in ${WILTON_DATA_DIR:-./data})"
