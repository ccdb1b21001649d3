#!/usr/bin/env bash
# Start wilton-router (the OpenAI-compatible gateway) on $WILTON_ROUTER_PORT (8080).
# Extra arguments go to wilton-router, e.g.  --config wilton.toml
set -euo pipefail
. "$(dirname "$0")/lib.sh"
port="${WILTON_ROUTER_PORT:-8080}"
# Beyond loopback the router needs a master key (docs/access.md): generate one once, kept 0600.
case "${WILTON_HOST:-127.0.0.1}" in
  127.*|localhost|::1) ;;
  *)
    if [ -z "${WILTON_MASTER_KEY:-}" ]; then
      keyfile="$WILTON_RUN_DIR/master.key"
      if [ ! -s "$keyfile" ]; then
        mkdir -p "$WILTON_RUN_DIR"
        (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(24))' > "$keyfile")
        wilton_log "generated a master key in $keyfile (clients send it as 'Authorization: Bearer ...')"
      fi
      WILTON_MASTER_KEY="$(cat "$keyfile")"
      export WILTON_MASTER_KEY
    fi
    ;;
esac
wilton_start router "$(wilton_bin wilton-router)" --port "$port" "$@"
wilton_wait_http "http://127.0.0.1:$port/healthz" "${WILTON_START_TIMEOUT_S:-30}" router
wilton_log "router ready: http://127.0.0.1:$port/v1"
