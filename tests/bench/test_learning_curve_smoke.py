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


def test_small_learning_curve_from_shadow_labels(bench: Any, tmp_path: Path) -> None:
    """No client feedback: the router's shadow judging (share 0.2, a fake judge on the same
    upstream that follows the labels) is the only source of labels, each scoring both tiers."""
    lc = bench("learning_curve")
    out = tmp_path / "curve.json"
    assert lc.main(["--small", "--labels", "shadow", "--json", str(out)]) == 0  # fails when the candidate does not rise
    res = json.loads(out.read_text())
    first, last = res["points"][0], res["points"][-1]
    assert res["labels_mode"] == "shadow" and first["labels"] == 0
    assert last["traffic"]["feedback_ok"] == 0 and last["traffic"]["judge_served"] == 0  # the judge serves no client
    ag, sh = last["agreement"], last["shadow"]
    assert ag["labels"] == last["labels_held"] >= 300 and last["refit_labels"] == 300
    assert ag["agree_with_truth"] == ag["labels"]  # A/B un-swapped right, both tiers scored
    assert 0 < ag["swapped"] < ag["labels"] and 0 < ag["served_local"] < ag["labels"]  # both orders, both tiers served
    assert sh["judged"] == ag["labels"] and sh["judge_unparsable"] == 0 and not any(sh["failed"].values())
    assert sh["skipped"]["budget"] == 0 and sh["spend_usd"] > 0
    assert last["fills"]["anchor"]["test_pgr_25"] > first["test_pgr_25"] + 0.05
    if last["published"]:  # the gate's call on 20% of the labels (random which prompts were sampled)
        assert last["heldback_pgr_25_after"] > last["heldback_pgr_25_before"] and last["version"] == 1
