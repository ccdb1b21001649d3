from __future__ import annotations

import pytest

from wilton_core.audio.wer import normalise, wer


def test_normalise():
    assert normalise("Set a timer for 10 minutes.") == ["set", "a", "timer", "for", "ten", "minutes"]
    assert normalise("My favourite colour is BLUE!") == ["my", "favorite", "color", "is", "blue"]


@pytest.mark.parametrize(("ref", "hyp", "expected"), [
    ("a b c d", "a b c d", 0.0), ("a b c d", "a x c d", 0.25), ("a b c d", "a c d", 0.25),
    ("a b c d", "a b c d e f", 0.5), ("a b", "", 1.0), ("", "", 0.0), ("", "x", 1.0),
    ("Turn off the lights in the kitchen.", "Turn off the light in the kitchen.", 1 / 7),
])
def test_wer(ref, hyp, expected):
    assert wer(ref, hyp) == pytest.approx(expected)
