#!/usr/bin/env bash
# Start the embedded local tier: SmolLM2-135M (bundled in the [local] extra) under the llama.cpp
# server, OpenAI-compatible on 127.0.0.1:$WILTON_LOCAL_PORT (8081), model name "smollm2".
#
# Skipped when an Ollama answers at $OLLAMA_HOST (default http://127.0.0.1:11434): the router
# then uses the Ollama models (export OLLAMA_HOST before starting it). Also skipped when
# something already serves /v1/models on the port, and when $WILTON_LOCAL_BASE_URL points the
# `local-small` model at another server.
#
#   WILTON_LOCAL_PORT            port (default 8081)
#   WILTON_LOCAL_THREADS         llama.cpp threads (default: llama.cpp's choice)
#   WILTON_LOCAL_START_TIMEOUT_S readiness timeout (default 120)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

port="${WILTON_LOCAL_PORT:-8081}"
ollama="${OLLAMA_HOST:-http://127.0.0.1:11434}"
case "$ollama" in http://*|https://*) ;; *) ollama="http://$ollama" ;; esac  # OLLAMA_HOST may be host:port

_http_ok() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" >/dev/null 2>&1
    fi
}

if pid="$(wilton_pid local-model)"; then
    wilton_log "local-model already running (pid $pid)"
    wilton_wait_http "http://127.0.0.1:$port/v1/models" "${WILTON_LOCAL_START_TIMEOUT_S:-120}" local-model
    exit 0
fi
case "${WILTON_LOCAL_BASE_URL:-}" in
    ""|"http://127.0.0.1:$port/v1"|"http://localhost:$port/v1") ;;
    *)  wilton_log "local-small points at $WILTON_LOCAL_BASE_URL: the bundled llama.cpp server is not started"
        exit 0 ;;
esac
if [ "${WILTON_SKIP_OLLAMA_PROBE:-0}" != "1" ] && _http_ok "$ollama/api/tags"; then
    wilton_log "Ollama answers at $ollama: using it as the local tier (llama.cpp server not started)"
    exit 0
fi
if _http_ok "http://127.0.0.1:$port/v1/models"; then
    wilton_log "something already serves http://127.0.0.1:$port/v1 (not started by these scripts): using it"
    exit 0
fi

py="$(wilton_bin python)"
threads=()
[ -n "${WILTON_LOCAL_THREADS:-}" ] && threads=(--n-threads "$WILTON_LOCAL_THREADS")
argv="$("$py" -m wilton_core.localmodel argv --port "$port" "${threads[@]}")" \
    || wilton_die "the local model cannot start (see above); or skip it and use an Ollama at \$OLLAMA_HOST"
mapfile -t cmd <<<"$argv"
wilton_start local-model "${cmd[@]}"
wilton_wait_http "http://127.0.0.1:$port/v1/models" "${WILTON_LOCAL_START_TIMEOUT_S:-120}" local-model
wilton_log "local model ready: http://127.0.0.1:$port/v1 (model smollm2)"
