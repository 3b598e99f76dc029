"""Version-insensitive song identity: "Song", "Song (Live)", "Song - 2011 Remaster" and "Song (feat. X)" are one song.

`song_key(title, artist)` folds case and accents and strips version notes so that versions of the same song compare
equal. Only notes that look like *version* notes are stripped: a bracket or a trailing " - …" part is dropped when it
contains a version word (live, remaster, edit, version, mono, stereo, explicit, clean, feat., demo, …), so titles such
as "(I Can't Get No) Satisfaction" or "Part 1 - Part 2" keep their words. Remixes are kept distinct on purpose: a remix
is a different track to a listener, a remaster is not.
"""

from __future__ import annotations

import functools
import hashlib
import re

from discovery.textfold import fold as _fold

__all__ = ["has_version_note", "normalise_artist", "normalise_title", "song_key"]

# Words that mark a bracketed note or a " - …" suffix as a version note rather than part of the title.
_VERSION_WORDS = re.compile(
    r"\b(?:live|remaster(?:ed)?|re-?master(?:ed)?|edit|version|mono|stereo|explicit|clean|dirty|"
    r"feat|ft|featuring|demo|bonus\s+track|deluxe|anniversary|edition|unplugged|acoustic\s+version|"
    r"instrumental\s+version|take\s+\d+|\d{4}\s+mix|excerpt|preview|snippet)\b"
)
_BRACKETS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")
# "feat. X" outside brackets runs to the end of the string (or to the next bracket, already removed by then).
_FEAT = re.compile(r"\s*(?:\bfeat\b\.?|\bft\b\.?|\bfeaturing\b).*$")
_BARE_REMASTER = re.compile(r"\b(?:remaster(?:ed)?\s+\d{4}|\d{4}\s+remaster(?:ed)?|remaster(?:ed)?)\s*$")
_NON_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def _tidy(text: str) -> str:
    """Punctuation to spaces and collapsed whitespace, so "Song!" and "song" compare equal."""
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


# Bounded caches: the web process's catalogue precomputes every indexed track's key (TrackInfo.song_key), so these
# serve seeds from elsewhere, user input and tests. At 100k entries they held ~40 MB (measured), hence the bound.
@functools.lru_cache(maxsize=1 << 14)
def normalise_title(title: str) -> str:
    """The comparable core of a song title: folded, version notes and "feat." parts removed, punctuation dropped.

    Falls back to the folded full title when stripping would leave nothing (a title that is only a note).
    """
    folded = _fold(title)

    def drop_version_bracket(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        return " " if _VERSION_WORDS.search(inner) else match.group(0)

    text = _BRACKETS.sub(drop_version_bracket, folded)
    # Trailing " - …" suffixes, repeatedly: "Song - Live at X - 2011 Remaster".
    while True:
        head, sep, tail = text.rpartition(" - ")
        if not sep or not _VERSION_WORDS.search(tail):
            break
        text = head
    text = _FEAT.sub("", text)
    text = _BARE_REMASTER.sub("", text.strip())
    core = _tidy(text)
    return core or _tidy(folded) or folded.strip()


@functools.lru_cache(maxsize=1 << 14)
def normalise_artist(artist: str) -> str:
    """The comparable core of an artist name: folded, "feat. X" / "ft. X" / "featuring X" removed."""
    folded = _fold(artist)
    text = _BRACKETS.sub(lambda m: " " if _FEAT.search(m.group(0).strip("()[]")) else m.group(0), folded)
    core = _tidy(_FEAT.sub("", text))
    return core or _tidy(folded) or folded.strip()


@functools.lru_cache(maxsize=1 << 14)
def song_key(title: str, artist: str) -> tuple[str, str]:
    """(title, artist) normalised so that versions of one song share the key.

    Case and accents are folded; live / remaster / edit / single- or album-version / mono / stereo / explicit / clean
    notes, "feat. X" in the title or the artist, and bracketed or trailing " - …" version notes are stripped.
    """
    return normalise_title(title), normalise_artist(artist)


def song_key_hash(title: str, artist: str) -> int:
    """`song_key` as a signed 64-bit integer that is the same in every process (Python's own str hash is not), for
    storing: tracks of one song share it."""
    title_key, artist_key = song_key(title, artist)
    digest = hashlib.blake2b(f"{title_key}\x00{artist_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def has_version_note(title: str) -> bool:
    """Whether `title` carries a note the song key folds away ("Song (Live)", "Song - 2011 Remaster", "feat. X")."""
    return normalise_title(title) != (_tidy(_fold(title)) or _fold(title).strip())
