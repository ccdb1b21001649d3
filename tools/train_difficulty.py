"""Train the shipped difficulty model from the labelled routing data.

    python tools/train_difficulty.py [--data /work/shared/data/routing_dev.jsonl] \
        [--out wilton_core/data/difficulty.npz]

Deterministic: a hash split of the ids (70% train / 30% held out, never trained on), a sorted
vocabulary, zero-initialised weights and a fixed number of full-batch Adam steps. Two L2-
regularised logistic regressions share the inputs: P(strong correct) and P(weak correct); the
scorer ranks by their difference (see wilton_core/core/difficulty.py). Takes ~20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from wilton_core.core.difficulty import DifficultyScorer
from wilton_core.core.difficulty_eval import (
    default_routing_data,
    is_heldout,
    load_routing_rows,
    pgr_curve,
    routing_quality,
)
from wilton_core.core.features import HAND_FEATURE_NAMES, extract

DEFAULT_DATA = str(default_routing_data())
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "wilton_core" / "data" / "difficulty.npz"

MIN_DF = 5          # n-grams seen in fewer training prompts are dropped (memorisation guard)
L2_NGRAM = 30.0     # strong: the n-grams are many and MMLU-flavoured
L2_HAND = 0.1       # weak: a few structural features, the part expected to generalise
STEPS = 300
LEARNING_RATE = 0.05


class Sparse:
    """Row-normalised binary n-gram presence matrix in CSR form (numpy only, no scipy)."""

    def __init__(self, key_sets: list[set[str]], vocab: dict[str, int]) -> None:
        ind: list[int] = []
        ptr = [0]
        dat: list[float] = []
        for keys in key_sets:
            ids = sorted(vocab[k] for k in keys if k in vocab)
            norm = 1.0 / math.sqrt(len(keys)) if keys else 0.0
            ind.extend(ids)
            dat.extend([norm] * len(ids))
            ptr.append(len(ind))
        self.ind = np.array(ind, dtype=np.int64)
        self.ptr = np.array(ptr, dtype=np.int64)
        self.dat = np.array(dat, dtype=np.float64)
        self.row = np.repeat(np.arange(len(key_sets)), np.diff(self.ptr))
        self.n_rows = len(key_sets)
        self.n_cols = len(vocab)

    def matvec(self, w: np.ndarray) -> np.ndarray:
        return np.bincount(self.row, weights=self.dat * w[self.ind], minlength=self.n_rows)

    def rmatvec(self, r: np.ndarray) -> np.ndarray:
        return np.bincount(self.ind, weights=self.dat * r[self.row], minlength=self.n_cols)


def train_head(x: Sparse, h: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    n = len(y)
    params = [np.zeros(x.n_cols), np.zeros(h.shape[1]), np.zeros(1)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, STEPS + 1):
        z = x.matvec(params[0]) + h @ params[1] + params[2][0]
        r = (1.0 / (1.0 + np.exp(-z)) - y) / n
        grads = [x.rmatvec(r) + L2_NGRAM * params[0] / n, h.T @ r + L2_HAND * params[1] / n,
                 np.array([r.sum()])]
        for k, g in enumerate(grads):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            params[k] -= LEARNING_RATE * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
    return params[0], params[1], float(params[2][0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    data_bytes = Path(args.data).read_bytes()
    rows = load_routing_rows(args.data)
    train = [r for r in rows if not is_heldout(r.id)]
    held = [r for r in rows if is_heldout(r.id)]
    extracted = [extract(r.prompt) for r in train]
    keys = [k for k, _ in extracted]
    df: Counter[str] = Counter()
    for ks in keys:
        df.update(ks)
    vocab = {k: i for i, k in enumerate(sorted(k for k, c in df.items() if c >= MIN_DF))}
    x = Sparse(keys, vocab)
    h = np.array([f for _, f in extracted])
    ws, hs, bs = train_head(x, h, np.array([r.strong for r in train]))
    ww, hw, bw = train_head(x, h, np.array([r.weak for r in train]))
    names = sorted(vocab)
    # Keys whose two weights are both ~0 change no score: dropping them shrinks the artefact.
    keep = [k for k in names if abs(ws[vocab[k]]) > 1e-4 or abs(ww[vocab[k]]) > 1e-4]
    metadata = {
        "trained_on": Path(args.data).name,
        "data_sha256": hashlib.sha256(data_bytes).hexdigest(),
        "split": "sha256(id) held out share 0.3",
        "train_rows": len(train),
        "heldout_rows": len(held),
        "min_df": MIN_DF, "l2_ngram": L2_NGRAM, "l2_hand": L2_HAND, "steps": STEPS,
        "vocab_size": len(keep),
    }
    scorer = DifficultyScorer(
        vocab={k: (float(np.float32(ws[vocab[k]])), float(np.float32(ww[vocab[k]]))) for k in keep},
        hand_strong=tuple(float(a) for a in hs), hand_weak=tuple(float(b) for b in hw),
        bias_strong=bs, bias_weak=bw, metadata=metadata,
    )
    curve = pgr_curve([scorer.score(r.prompt) for r in held], [r.strong for r in held], [r.weak for r in held])
    q = routing_quality(curve)
    scorer = DifficultyScorer(
        vocab=scorer.vocab, hand_strong=scorer.hand_strong, hand_weak=scorer.hand_weak,
        bias_strong=bs, bias_weak=bw, metadata={**metadata, "heldout": q.as_dict()},
    )
    scorer.save_npz(args.out)
    print(f"train {len(train)} rows, held out {len(held)} rows, vocab {len(keep)}, hand {len(HAND_FEATURE_NAMES)}")
    print(f"held-out PGR@20 {q.pgr_20:.3f}  PGR@25 {q.pgr_25:.3f}  PGR@30 {q.pgr_30:.3f}"
          f"  CPT(50%) {q.cpt_50}  CPT(80%) {q.cpt_80}")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
