"""Train the shipped difficulty model from the labelled routing data.

    python tools/train_difficulty.py [--data /work/shared/data/routing_dev.jsonl] \
        [--out wilton_core/data/difficulty.npz] [--vectors wilton_core/data/word_vectors.npz]

Deterministic: a hash split of the ids (70% train / 30% held out, never trained on), a sorted
vocabulary, zero-initialised weights and a fixed number of full-batch Adam steps
(`wilton_core/core/difficulty_train.py`). Two heads, P(strong correct) and P(weak correct), over
TF-IDF word n-grams, the hand features and the mean static word vector (the table made once by
`tools/distill_word_vectors.py`), plus their length/structure priors and the OOD statistics
(see wilton_core/core/difficulty.py). The configuration was chosen by the leave-subject-out
figure of `bench/routing_quality.py`, not by the hash split.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from wilton_core.core.difficulty import WordVectors
from wilton_core.core.difficulty_eval import (
    default_routing_data,
    is_heldout,
    load_routing_rows,
    pgr_curve,
    routing_quality,
)
from wilton_core.core.difficulty_train import TrainConfig, featurize, fit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = str(default_routing_data())
DEFAULT_OUT = ROOT / "wilton_core" / "data" / "difficulty.npz"
DEFAULT_VECTORS = ROOT / "wilton_core" / "data" / "word_vectors.npz"
SHIPPED_CONFIG = TrainConfig()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--vectors", default=str(DEFAULT_VECTORS))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    data_bytes = Path(args.data).read_bytes()
    rows = load_routing_rows(args.data)
    train = [r for r in rows if not is_heldout(r.id)]
    held = [r for r in rows if is_heldout(r.id)]
    vectors = WordVectors.from_npz(args.vectors)
    cfg = SHIPPED_CONFIG
    feat = featurize([r.prompt for r in train], vectors)
    metadata = {
        "trained_on": Path(args.data).name,
        "data_sha256": hashlib.sha256(data_bytes).hexdigest(),
        "split": "sha256(id) held out share 0.3",
        "train_rows": len(train),
        "heldout_rows": len(held),
        "config": cfg.as_dict(),
        "word_vectors": dict(vectors.metadata),
        "version": "shipped",
    }
    scorer = fit(feat, np.array([r.strong for r in train]), np.array([r.weak for r in train]), vectors, cfg,
                 metadata=metadata)
    # The held-out figure is measured with the runtime scorer itself, prompt by prompt.
    curve = pgr_curve([scorer.score(r.prompt) for r in held], [r.strong for r in held], [r.weak for r in held])
    q = routing_quality(curve)
    metadata = {**metadata, "vocab_size": len(scorer.vocab), "heldout": q.as_dict()}
    scorer = dataclasses.replace(scorer, metadata=metadata)
    scorer.save_npz(args.out)
    print(f"train {len(train)} rows, held out {len(held)} rows, vocab {len(scorer.vocab)}")
    print(f"held-out PGR@20 {q.pgr_20:.3f}  PGR@25 {q.pgr_25:.3f}  PGR@30 {q.pgr_30:.3f}"
          f"  CPT(50%) {q.cpt_50}  CPT(80%) {q.cpt_80}")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
