"""Difficulty scorer: range, determinism, sanity ordering, explain shape, the shipped artefact."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from wilton_core.core.difficulty import (
    DifficultyScorer,
    explain_difficulty,
    load_default_scorer,
    score_difficulty,
)
from wilton_core.core.difficulty_eval import (
    cpt,
    default_routing_data,
    is_heldout,
    load_routing_rows,
    oracle_pgr_curve,
    pgr_at,
    pgr_curve,
    random_pgr_curve,
    routing_quality,
)
from wilton_core.core.features import HAND_FEATURE_NAMES
from wilton_core.core.intent import Intent

DATA = default_routing_data()
# Measured on the held-out split with the shipped artefact: PGR@25% = 0.444 (2,083 rows). The
# model is chosen by the leave-subject-out figure and the OOD guard by the held-out fields
# (docs/routing_quality.md), not by this split: the v1 scorer scored 0.519 here and 0.316 on
# unseen subjects. The floor leaves room for float noise only; a broken or stale artefact falls
# far below it (random: 0.25).
HELDOUT_PGR25_FLOOR = 0.435

PROOF = (
    "Prove step by step that for every integer n >= 1 the sum 1^3 + 2^3 + ... + n^3 equals "
    "(n(n+1)/2)^2. First state the induction hypothesis, then derive the inductive step, and "
    "finally explain why the base case n = 1 holds. Then compute the value for n = 37 and show "
    "that it is not divisible by 7, justifying each step."
)

PROMPTS = [
    "hi",
    "",
    "Escreva um codigo Python",
    PROOF,
    "Which of the following is not a prime number?\nA. 2\nB. 3\nC. 9\nD. 11\nAnswer:",
    "x" * 50_000,
    [{"role": "user", "content": [{"type": "text", "text": "describe"},
                                  {"type": "image_url", "image_url": {"url": "https://e.x/a.png"}}]}],
]


@pytest.fixture(scope="module")
def scorer() -> DifficultyScorer:
    return load_default_scorer()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_score_is_in_unit_interval_and_deterministic(scorer: DifficultyScorer, prompt: object) -> None:
    a = scorer.score(prompt)  # type: ignore[arg-type]
    b = scorer.score(prompt)  # type: ignore[arg-type]
    assert 0.0 <= a <= 1.0
    assert a == b
    assert math.isfinite(a)


def test_hard_multistep_math_scores_above_greeting(scorer: DifficultyScorer) -> None:
    assert scorer.score(PROOF) > scorer.score("hi") + 0.05
    assert scorer.score("/status") < scorer.score("hi")
    easy = "What is the capital of France?"
    hard = ("A train leaves at 3 pm at 60 km/h and a second one at 4 pm at 80 km/h on the same"
            " track. Explain step by step when and where the second catches up, and prove it.")
    assert scorer.score(hard) > scorer.score(easy)


def test_module_functions_use_the_shipped_scorer(scorer: DifficultyScorer) -> None:
    assert score_difficulty(PROOF) == scorer.score(PROOF)
    assert load_default_scorer() is scorer  # loaded once
    msgs = [{"role": "user", "content": PROOF}]
    assert score_difficulty(msgs) == pytest.approx(scorer.score(PROOF))


def test_explain_shape_and_consistency(scorer: DifficultyScorer) -> None:
    e = explain_difficulty(PROOF)
    assert e["score"] == scorer.score(PROOF)
    assert e["intent"] == "chat"
    assert [f["name"] for f in e["features"]] == list(HAND_FEATURE_NAMES)
    for f in e["features"] + e["ngrams"]:
        assert set(f) == {"name", "value", "strong", "weak", "contribution"}
        assert f["contribution"] == pytest.approx(f["strong"] - f["weak"])
    # The learned heads' logits are the sum of the listed parts (to the float32 rounding of the
    # table `score` reads, where each key's weights are folded).
    assert e["ngrams_matched"] >= len(e["ngrams"]) > 0
    for head in ("strong", "weak"):
        parts = (e["bias"][head] + sum(f[head] for f in e["features"]) + e["ngram_total"][head]
                 + e["word_vector"][head])
        assert e[f"logit_{head}"] == pytest.approx(parts, abs=1e-5)
    assert 0 <= e["p_strong"] <= 1 and 0 <= e["p_weak"] <= 1
    assert 0.0 <= e["ood"]["trust"] <= 1.0
    if e["ood"]["trust"] == 1.0:
        assert e["learned_score"] == pytest.approx((1 + e["p_strong"] - e["p_weak"]) / 2)


def test_ood_guard_falls_back_to_the_length_prior(scorer: DifficultyScorer) -> None:
    # No word of the table: similarity 0, trust 0, the gain is the length prior's alone.
    text = "Quantos ovos são necessários para três bolos de chocolate grandes? Responda rápido."
    e = scorer.explain(text)
    assert e["ood"]["trust"] == 0.0
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    g_prior = sig(e["prior_logits"]["strong"]) - sig(e["prior_logits"]["weak"])
    ml, sl, mp, sp = scorer.gain_stats
    assert e["learned_score"] == pytest.approx((1 + ml + sl * (g_prior - mp) / sp) / 2)
    # Same words, only the learned part changed: the OOD score does not move, an in-distribution one does.
    import dataclasses

    import numpy as np

    shifted = dataclasses.replace(scorer, bias=scorer.bias + np.array([2.0, -2.0]))
    assert shifted.score(text) == scorer.score(text)
    if not DATA.exists():
        return
    held = [r.prompt for r in load_routing_rows(DATA) if is_heldout(r.id)][::7]  # the file is sorted by subject
    trusts = [scorer.explain(p)["ood"]["trust"] for p in held]
    # Calibrated on the training prompts: 0 below their median similarity, 1 above the 95th
    # percentile (unseen prompts of the same subjects sit a little further from the centroids).
    assert 0.35 < sum(t > 0 for t in trusts) / len(trusts) < 0.6
    assert 0.0 < sum(t == 1.0 for t in trusts) / len(trusts) < 0.15
    trusted = max(zip(trusts, held, strict=True))[1]
    assert shifted.score(trusted) > scorer.score(trusted)


def test_trust_ramp_is_monotone(scorer: DifficultyScorer) -> None:
    lo, hi = scorer.ood_lo, scorer.ood_hi
    assert lo < hi
    ts = [scorer.trust(lo + (hi - lo) * x) for x in (-0.5, 0.0, 0.25, 0.5, 1.0, 1.5)]
    assert ts == sorted(ts) and ts[0] == 0.0 and ts[-1] == 1.0


def test_batch_scores_equal_runtime_scores(scorer: DifficultyScorer) -> None:
    """The bench and the training tool score in batch: it must be the router's score."""
    from wilton_core.core.difficulty_train import batch_scores, featurize

    texts = [PROOF, "hi", "Escreva um codigo Python", "Which of the following is not a prime?\nA. 2\nB. 9",
             "Réinitialise la conversation", "x" * 5000]
    batch = batch_scores(scorer, featurize(texts, scorer.vectors))
    assert list(batch) == pytest.approx([scorer.score(t) for t in texts], abs=1e-12)


