"""Tiny ONNX models with the input/output signature of LAION-CLAP's split encoders, and a tokenizer.json for them
(no CLAP weights can be had here). The audio model's embedding is the window's spectral shape (each mel band's mean
level minus the mean over the bands) in the first 64 of 512 dimensions; the text model sums word vectors, "bright"
pointing at the high bands and "dark" at the low ones, so "bright" finds high-pitched tracks first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DIMENSION = 512
BANDS = 64
OPSET = 17
VOCAB = ("[UNK]", "bright", "dark", "music")


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # what the onnxruntime in use reads
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _band_slope() -> np.ndarray:
    return ((np.arange(BANDS) - (BANDS - 1) / 2) / ((BANDS - 1) / 2)).astype(np.float32)


def write_audio_model(path: Path, *, scale: float = 1.0, dimension: int = DIMENSION, bands: int = BANDS,
                      broken: bool = False) -> Path:
    """mel (batch, 1, frames, bands) → embedding (batch, dimension). `scale` changes the file, not the direction
    of the embeddings (a "new model" for the tests); `dimension`/`bands` other than CLAP's make a wrong one;
    `broken` gives NaN embeddings (the log of negative values) from a model of the right shape."""
    weights = np.zeros((bands, dimension), dtype=np.float32)
    weights[np.arange(min(bands, dimension)), np.arange(min(bands, dimension))] = scale
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["mel"], ["bands"], axes=[1, 2], keepdims=0),
         helper.make_node("ReduceMean", ["bands"], ["level"], axes=[1], keepdims=1),
         helper.make_node("Sub", ["bands", "level"], ["shape"]),
         helper.make_node("MatMul", ["shape", "weights"], ["projected" if broken else "embedding"])]
        + ([helper.make_node("Log", ["projected"], ["embedding"])] if broken else []),
        "tiny_clap_audio",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", 1, "frames", bands])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dimension])],
        [numpy_helper.from_array(weights, "weights")])
    return _save(graph, path)


def write_text_model(path: Path, *, dimension: int = DIMENSION) -> Path:
    """input_ids, attention_mask (batch, tokens) int64 → embedding (batch, dimension): masked sum of word vectors."""
    table = np.zeros((len(VOCAB), dimension), dtype=np.float32)
    table[VOCAB.index("bright"), :BANDS] = _band_slope()
    table[VOCAB.index("dark"), :BANDS] = -_band_slope()
    table[VOCAB.index("music"), BANDS] = 1.0  # says nothing about pitch
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["vectors"], axis=0),
         helper.make_node("Cast", ["attention_mask"], ["mask_float"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["mask_float", "last"], ["mask3"]),
         helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
         helper.make_node("ReduceSum", ["masked", "tokens_axis"], ["embedding"], keepdims=0)],
        "tiny_clap_text",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dimension])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([2], dtype=np.int64), "last"),
         numpy_helper.from_array(np.array([1], dtype=np.int64), "tokens_axis")])
    return _save(graph, path)


def write_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    tokenizer = Tokenizer(WordLevel({word: i for i, word in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def write_clap_models(folder: Path) -> dict[str, str]:
    """The three files in `folder`, as the settings that name them."""
    return {"CLAP_AUDIO_MODEL_PATH": str(write_audio_model(folder / "audio.onnx")),
            "CLAP_TEXT_MODEL_PATH": str(write_text_model(folder / "text.onnx")),
            "CLAP_TOKENIZER_PATH": str(write_tokenizer(folder / "tokenizer.json"))}


def tone(hertz: tuple[float, ...], *, seconds: float, sr: int, seed: int) -> np.ndarray:
    """Sustained sines at `hertz` with a little noise: a high or a low track for the tests."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f in hertz) * (0.3 / len(hertz))
    return (wave + rng.normal(size=len(t)) * 0.002).astype(np.float32)
