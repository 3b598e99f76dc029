"""The text half of CLAP (a LAION-CLAP-style ONNX text encoder and its tokenizer.json), for the web process: texts →
L2-normalised embeddings in the space of the audio embeddings the workers stored."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audio.clap import ClapModelError, model_identity, open_session, output_problem, require_file

__all__ = ["ClapTextEncoder", "MAX_TOKENS"]

MAX_TOKENS = 77  # CLAP's text context (RoBERTa-based encoders were trained with 77)
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


class ClapTextEncoder:
    """`encode(texts)` → (n, dimension) float32 unit vectors; refuses at construction a model that does not take
    input_ids (+ attention_mask) and give (batch, dimension) embeddings, or a tokenizer file it cannot read."""

    def __init__(self, model_path: str | Path, tokenizer_path: str | Path, *, dimension: int = 512,
                 intra_op_threads: int = 0) -> None:
        from tokenizers import Tokenizer

        require_file("CLAP_TEXT_MODEL_PATH", model_path)
        require_file("CLAP_TOKENIZER_PATH", tokenizer_path)
        self.model_path, self.tokenizer_path = Path(model_path), Path(tokenizer_path)
        try:
            self._tokenizer = Tokenizer.from_file(os.fspath(self.tokenizer_path))
        except Exception as exc:
            raise ClapModelError(f"CLAP_TOKENIZER_PATH {self.tokenizer_path} is not a tokenizer.json: "
                                 f"{str(exc).splitlines()[0][:300]}") from None
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._session = open_session("CLAP_TEXT_MODEL_PATH", model_path, intra_op_threads=intra_op_threads)
        self.dimension = dimension
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = self._session.get_outputs()
        problem = None
        if "input_ids" not in inputs or inputs["input_ids"].type not in _INT_TYPES:
            problem = "it should take integer input_ids"
        elif extra := sorted(set(inputs) - {"input_ids", "attention_mask"}):
            problem = f"it takes inputs CLAP text encoders do not ({', '.join(extra)})"
        elif any(len(i.shape) != 2 for i in inputs.values()):
            problem = "its inputs should be (batch, tokens)"
        else:
            problem = output_problem(outputs, dimension)
        if problem:
            described = ", ".join(f"{i.name} {i.type} {list(i.shape)}" for i in self._session.get_inputs())
            shown = ", ".join(f"{o.name} {o.type} {list(o.shape)}" for o in outputs)
            raise ClapModelError(f"CLAP_TEXT_MODEL_PATH {self.model_path} is not a CLAP text encoder: {problem}; "
                                 f"it has inputs [{described}] and outputs [{shown}]")
        self._types = {name: _INT_TYPES.get(i.type, np.int64) for name, i in inputs.items()}
        self._output = outputs[0].name
        self.name = model_identity(self.model_path)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max((len(e.ids) for e in encodings), default=1) or 1
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1
        feed = {"input_ids": ids.astype(self._types["input_ids"])}
        if "attention_mask" in self._types:
            feed["attention_mask"] = mask.astype(self._types["attention_mask"])
        vectors = np.asarray(self._session.run([self._output], feed)[0], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ClapModelError(f"the CLAP text model gave embeddings of shape {vectors.shape}, not "
                                 f"(n, {self.dimension}) (CLAP_EMBEDDING_DIMENSION)")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)