def test_priors_shift_the_learned_score(scorer: DifficultyScorer) -> None:
    text = "Write something about lists, with examples from everyday life and a short summary."
    chat = scorer.explain(text, intent=Intent.CHAT)
    code = scorer.explain(text, intent=Intent.CODE)
    system = scorer.explain(text, intent=Intent.SYSTEM)
    assert code["learned_score"] == chat["learned_score"]
    assert system["score"] < chat["score"] < code["score"]
    for e in (chat, code, system):
        z = math.log(e["learned_score"] / (1 - e["learned_score"])) + sum(e["priors"].values())
        assert e["score"] == pytest.approx(1 / (1 + math.exp(-z)))
    assert chat["priors"] == {"intent": 0.0, "short_prompt": 0.0, "reasoning_request": 0.0}
    proof = scorer.explain(PROOF)
    assert proof["priors"]["reasoning_request"] > 0
    assert scorer.explain("hi")["priors"]["short_prompt"] < 0


def test_artefact_roundtrip(tmp_path: Path, scorer: DifficultyScorer) -> None:
    out = tmp_path / "d.npz"
    scorer.save_npz(out)
    again = DifficultyScorer.from_npz(out)
    for p in (PROOF, "hi", "Escreva um codigo Python"):
        assert again.score(p) == pytest.approx(scorer.score(p), abs=1e-6)


def test_wrong_feature_count_is_refused(scorer: DifficultyScorer) -> None:
    import dataclasses

    import numpy as np

    with pytest.raises(ValueError, match="retrain"):
        dataclasses.replace(scorer, w_hand=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="retrain"):
        dataclasses.replace(scorer, w_vector=np.zeros((3, 2)))


def test_shipped_model_metadata(scorer: DifficultyScorer) -> None:
    meta = scorer.metadata
    assert meta["train_rows"] > 4000 and meta["heldout_rows"] > 1500
    assert len(scorer.vocab) == meta["vocab_size"] > 1000
    assert meta["config"]["guard"] is True and scorer.vectors.dims == len(scorer.w_vector)


