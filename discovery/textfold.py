"""The one text fold of the library's names: how a title, an artist or a request is made comparable.

Case is folded, accents and control characters are removed, and the letters that carry no accent to strip but that
people type as two plain letters are spelled out (ß → ss, æ → ae, ø → o, œ → oe, ł → l, đ → d, ı → i), so "Straße",
"STRASSE" and "strasse" fold alike, as do "Mötley" and "motley", "Ærø" and "aero".
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "fold_words"]

_EXTRA = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "ı": "i"})
_NOT_WORD = re.compile(r"[^\w&+#\-]+")


def fold(text: str) -> str:
    """Lower case without accents or control characters: 'SWÏNG' → 'swing', 'Œuvre' → 'oeuvre'."""
    if text.isascii():
        # NFKD leaves ASCII as it is and it has no combining marks: the common case, several times faster
        lowered = text.lower()
        return lowered if lowered.isprintable() else "".join(ch for ch in lowered if ch >= " ")
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_EXTRA))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ch >= " ")


def fold_words(text: str) -> str:
    """`fold`, then punctuation (but & + # -) to spaces and spaces squeezed: the words of a request or a name."""
    return " ".join(_NOT_WORD.sub(" ", fold(text)).split())
