"""Text normalisation shared by the citation verifier and the cross-referencing.

One place decides what "the same text" means: Unicode compatibility forms, case, quote and
dash styles and runs of whitespace are ignored; numbers are compared by value as written
(``1,200`` = ``1200``, ``3.50`` = ``3.5``), never rounded.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import snowballstemmer

_QUOTES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u00ab": '"', "\u00bb": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2212": "-", "\u00a0": " ",
    }
)
_SPACE = re.compile(r"\s+")
# Figures as people write them: 1,200 / 3.5 / 2023 / 42% (the sign is not part of the value).
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\w])\d+(?:\.\d+)?(?!\d)")
_WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
_STOP_TEXT = """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not of off on once only or other our ours out over own
    per same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours according said says report reports reported
    one two three"""
STOPWORDS = frozenset(_STOP_TEXT.split())
NEGATIONS = frozenset({"not", "no", "never", "none", "neither", "nor", "without", "cannot"})


def normalise(text: str) -> str:
    """Compatibility form, lower case, straight quotes and hyphens, single spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    return _SPACE.sub(" ", text).strip()


def numbers_in(text: str) -> list[str]:
    """Each number written in ``text``, canonical (no thousands separators, no trailing
    zeros), in order of appearance."""
    found = []
    for match in _NUMBER.finditer(unicodedata.normalize("NFKC", text)):
        value = canonical_number(match.group())
        if value is not None:
            found.append(value)
    return found


def canonical_number(raw: str) -> str | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    text = format(value.normalize(), "f")
    return text


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return snowballstemmer.stemmer("english")


def stem(word: str) -> str:
    """Snowball (Porter 2) stem: "rates"/"rate", "reported"/"report" compare equal."""
    return str(_stemmer().stemWord(word))


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning (no stop words, no negations, no numbers)."""
    words = _WORD.findall(normalise(text))
    return {stem(w) for w in words if w not in STOPWORDS and w not in NEGATIONS and len(w) > 1}


def negated(text: str) -> bool:
    words = set(_WORD.findall(normalise(text)))
    return bool(words & NEGATIONS) or "n't" in normalise(text)
