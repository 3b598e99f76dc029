"""What one track's analysis gives (TrackAnalysis), apart from the code that computes it: the worker's parent
process receives it from the analysis process (audio/engine.py) with numpy alone, without the signal libraries."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audio.musicnn import MODEL_NAME
from audio.parts import FEATURE_PARTS, PART_VERSIONS

ANALYSIS_VERSION = PART_VERSIONS["model"]  # the tracks' analysis_version (see audio/parts.py)


@dataclass
class TrackAnalysis:
    duration_seconds: float
    embedding: np.ndarray  # (200,) float32, mean of the patch embeddings
    tags: dict[str, float]  # all 50 MSD tags → mean probability
    tempo_bpm: float | None
    tempo_confidence: float
    key: str | None
    scale: str | None
    camelot: str | None
    key_confidence: float
    energy: float
    loudness_lufs: float | None
    moods: dict[str, float]
    patches_analyzed: int
    model: str = MODEL_NAME
    version: int = ANALYSIS_VERSION
    # the versions of the feature parts these values come from (an imported analysis may carry older ones)
    part_versions: dict[str, int] = field(default_factory=lambda: {p: PART_VERSIONS[p] for p in FEATURE_PARTS})
    # 1: every 3-s patch went through the model; n > 1: every n-th (fast mode), evenly over the track
    patch_stride: int = 1
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def top_tags(self, n: int) -> list[tuple[str, float]]:
        return sorted(self.tags.items(), key=lambda kv: -kv[1])[:n]
