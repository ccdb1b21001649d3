#!/usr/bin/env bash
# Start Prometheus with the repository's config and rules (:9090), and Grafana (:3000) with the
# provisioned "WiltonOS Quantum Balance" dashboard when Grafana is installed; otherwise say how
# to get it. Needs GF_SECURITY_ADMIN_PASSWORD in the environment for Grafana.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root="$(cd "$(dirname "$0")/.." && pwd)"
prom_port="${WILTON_PROMETHEUS_PORT:-9090}"
graf_port="${WILTON_GRAFANA_PORT:-3000}"
started=0

if command -v prometheus >/dev/null 2>&1; then
    mkdir -p "$WILTON_RUN_DIR/prometheus-data"
    wilton_start prometheus "$(command -v prometheus)" \
        --config.file="$root/prometheus/prometheus.yml" \
        --storage.tsdb.path="$WILTON_RUN_DIR/prometheus-data" \
        --web.listen-address="127.0.0.1:$prom_port"
    wilton_wait_http "http://127.0.0.1:$prom_port/-/ready" "${WILTON_START_TIMEOUT_S:-30}" prometheus
    wilton_log "prometheus ready: http://127.0.0.1:$prom_port"
    started=1
else
    wilton_log "prometheus not installed: run scripts/install_dashboard_dependencies.sh"
fi

grafana_bin="$(command -v grafana-server || command -v grafana || true)"
if [ -n "$grafana_bin" ]; then
    [ -n "${GF_SECURITY_ADMIN_PASSWORD:-}" ] || wilton_die "set GF_SECURITY_ADMIN_PASSWORD (the Grafana admin password) first"
    homepath="${GRAFANA_HOME:-/usr/share/grafana}"
    [ -d "$homepath" ] || wilton_die "Grafana home $homepath not found: set GRAFANA_HOME"
    mkdir -p "$WILTON_RUN_DIR/grafana-data"
    args=(--homepath "$homepath")
    case "$(basename "$grafana_bin")" in grafana) args=(server "${args[@]}") ;; esac
    # Grafana expands $PROMETHEUS_URL and $GRAFANA_DASHBOARDS_DIR inside the provisioning files
    PROMETHEUS_URL="http://127.0.0.1:$prom_port" \
    GRAFANA_DASHBOARDS_DIR="$root/grafana/dashboards" \
    GF_PATHS_PROVISIONING="$root/grafana/provisioning" \
    GF_PATHS_DATA="$WILTON_RUN_DIR/grafana-data" \
    GF_PATHS_LOGS="$WILTON_LOG_DIR" \
    GF_SERVER_HTTP_ADDR=127.0.0.1 \
    GF_SERVER_HTTP_PORT="$graf_port" \
    GF_USERS_ALLOW_SIGN_UP=false \
        wilton_start grafana "$grafana_bin" "${args[@]}"
    wilton_wait_http "http://127.0.0.1:$graf_port/api/health" "${WILTON_START_TIMEOUT_S:-60}" grafana
    wilton_log "grafana ready: http://127.0.0.1:$graf_port/d/wiltonos-quantum-balance"
    started=1
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    wilton_log "grafana not installed locally; with Docker run: docker compose up -d grafana prometheus"
else
    wilton_log "grafana not installed: get it from https://grafana.com/grafana/download or run docker compose"
fi

[ "$started" -eq 1 ] || wilton_die "neither Prometheus nor Grafana is available: run scripts/install_dashboard_dependencies.sh"
