"""What a playlist request asks for, read without an LLM (the chat's fallback): tags, moods and genres named in it,
tempo words and numbers ("fast", "120 bpm", "between 90 and 110 bpm"), energy words, a key or Camelot code, the
library's artists and albums it names, artists it excludes ("no ABBA", "without Queen"), a song it wants more of
("songs like Yesterday") and how many songs ("20 songs")."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from discovery.textfold import fold_words as fold

__all__ = ["Intent", "NameIndex", "extract_intent", "fold", "like_phrase"]

# Words people use for the musicnn tags and the moods the analysis measures.
TAG_WORDS: dict[str, tuple[str, ...]] = {
    "Hip-Hop": ("hip hop", "hip-hop", "hiphop", "rap"), "rnb": ("r&b", "rnb", "rhythm and blues"),
    "electronic": ("electronic", "edm", "techno", "synth", "synthesizer"), "House": ("house",),
    "female vocalists": ("female vocals", "female vocalist", "female singer", "women singers"),
    "male vocalists": ("male vocals", "male vocalist", "male singer"),
    "instrumental": ("instrumental", "no vocals", "orchestral"), "acoustic": ("acoustic", "unplugged", "piano"),
    "guitar": ("guitar", "guitars"), "chillout": ("chillout", "chill out", "lounge"),
    "Mellow": ("mellow",), "easy listening": ("easy listening",),
}
MOOD_WORDS: dict[str, tuple[str, ...]] = {
    "danceable": ("dance", "dancing", "danceable", "groove", "groovy"),
    "aggressive": ("aggressive", "angry", "intense", "rage", "furious"),
    "happy": ("happy", "cheerful", "joyful", "upbeat", "feel good", "feel-good", "sunny"),
    "party": ("party", "celebration"),
    "relaxed": ("relaxed", "relaxing", "relax", "calm", "chill", "peaceful", "sleep", "study", "soothing"),
    "sad": ("sad", "melancholic", "melancholy", "gloomy", "heartbreak", "blue", "somber"),
}
FAST = ("fast", "uptempo", "up-tempo", "quick", "high tempo", "workout", "running")
SLOW = ("slow", "downtempo", "down-tempo", "low tempo")
HIGH_ENERGY = ("energetic", "high energy", "high-energy", "powerful", "loud", "workout", "pumping", "intense")
LOW_ENERGY = ("low energy", "quiet", "soft", "gentle", "calm", "sleep")
_NOTE = {"c": "C", "c#": "C#", "db": "C#", "d": "D", "d#": "D#", "eb": "D#", "e": "E", "f": "F", "f#": "F#",
         "gb": "F#", "g": "G", "g#": "G#", "ab": "G#", "a": "A", "a#": "A#", "bb": "A#", "b": "B"}
_EXCLUDE = re.compile(r"\b(?:no|not|without|except|minus|exclude|excluding)\s+(?:any\s+|songs by\s+)?$")


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(phrase)}(?![\w])", text) is not None


@dataclass
class Intent:
    tags: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)
    min_bpm: float | None = None
    max_bpm: float | None = None
    energy: str | None = None  # "high" or "low"
    camelot: list[str] = field(default_factory=list)
    key: str | None = None
    scale: str | None = None
    artists: list[str] = field(default_factory=list)
    exclude_artists: list[str] = field(default_factory=list)
    albums: list[str] = field(default_factory=list)
    like_title: str | None = None
    count: int | None = None
    read_by_model: bool = False  # tags and moods came from the text-search engine, not the vocabulary

    @property
    def empty(self) -> bool:
        return not (self.tags or self.moods or self.genres or self.min_bpm or self.max_bpm or self.energy
                    or self.camelot or self.key or self.scale or self.artists or self.albums or self.like_title)

    def describe(self) -> list[str]:
        """What was understood, in words (shown on the page)."""
        parts = [f"tag {t}" for t in self.tags] + [f"mood {m}" for m in self.moods]
        parts += [f"genre {g}" for g in self.genres]
        if self.min_bpm or self.max_bpm:
            parts.append(f"tempo {self.min_bpm or 0:.0f}-{self.max_bpm or 300:.0f} BPM")
        if self.energy:
            parts.append(f"{self.energy} energy")
        parts += [f"Camelot {c}" for c in self.camelot]
        if self.key or self.scale:
            parts.append(" ".join(p for p in ("key", self.key, self.scale) if p))
        parts += [f"artist {a}" for a in self.artists] + [f"not {a}" for a in self.exclude_artists]
        parts += [f"album {a}" for a in self.albums]
        if self.like_title:
            parts.append(f"songs like {self.like_title}")
        return parts


class NameIndex:
    """Library names (artists, albums, genres, titles) by their folded words, so a request is matched by looking up
    its word runs (a few hundred lookups) instead of searching it for every name the library has."""

    def __init__(self, names: Iterable[str], *, min_length: int = 3, max_words: int = 8) -> None:
        self._names: dict[str, str] = {}
        self.max_words = 1
        for name in names:
            folded = fold(name)
            words = folded.count(" ") + 1
            if len(folded) >= min_length and words <= max_words:
                self._names.setdefault(folded, name)
                self.max_words = max(self.max_words, words)

    def __len__(self) -> int:
        return len(self._names)

    def find(self, text: str) -> list[tuple[int, str]]:
        """(character position in `text`, name) of the names `text` (folded) holds as whole words; where they
        overlap the longest wins."""
        words = text.split()
        starts, offset = [], 0
        for word in words:
            offset = text.index(word, offset)
            starts.append(offset)
            offset += len(word)
        found = []
        i = 0
        while i < len(words):
            for size in range(min(self.max_words, len(words) - i), 0, -1):
                name = self._names.get(" ".join(words[i:i + size]))
                if name is not None:
                    found.append((starts[i], name))
                    i += size
                    break
            else:
                i += 1
        return found


def _index(names: Sequence[str] | NameIndex, *, min_length: int = 3) -> NameIndex:
    return names if isinstance(names, NameIndex) else NameIndex(names, min_length=min_length)


_LIKE = re.compile(r"\b(?:songs?|tracks?|music|something)\s+(?:like|similar to)\s+(.+)$")


def like_phrase(text: str) -> str | None:
    """What follows "songs like" / "music similar to" (folded), where a title may be: the library's titles need
    only be read when there is one."""
    match = _LIKE.search(fold(text))
    return match.group(1) if match else None


Names = Sequence[str] | NameIndex


def extract_intent(text: str, *, tags: Sequence[str], genres: Names = (), artists: Names = (), albums: Names = (),
                   titles: Names = ()) -> Intent:
    """The intent of `text`; `tags` is the analysis's tag vocabulary, the rest the library's names (lists, or
    NameIndex built once for many requests)."""
    words = fold(text)
    intent = Intent()
    like = _LIKE.search(words)
    if like:
        found = _index(titles, min_length=2).find(like.group(1))
        if found and found[0][0] == 0:
            intent.like_title = found[0][1]
            words = words[:like.start()]
    for position, artist in _index(artists).find(words):
        (intent.exclude_artists if _EXCLUDE.search(words[:position]) else intent.artists).append(artist)
    intent.albums = [a for _, a in _index(albums, min_length=4).find(words) if a not in intent.artists]
    intent.genres = [g for _, g in _index(genres).find(words)]
    for tag in sorted(tags, key=len, reverse=True):
        phrases = TAG_WORDS.get(tag, ()) + (fold(tag),)
        if any(_has(words, p) for p in phrases):  # "heavy metal" is also "metal", "classic rock" also "rock"
            intent.tags.append(tag)
    for mood, phrases in MOOD_WORDS.items():
        if any(_has(words, p) for p in phrases):
            intent.moods.append(mood)
    between = re.search(r"\b(\d{2,3})\s*(?:-|to|and)\s*(\d{2,3})\s*bpm\b", words)
    single = re.search(r"\b(\d{2,3})\s*bpm\b", words)
    if between:
        low, high = sorted((float(between.group(1)), float(between.group(2))))
        intent.min_bpm, intent.max_bpm = low, high
    elif single:
        bpm = float(single.group(1))
        around = re.search(r"\b(?:over|above|faster than|at least)\s+\d{2,3}\s*bpm", words)
        under = re.search(r"\b(?:under|below|slower than|at most)\s+\d{2,3}\s*bpm", words)
        intent.min_bpm, intent.max_bpm = (bpm, None) if around else (None, bpm) if under else (bpm - 6, bpm + 6)
    elif any(_has(words, w) for w in FAST):
        intent.min_bpm = 125.0
    elif any(_has(words, w) for w in SLOW):
        intent.max_bpm = 95.0
    if any(_has(words, w) for w in HIGH_ENERGY):
        intent.energy = "high"
    elif any(_has(words, w) for w in LOW_ENERGY):
        intent.energy = "low"
    intent.camelot = sorted({(number + letter).upper()
                             for number, letter in re.findall(r"\b(1[0-2]|[1-9])([ab])\b", words)})
    key = re.search(r"\bin\s+([a-g])\s*(#|b|sharp|flat)?\s*(major|minor|maj|min)\b", words)
    if key:
        accidental = {"sharp": "#", "flat": "b"}.get(key.group(2) or "", key.group(2) or "")
        intent.key = _NOTE.get(key.group(1) + accidental)
        intent.scale = "major" if key.group(3).startswith("maj") else "minor"
    elif _has(words, "minor key") or _has(words, "in minor"):
        intent.scale = "minor"
    elif _has(words, "major key") or _has(words, "in major"):
        intent.scale = "major"
    count = re.search(r"\b(\d{1,3})\s+(?:songs|tracks|tunes)\b", words)
    if count:
        intent.count = int(count.group(1))
    return intent
