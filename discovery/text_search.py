"""Text search without CLAP: a query in words is mapped onto what the analysis measures, and tracks are ranked by it.

The analysis gives every track 50 musicnn tag scores, six mood scores, a tempo, an energy and a scale. Each of these
*concepts* has a short description ("mellow music", "fast tempo, uptempo music", ...), embedded once with the
sentence encoder. A query is embedded the same way; its cosine similarity to each description picks the few concepts
it means, weighted by a softmax; a track's score is the weighted mean of its percentiles in those concepts among the
library (percentiles, because the tag scores of real music are small and unevenly calibrated: a "jazz" of 0.2 can be
the library's jazziest track). So "calm piano" becomes mostly *mellow*, *instrumental*, *acoustic* and *calm*, and
the tracks highest in those come first.

Limits (stated in the README): it knows only those ~65 concepts — an instrument, an artist or a word the tags do not
cover ("piano", "saxophone", "Christmas") is matched to the nearest concepts, not recognised; negation ("not sad")
and exact tempos are not understood.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from discovery.ranking import top_k
from discovery.types import DiscoveryError

__all__ = ["MIN_SIMILARITY", "Concept", "ConceptScores", "SemanticHit", "TextSearchEngine", "build_concepts",
           "concept_scores"]

Encoder = Callable[[Sequence[str]], np.ndarray]  # texts → (n, d) L2-normalised float32


# The least cosine similarity of a query to a concept's wording for the query to mean it. Measured with MiniLM:
# gibberish and off-topic words stay under 0.33 ("xqzvbnm" 0.27, "asdkjh qwpoeiru" 0.25, "my tax return" 0.17,
# "quantum physics" 0.24); loose requests reach it ("workout" 0.35, "tranquil lullabies for a rainy afternoon" 0.36)
# and plain ones pass well above ("songs for a rainy day" 0.51, "80s" 0.63, "jazz" 0.89). A made-up word that
# sounds like a genre is still read as it ("blorf" 0.41: blues). The tokenizer cannot tell made-up words from rare
# real ones ("tranquil", "melancholic" split into pieces like gibberish), so the similarity alone decides.
MIN_SIMILARITY = 0.33


@dataclass(frozen=True)
class Concept:
    """One thing the analysis measures: `source` is tag, mood, tempo, energy or scale; `key` the tag/mood name or
    the direction ("slow"/"fast", "calm"/"energetic", "major"/"minor")."""

    name: str
    source: str
    key: str
    description: str
    also: tuple[str, ...] = ()  # more ways to say it: a query may match any of them


_TAG_WORDS = {
    "00s": "music from the 2000s", "60s": "music from the 1960s, sixties", "70s": "music from the 1970s, seventies",
    "80s": "music from the 1980s, eighties", "90s": "music from the 1990s, nineties",
    "female vocalists": "songs sung by a female singer, woman's voice", "female vocalist": "female vocals",
    "male vocalists": "songs sung by a male singer, man's voice", "Mellow": "mellow, soft, gentle music",
    "beautiful": "beautiful, lovely music", "instrumental": "instrumental music without vocals",
    "easy listening": "easy listening music", "sexy": "sexy, sensual music", "catchy": "catchy music with a hook",
    "guitar": "guitar music", "acoustic": "acoustic music, unplugged",
    "experimental": "experimental, avant-garde music",
    "oldies": "oldies, old songs", "party": "party music", "happy": "happy music", "sad": "sad music",
    "chill": "chill music", "chillout": "chillout, downtempo music", "Hip-Hop": "hip-hop, rap music",
    "rnb": "r&b, rhythm and blues music", "House": "house music, electronic dance", "electro": "electro music",
}
_MOOD_WORDS = {
    "danceable": "danceable music with a groove", "aggressive": "aggressive, angry, intense music",
    "happy": "happy, cheerful, joyful music", "party": "party music for dancing",
    "relaxed": "relaxed, calm, peaceful music", "sad": "sad, melancholic, sorrowful music",
}
_SIGNAL_CONCEPTS = (
    Concept("slow", "tempo", "slow", "slow tempo music, slow songs"),
    Concept("fast", "tempo", "fast", "fast tempo, uptempo music"),
    Concept("calm", "energy", "calm", "calm, quiet, soft, low-energy music"),
    Concept("energetic", "energy", "energetic", "energetic, loud, powerful music"),
    Concept("major key", "scale", "major", "music in a major key, bright"),
    Concept("minor key", "scale", "minor", "music in a minor key, dark and moody"),
)


# Words people search with that no tag names, and the tags that carry them (musicnn's 50 have no "piano",
# "orchestral" or "chiptune").
_ALSO = {
    "instrumental": ("orchestral music", "classical music, symphony", "film score, movie soundtrack"),
    "acoustic": ("piano music", "acoustic guitar"),
    "electronic": ("synthesizer music", "chiptune, 8-bit video game music", "techno"),
    "ambient": ("atmospheric soundscape, drone", "meditation music"),
    "beautiful": ("romantic music",),
    "experimental": ("avant-garde, strange sounds",),
    "easy listening": ("lounge music", "background music"),
    "folk": ("celtic music", "traditional folk songs"),
    # "guitar" alone leans acoustic ("acoustic guitar"): loud, distorted guitars are rock and metal
    "rock": ("electric guitar rock", "guitar riffs"),
    "hard rock": ("heavy guitars", "distorted electric guitar"),
    "heavy metal": ("heavy distorted guitars", "metal riffs"),
}


def build_concepts(tags: Sequence[str], moods: Sequence[str]) -> tuple[Concept, ...]:
    tag_concepts = [Concept(t.lower(), "tag", t, _TAG_WORDS.get(t, f"{t.lower()} music"), _ALSO.get(t, ()))
                    for t in tags]
    mood_concepts = [Concept(m, "mood", m, _MOOD_WORDS.get(m, f"{m} music")) for m in moods]
    return (*tag_concepts, *mood_concepts, *_SIGNAL_CONCEPTS)


def _percentiles(values: np.ndarray) -> np.ndarray:
    """The share of the other finite values below each value, 0..1 (equal values share the lowest rank, so a
    library where most tracks lack a tag puts all of those at 0); NaN stays 0."""
    out = np.zeros(len(values), dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) <= 1:
        out[finite] = 1.0
        return out
    ordered = np.sort(values[finite])
    out[finite] = np.searchsorted(ordered, values[finite], side="left") / (len(finite) - 1)
    return out


@dataclass(frozen=True)
class ConceptScores:
    """Each track's percentile (0..255) in each concept among the library: uint8 (n, len(concepts))."""

    concepts: tuple[Concept, ...]
    matrix: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes)