def test_shipped_artefacts_stay_small() -> None:
    from importlib import resources

    data = resources.files("wilton_core.data")
    sizes = {n: len(data.joinpath(n).read_bytes()) for n in ("difficulty.npz", "word_vectors.npz")}
    assert sum(sizes.values()) < 4_000_000, sizes


# -- PGR / CPT arithmetic ----------------------------------------------------------------------


def test_pgr_curve_small_example() -> None:
    strong = [1.0, 1.0, 0.0, 1.0]
    weak = [0.0, 1.0, 1.0, 0.0]  # gap = (3 - 2) / 4 = 0.25
    curve = pgr_curve([0.9, 0.1, 0.5, 0.2], strong, weak)
    # order: 0 (+1), 2 (-1), 3 (+1), 1 (0)
    assert curve == pytest.approx([0.0, 1.0, 0.0, 1.0, 1.0])
    oracle = oracle_pgr_curve(strong, weak)
    assert oracle == pytest.approx([0.0, 1.0, 2.0, 2.0, 1.0])
    assert pgr_at(curve, 0.25) == pytest.approx(1.0)
    assert cpt(oracle, 0.8) == 0.25
    assert cpt([0.0, 0.1, 0.2], 0.5) is None
    assert random_pgr_curve(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    q = routing_quality(random_pgr_curve(100))
    assert (q.pgr_25, q.cpt_50, q.cpt_80) == (0.25, 0.5, 0.8)


def test_pgr_rejects_degenerate_input() -> None:
    with pytest.raises(ValueError):
        pgr_curve([0.1], [1.0], [1.0])
    with pytest.raises(ValueError):
        pgr_curve([], [], [])


def test_split_is_stable() -> None:
    ids = [f"mmlu/x/{i}" for i in range(2000)]
    held = [i for i in ids if is_heldout(i)]
    assert 0.25 < len(held) / len(ids) < 0.35
    assert held == [i for i in ids if is_heldout(i)]


@pytest.mark.skipif(not DATA.exists(), reason=f"routing data not found at {DATA} (set WILTON_ROUTING_DATA)")
def test_shipped_artefact_reproduces_heldout_pgr(scorer: DifficultyScorer) -> None:
    held = [r for r in load_routing_rows(DATA) if is_heldout(r.id)]
    assert len(held) == scorer.metadata["heldout_rows"]
    strong = [r.strong for r in held]
    weak = [r.weak for r in held]
    q = routing_quality(pgr_curve([scorer.score(r.prompt) for r in held], strong, weak))
    assert q.pgr_25 >= HELDOUT_PGR25_FLOOR, q
    assert q.pgr_25 == pytest.approx(scorer.metadata["heldout"]["pgr_25"], abs=1e-9)
    assert q.pgr_20 > 0.3 and q.pgr_30 > 0.45


@pytest.mark.slow
@pytest.mark.skipif(not DATA.exists(), reason=f"routing data not found at {DATA} (set WILTON_ROUTING_DATA)")
def test_training_tool_reproduces_the_shipped_artefact(tmp_path: Path, scorer: DifficultyScorer) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "retrained.npz"
    subprocess.run(
        [sys.executable, str(root / "tools" / "train_difficulty.py"), "--data", str(DATA), "--out", str(out)],
        check=True, capture_output=True, timeout=240,
    )
    again = DifficultyScorer.from_npz(out)
    assert again.metadata == scorer.metadata
    assert again.vocab.keys() == scorer.vocab.keys()
    # Same data, same seed, same steps: the weights agree to float round-off. Not bit for bit:
    # numpy's pairwise/SIMD summation order differs across versions and CPUs (seen: the last bit).
    # The request path reads the weights as fixed-point fields (2**-21 of each field's range,
    # difficulty._Folded), so a last-bit difference can move a value by one quantum: ~1e-8 here.
    for p in (PROOF, "hi", "Which of the following is not a prime number?\nA. 2\nB. 9\nAnswer:"):
        assert again.score(p) == pytest.approx(scorer.score(p), rel=1e-6, abs=1e-9)


def test_capitalised_words_and_options_features() -> None:
    from wilton_core.core.features import hand_features

    text = "Hello World. I am Bob, São Paulo.\nA) x, y\nB) ÉCOLE\nC) İstanbul"
    f = dict(zip(HAND_FEATURE_NAMES, hand_features(text), strict=True))
    # 14 words; title-case with 2+ letters: Hello World Bob São Paulo İstanbul (not I, A, B, C, ÉCOLE).
    assert f["capitalised_share"] == pytest.approx(6 / 14)
    assert f["has_options"] == 1.0 and f["paired_options"] == pytest.approx(1 / 3)
    assert f["stem_share"] == pytest.approx(text.index("A)") / len(text))
    assert dict(zip(HAND_FEATURE_NAMES, hand_features("no options here"), strict=True))["stem_share"] == 1.0


def test_scores_are_identical_across_processes() -> None:
    # Replicas must agree to the bit: the request's keys are a set, whose order follows the
    # process's string hash seed, and the folded table sums in float32 (order-sensitive).
    import os
    import subprocess
    import sys

    texts = [p for p in PROMPTS if isinstance(p, str) and len(p) < 1000] + [
        "Explain the difference between a mutex and a semaphore, with an example of each."]
    code = f"from wilton_core.core.difficulty import load_default_scorer as l; print([l().score(p) for p in {texts!r}])"
    outs = {
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1, outs


def test_reasoning_phrases_count_only_at_the_start_of_a_word() -> None:
    from wilton_core.core.difficulty import DEFAULT_INTENT_PRIOR, prior_log_odds
    from wilton_core.core.intent import Intent

    def reasoning(text: str) -> float:
        return prior_log_odds(text, Intent.CHAT, DEFAULT_INTENT_PRIOR)["reasoning_request"]

    assert reasoning("Please improve the wording of this email.") == 0.0  # not "prove the"
    assert reasoning("Prove Fermat's little theorem.") == 1.0
    assert reasoning("Prove that sqrt(2) is irrational, step by step.") == 2.0
    assert reasoning("Demonstre que 2 é primo.") == 1.0


def test_a_short_proof_request_is_not_discounted_as_short(scorer: DifficultyScorer) -> None:
    proof = scorer.explain("Prove Fermat's little theorem.")
    assert proof["priors"]["short_prompt"] == 0.0 and proof["priors"]["reasoning_request"] == 1.0
    assert scorer.explain("What is 2+2?")["priors"]["short_prompt"] < 0
    # harder than small talk of the same length, and on the API side of an even split
    assert proof["score"] > scorer.score("Tell me a joke about cats please.") + 0.2
    assert proof["score"] > 0.5


def _unfolded_heads(scorer: DifficultyScorer, keys: set[str], hand: list[float]) -> tuple[float, float, float]:
    """The learned logits and the OOD similarity straight from the model's float64 arrays."""
    import numpy as np

    ls, lw = (float(x) for x in scorer.bias + np.asarray(hand) @ scorer.w_hand)
    rows = [scorer.vocab[k] for k in keys if k in scorer.vocab]
    if rows:
        norm = math.sqrt(float(scorer.idf[rows] @ scorer.idf[rows]))
        s, w = (scorer.idf[rows] @ scorer.w_ngram[rows]) / norm
        ls, lw = ls + float(s), lw + float(w)
    words = [scorer.vectors.index[k] for k in keys if k in scorer.vectors.index]
    if not words:
        return ls, lw, 0.0
    total = scorer.vectors.table[words].sum(axis=0)
    vs, vw = (total / len(words)) @ scorer.w_vector
    cos = scorer.ood_centroids.astype(np.float64) @ total / float(np.linalg.norm(total))
    return ls + float(vs), lw + float(vw), float(cos.max())


@pytest.mark.parametrize("n_keys", [0, 12, 1023, 1024, 2500])
def test_fixed_point_heads_match_the_float_model(scorer: DifficultyScorer, n_keys: int) -> None:
    """The request path sums keys as packed fixed-point ints (difficulty._Folded), in blocks of
    1023 keys beyond which a field would carry into the next; any count matches the float model."""
    known = sorted(set(scorer.vocab) | set(scorer.vectors.index))
    keys = set(known[:: max(1, len(known) // max(1, n_keys))][:n_keys]) | {"not-a-known-key"}
    hand = [0.1 * (i % 5) for i in range(len(HAND_FEATURE_NAMES))]
    h = scorer.heads(keys, hand)
    ls, lw, sim = _unfolded_heads(scorer, keys, hand)
    assert h.strong == pytest.approx(ls, abs=1e-5)
    assert h.weak == pytest.approx(lw, abs=1e-5)
    assert h.similarity == pytest.approx(sim, abs=1e-5)


def test_non_finite_weights_are_refused(scorer: DifficultyScorer) -> None:
    """A learned version with NaN weights must fail to load (the router keeps its scorer), not
    pack into fixed-point garbage."""
    import dataclasses

    import numpy as np

    bad = scorer.w_ngram.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        dataclasses.replace(scorer, w_ngram=bad)
