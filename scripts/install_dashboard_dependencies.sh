#!/usr/bin/env bash
# Install what the dashboard needs on Debian/Ubuntu: Prometheus (and promtool) from apt.
# Grafana is not in Debian's archive: install it from grafana.com (APT repository
# https://apt.grafana.com) or run it with Docker:  docker compose up -d grafana prometheus
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    wilton_log "prometheus already installed: $(prometheus --version 2>&1 | head -n 1)"
else
    command -v apt-get >/dev/null 2>&1 || wilton_die "no apt-get: install Prometheus from https://prometheus.io/download/"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || wilton_die "run as root or install sudo to apt-get install prometheus"
        sudo="sudo"
    fi
    $sudo apt-get update -q || wilton_die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q prometheus || wilton_die "apt-get install prometheus failed"
    # Debian starts a system Prometheus on :9090; ours uses the repository's config instead
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        wilton_log "note: the Debian 'prometheus' service is running on :9090; stop it (systemctl stop prometheus) before scripts/start_dashboard.sh"
    fi
fi

if command -v grafana-server >/dev/null 2>&1 || command -v grafana >/dev/null 2>&1; then
    wilton_log "grafana found"
else
    wilton_log "grafana not installed: it does not come from Debian. Install it from https://grafana.com/grafana/download"
    wilton_log "  (APT repository https://apt.grafana.com), or run it with Docker: docker compose up -d grafana prometheus"
fi
