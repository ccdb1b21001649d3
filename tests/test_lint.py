"""Static checks run with the tests: ruff on everything, mypy --strict on the pure core."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed (pip install -e .[dev])")
    return found


def test_ruff_is_clean():
    r = subprocess.run([_tool("ruff"), "check", "wilton_core", "tests", "bench", "tools"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:]


def test_mypy_strict_on_the_core():
    r = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:]
