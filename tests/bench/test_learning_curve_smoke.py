"""bench/learning_curve.py --small: the whole loop (real router process, fake upstreams, feedback,
the daemon's refit function) runs in seconds and the test-set PGR@25% rises after learning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_small_learning_curve_rises(bench: Any, tmp_path: Path) -> None:
    lc = bench("learning_curve")
    out = tmp_path / "curve.json"
    assert lc.main(["--small", "--json", str(out)]) == 0  # main itself fails when the curve does not rise
    res = json.loads(out.read_text())
    first, last = res["points"][0], res["points"][-1]
    assert first["labels"] == 0 and abs(first["test_pgr_25"] - 0.25) < 0.08  # the shipped scorer: random level
    assert last["published"] and last["version"] == 1
    assert last["heldback_pgr_25_after"] > last["heldback_pgr_25_before"]  # the refit's own rule held
    assert last["test_pgr_25"] > first["test_pgr_25"] + 0.05
    assert last["traffic"]["feedback_ok"] == last["labels"] == 300
    assert last["traffic"]["api"] > 0 and last["traffic"]["local"] > last["traffic"]["api"]
