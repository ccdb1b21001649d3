#!/usr/bin/env bash
# Shared functions for the WiltonOS process scripts. Source it:  . "$(dirname "$0")/lib.sh"
#
#   WILTON_RUN_DIR   pid files (default ./run)
#   WILTON_LOG_DIR   logs (default $WILTON_RUN_DIR/logs)
#   WILTON_VENV      virtualenv whose console scripts are used (default ./.venv)
#   WILTON_STOP_GRACE_S  seconds between SIGTERM and SIGKILL (default 10)

WILTON_RUN_DIR="${WILTON_RUN_DIR:-./run}"
WILTON_LOG_DIR="${WILTON_LOG_DIR:-$WILTON_RUN_DIR/logs}"
WILTON_VENV="${WILTON_VENV:-./.venv}"
WILTON_STOP_GRACE_S="${WILTON_STOP_GRACE_S:-10}"

wilton_log() { printf '%s %s\n' "[wilton]" "$*" >&2; }

wilton_die() {
    printf '%s %s\n' "[wilton] error:" "$*" >&2
    exit 1
}

wilton_pidfile() { printf '%s/%s.pid' "$WILTON_RUN_DIR" "$1"; }

# wilton_pid NAME -> prints the pid when the pid file names a live process; status 1 otherwise
wilton_pid() {
    local file pid
    file="$(wilton_pidfile "$1")"
    [ -f "$file" ] || return 1
    pid="$(cat "$file" 2>/dev/null)"
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# wilton_bin NAME -> path of a console script in the venv (or dies with what to run)
wilton_bin() {
    local path="$WILTON_VENV/bin/$1"
    [ -x "$path" ] || wilton_die "$path not found: create the venv and 'pip install -e .' (or set WILTON_VENV)"
    printf '%s\n' "$path"
}

# wilton_start NAME CMD [ARGS...] -> starts CMD in the background once: pid file + log file.
# A second call while the pid is alive does nothing (idempotent).
wilton_start() {
    local name="$1"; shift
    local pid log
    if pid="$(wilton_pid "$name")"; then
        wilton_log "$name already running (pid $pid)"
        return 0
    fi
    mkdir -p "$WILTON_RUN_DIR" "$WILTON_LOG_DIR" || wilton_die "cannot create $WILTON_RUN_DIR or $WILTON_LOG_DIR"
    log="$WILTON_LOG_DIR/$name.log"
    # setsid: the process outlives this shell and gets its own process group, so stop can
    # signal the group (a wrapper's children too)
    if command -v setsid >/dev/null 2>&1; then
        nohup setsid "$@" >>"$log" 2>&1 </dev/null &
    else
        nohup "$@" >>"$log" 2>&1 </dev/null &
    fi
    pid=$!
    printf '%s\n' "$pid" >"$(wilton_pidfile "$name")"
    sleep 0.2
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$(wilton_pidfile "$name")"
        tail -n 20 "$log" >&2 2>/dev/null
        wilton_die "$name exited at once; see $log"
    fi
    wilton_log "$name started (pid $pid, log $log)"
}

# wilton_wait_http URL [TIMEOUT_S] [NAME] -> waits for a 2xx; dies after the timeout.
# With NAME, also dies as soon as that process has exited.
wilton_wait_http() {
    local url="$1" timeout="${2:-30}" name="${3:-}"
    local deadline=$(( $(date +%s) + timeout ))
    while :; do
        if command -v curl >/dev/null 2>&1; then
            curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        else
            python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url" \
                >/dev/null 2>&1 && return 0
        fi
        if [ -n "$name" ] && ! wilton_pid "$name" >/dev/null; then
            wilton_die "$name is not running; see $WILTON_LOG_DIR/$name.log"
        fi
        [ "$(date +%s)" -ge "$deadline" ] && wilton_die "$url not ready after ${timeout}s${name:+; see $WILTON_LOG_DIR/$name.log}"
        sleep 0.3
    done
}

# wilton_progress LABEL EXPECTED LOG CMD [ARGS...] -> runs CMD (output to LOG) in the foreground of
# the script while saying what happens, how long it usually takes, and how far it is: on a
# terminal a spinner with the elapsed time and the log's last step, updated in place (every
# WILTON_PROGRESS_EVERY_S, default 0.2); otherwise
# one line every WILTON_PROGRESS_EVERY_S seconds (default 30). Returns CMD's status; on failure
# the end of LOG goes to stderr.
_wilton_dur() { printf '%dm%02ds' $(( $1 / 60 )) $(( $1 % 60 )); }

wilton_progress() {
    local label="$1" expected="$2" log="$3"; shift 3
    local spin='|/-\' tick=0 start=$SECONDS pid rc=0 every every_ticks tty=0 last elapsed
    mkdir -p "$(dirname "$log")" || wilton_die "cannot create $(dirname "$log")"
    : >"$log"
    [ -t 2 ] && tty=1
    if [ "$tty" = 1 ]; then every="${WILTON_PROGRESS_EVERY_S:-0.2}"; else every="${WILTON_PROGRESS_EVERY_S:-30}"; fi
    # ticks of 0.2 s between two reports (awk: bash has no fractional arithmetic)
    every_ticks="$(awk -v e="$every" 'BEGIN { t = int(e * 5 + 0.5); print (t < 1 ? 1 : t) }')"
    wilton_log "$label: usually $expected; full output in $log"
    "$@" >>"$log" 2>&1 </dev/null &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.2
        tick=$(( tick + 1 ))
        [ $(( tick % every_ticks )) -eq 0 ] || continue
        elapsed=$(( SECONDS - start ))
        # pip's own milestones (Collecting, Building wheel ..., Installing ...), last one only
        last="$(grep -E '^ *(Collecting|Downloading|Building|Installing|Successfully|Preparing|Obtaining)' "$log" \
            2>/dev/null | tail -n 1 | sed -e 's/^ *//' | cut -c 1-70 || true)"
        if [ "$tty" = 1 ]; then
            printf '\r[wilton] %s %s %s  %s\033[K' "${spin:$(( tick / every_ticks % 4 )):1}" "$label" \
                "$(_wilton_dur "$elapsed")" "$last" >&2
        else
            wilton_log "... still $label: $(_wilton_dur "$elapsed") so far${last:+ (last: $last)}"
        fi
    done
    wait "$pid" || rc=$?
    elapsed=$(( SECONDS - start ))
    [ "$tty" = 1 ] && printf '\r\033[K' >&2
    if [ "$rc" -ne 0 ]; then
        tail -n 30 "$log" >&2 2>/dev/null
        wilton_log "$label failed (exit $rc) after $(_wilton_dur "$elapsed"); full output in $log"
        return "$rc"
    fi
    wilton_log "$label: done in $(_wilton_dur "$elapsed")"
}

# wilton_stop NAME [GRACE_S] -> SIGTERM, then SIGKILL after the grace; removes the pid file.
wilton_stop() {
    local name="$1" grace="${2:-$WILTON_STOP_GRACE_S}"
    local pid waited=0
    if ! pid="$(wilton_pid "$name")"; then
        rm -f "$(wilton_pidfile "$name")"
        wilton_log "$name not running"
        return 0
    fi
    # the group first (started with setsid), the pid itself as a fallback
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $(( grace * 10 )) ]; then
            wilton_log "$name ignored SIGTERM for ${grace}s: SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.1
        waited=$(( waited + 1 ))
    done
    rm -f "$(wilton_pidfile "$name")"
    wilton_log "$name stopped"
}