class ConceptColumns:
    """The raw analysis value of each concept for tracks added one at a time, in one float32 (capacity, concepts)
    array: how the web process builds the concept scores of a million tracks without keeping a tag dict per track
    (those took 2.76 GB at 300k; float64 raw values 480 MB). NaN: not measured, ranked lowest."""

    def __init__(self, concepts: Sequence[Concept], capacity: int) -> None:
        self.concepts = tuple(concepts)
        self.raw = np.full((capacity, len(self.concepts)), np.nan, dtype=np.float32)
        self.count = 0
        for c in self.concepts:
            if c.source not in ("tag", "mood", "tempo", "energy", "scale"):
                raise DiscoveryError(None, f"unknown concept source {c.source!r}")
        self._tags = [(i, c.key) for i, c in enumerate(self.concepts) if c.source == "tag"]
        self._moods = [(i, c.key) for i, c in enumerate(self.concepts) if c.source == "mood"]
        self._others = [(i, c) for i, c in enumerate(self.concepts) if c.source in ("tempo", "energy", "scale")]

    def add(self, tags: Mapping[str, float] | None, moods: Mapping[str, float] | None, tempo: float | None,
            energy: float | None, scale: str | None) -> None:
        if self.count >= len(self.raw):
            self.raw = np.concatenate([self.raw, np.full_like(self.raw, np.nan)]) if len(self.raw) else \
                np.full((16, len(self.concepts)), np.nan, dtype=np.float32)
        row = self.raw[self.count]
        # an analyzed track without a score for a tag or mood has none of it (0); an unanalyzed one is unranked
        for values, columns in ((tags, self._tags), (moods, self._moods)):
            if values is not None:
                for i, key in columns:
                    row[i] = float(values.get(key, 0.0))
        for i, c in self._others:
            if c.source == "tempo" and tempo is not None:
                row[i] = -float(tempo) if c.key == "slow" else float(tempo)
            elif c.source == "energy" and energy is not None:
                row[i] = -float(energy) if c.key == "calm" else float(energy)
            elif c.source == "scale" and scale is not None:
                row[i] = float(scale == c.key)
        self.count += 1

    def scores(self) -> ConceptScores:
        """The percentile matrix (uint8) of the tracks added; the raw values are released."""
        n = self.count
        matrix = np.zeros((n, len(self.concepts)), dtype=np.uint8)
        for i in range(len(self.concepts)):
            matrix[:, i] = np.round(_percentiles(self.raw[:n, i]) * 255).astype(np.uint8)
        self.raw = np.zeros((0, len(self.concepts)), dtype=np.float32)
        return ConceptScores(self.concepts, np.ascontiguousarray(matrix))


def concept_scores(concepts: Sequence[Concept], *, tags: Sequence[Mapping[str, float] | None],
                   moods: Sequence[Mapping[str, float] | None], tempo: Sequence[float | None],
                   energy: Sequence[float | None], scale: Sequence[str | None]) -> ConceptScores:
    """The percentile matrix of n tracks from their analysis values (None: not measured, ranked lowest)."""
    n = len(tags)
    if not (len(moods) == len(tempo) == len(energy) == len(scale) == n):
        raise DiscoveryError(None, "the track columns differ in length")
    columns = ConceptColumns(concepts, n)
    for row in zip(tags, moods, tempo, energy, scale, strict=True):
        columns.add(*row)
    return columns.scores()


