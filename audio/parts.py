"""The parts of a track's analysis and the version of each (no heavy imports: the web process and db/ read it).

Bump the part whose code changes what it stores. A track whose model part (decoding, mel front end, the network:
embedding and tags) is older is analysed again whole; one whose tempo, key or energy part alone is older gets that
part computed again from its decoded audio, without the model (audio.analyze.analyze_parts; the moods follow, from
the stored tags). The model part's version is the tracks' analysis_version.
"""

from __future__ import annotations

# model 2: tempo from the musicnn STFT's frames (62.5 frames/s instead of 100), when it was one version for all
PART_VERSIONS: dict[str, int] = {"model": 2, "tempo": 1, "key": 1, "energy": 1}
# the parts that can be computed again alone, and the tracks columns each one writes
FEATURE_PARTS: dict[str, tuple[str, ...]] = {
    "tempo": ("tempo_bpm", "tempo_confidence"),
    "key": ("musical_key", "scale", "camelot", "key_confidence"),
    "energy": ("energy", "loudness_lufs"),
}
