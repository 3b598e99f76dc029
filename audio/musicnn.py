"""The musicnn MSD model (msd-musicnn-1) through ONNX Runtime: mel patches → 200-d embeddings + 50 tag probabilities.

The ONNX file is built from the weights in PyPI `musicnn==0.1.0` by models/convert_musicnn.py; see models/README.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.errors import AudioError
from audio.providers import GuardedSession, ProviderChoice, available_providers

MODEL_NAME = "msd-musicnn-1"
EMBEDDING_DIM = 200
# Output order of the 50 tag probabilities (the Million Song Dataset's most frequent last.fm tags).
MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening",
    "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad",
    "House", "happy",
)
# Patches per ONNX Runtime call. Measured on one thread: 33 ms per patch whatever the batch (1 to 32), but the
# runtime's memory arena grows with the batch: 120 MB of resident memory at 1, 1.6 GB at 32, and a worker's first
# call at 32 spent seconds in page faults.
_BATCH = 1


@dataclass(frozen=True)
class ModelOutput:
    embeddings: np.ndarray  # (n_patches, 200) float32
    tags: np.ndarray  # (n_patches, 50) float32 probabilities


class MusicnnModel:
    """One ONNX Runtime session; load once per worker process and reuse for every track."""

    def __init__(self, path: str | Path, *, intra_op_threads: int = 1, providers: str = "auto",
                 available: Sequence[str] | None = None) -> None:
        """`providers`: the ONNX_PROVIDERS setting (audio.providers); `available`: the providers to consider
        present (default: those of this onnxruntime build)."""
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"musicnn model not found at {path} (MODEL_PATH)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = GuardedSession(
            "musicnn", lambda chosen: ort.InferenceSession(str(path), sess_options=options, providers=chosen),
            setting=providers, available=available_providers() if available is None else available)
        self.input_name = self.session.get_inputs()[0].name
        outputs = {o.shape[-1]: o.name for o in self.session.get_outputs()}
        try:
            self._embedding_name, self._tags_name = outputs[EMBEDDING_DIM], outputs[len(MSD_TAGS)]
        except KeyError:
            raise AudioError(f"{path} does not look like musicnn MSD: outputs {outputs}") from None

    @property
    def provider(self) -> ProviderChoice:
        """What the session runs on, and what was passed over."""
        return self.session.choice

    def predict(self, patches: np.ndarray) -> ModelOutput:
        """Run (n, 187, 96) float32 log-mel patches through the network in batches."""
        if patches.ndim != 3 or patches.shape[1:] != (187, 96):
            raise AudioError(f"expected patches of shape (n, 187, 96), got {patches.shape}")
        embeddings, tags = [], []
        for start in range(0, len(patches), _BATCH):
            batch = np.ascontiguousarray(patches[start:start + _BATCH], dtype=np.float32)
            emb, tag = self.session.run([self._embedding_name, self._tags_name], {self.input_name: batch})
            embeddings.append(emb)
            tags.append(tag)
        return ModelOutput(np.concatenate(embeddings), np.concatenate(tags))