@dataclass(frozen=True)
class SemanticHit:
    position: int  # row of the scores matrix
    similarity: float  # 0..1
    because: list[tuple[str, float]] = field(default_factory=list)  # (concept, the track's percentile 0..1)


def concept_texts(concepts: Sequence[Concept]) -> list[str]:
    """Every wording of the concepts (description, then the alternatives), in order: what the engine embeds."""
    return [text for c in concepts for text in (c.description, *c.also)]


class TextSearchEngine:
    """Ranks the rows of a ConceptScores by a query. `encode` embeds texts; the concepts are embedded once, or
    `text_vectors` are theirs already (what `encode` gave for `concept_texts(concepts)` earlier)."""

    def __init__(self, encode: Encoder, concepts: Sequence[Concept], *, top_concepts: int = 6,
                 temperature: float = 0.08, spread: float = 0.15, min_similarity: float = MIN_SIMILARITY,
                 text_vectors: np.ndarray | None = None) -> None:
        self.encode = encode
        self.concepts = tuple(concepts)
        self.top_concepts = top_concepts
        self.min_similarity = min_similarity
        self.temperature = temperature
        self.spread = spread
        self._text_concept = np.array([i for i, c in enumerate(self.concepts) for _ in (c.description, *c.also)],
                                      dtype=np.int64)
        if text_vectors is not None and len(text_vectors) != len(self._text_concept):
            raise DiscoveryError(None, "the text vectors given are not those of these concepts")
        self.text_vectors = encode(concept_texts(self.concepts)) if text_vectors is None else text_vectors

    def _similarity(self, query_vector: np.ndarray) -> np.ndarray:
        by_text = self.text_vectors @ np.asarray(query_vector, dtype=np.float32)
        similarity = np.full(len(self.concepts), -1.0, dtype=np.float32)
        np.maximum.at(similarity, self._text_concept, by_text)  # a concept is as near as its nearest wording
        return similarity

    def understands(self, query_vector: np.ndarray) -> bool:
        """Whether some concept is at least `min_similarity` near the query: below it the query means nothing the
        analysis measures (gibberish, "my tax return"), and the nearest concepts would be noise."""
        return bool(len(self.concepts)) and float(self._similarity(query_vector).max()) >= self.min_similarity

    def weights(self, query_vector: np.ndarray) -> dict[int, float]:
        """{concept index: weight} for a query embedding (d,): a softmax over the `top_concepts` most similar
        concepts that are within `spread` of the best, summing to 1; {} when the query is not understood (no
        concept within `min_similarity`)."""
        similarity = self._similarity(query_vector)
        if not len(similarity) or float(similarity.max()) < self.min_similarity:
            return {}
        best = np.argsort(-similarity, kind="stable")[:self.top_concepts]
        kept = [int(i) for i in best if similarity[i] >= similarity[best[0]] - self.spread]
        logits = np.array([similarity[i] for i in kept], dtype=np.float64) / self.temperature
        soft = np.exp(logits - logits.max())
        soft /= soft.sum()
        return {i: float(w) for i, w in zip(kept, soft, strict=True)}

    def search(self, query_vector: np.ndarray, scores: ConceptScores, *, limit: int,
               allowed: np.ndarray | None = None) -> tuple[list[SemanticHit], dict[str, float]]:
        """The `limit` best rows for a query embedding, best first, and the concept weights used. `allowed`
        (bool per row) leaves rows out."""
        if scores.concepts != self.concepts:
            raise DiscoveryError(None, "the scores were computed for other concepts")
        weights = self.weights(query_vector)
        if not weights:  # not understood: no match, rather than the tracks nearest to noise
            return [], {}
        columns = list(weights)
        w = np.array([weights[c] for c in columns], dtype=np.float32) / 255.0
        total = scores.matrix[:, columns].astype(np.float32) @ w if len(scores.matrix) else np.zeros(0)
        if allowed is not None:
            total = np.where(allowed, total, 0.0)
        count = min(limit, int((total > 0).sum()))  # a track with none of what the query means is no match
        if count <= 0:
            return [], {self.concepts[c].name: round(weights[c], 4) for c in columns}
        top = top_k(total, count)  # best first; ties by row, so stable
        hits = []
        for row in top.tolist():
            parts = sorted(((weights[c] * scores.matrix[row, c], c) for c in columns), reverse=True)[:3]
            because = [(self.concepts[c].name, round(float(scores.matrix[row, c]) / 255.0, 3)) for _, c in parts]
            hits.append(SemanticHit(row, round(float(total[row]), 4), because))
        return hits, {self.concepts[c].name: round(weights[c], 4) for c in columns}
