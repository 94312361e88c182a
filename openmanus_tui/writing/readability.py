"""Readability formulas computed offline: Flesch reading ease, Flesch–Kincaid grade, Gunning
fog, SMOG and the average sentence length.

Syllables come from the CMU Pronouncing Dictionary, shipped in the package as word → count
(``data/``; no download at run time, unlike textstat, which fetches NLTK's cmudict on first
use), then root + suffix, then syllapy's rules (MIT) for words the dictionary lacks.
Hyphenated words are counted part by part. The formulas are the published ones:

- Flesch reading ease = 206.835 − 1.015·(words/sentences) − 84.6·(syllables/words)
- Flesch–Kincaid grade = 0.39·(words/sentences) + 11.8·(syllables/words) − 15.59
- Gunning fog = 0.4·(words/sentences + 100·complex/words), complex = 3+ syllables, not
  counting the -es/-ed/-ing ending as a syllable (Gunning's rule)
- SMOG = 1.0430·√(polysyllables·30/sentences) + 3.1291, polysyllables = 3+ syllables
"""

from __future__ import annotations

import bisect
import functools
import gzip
import math
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from openmanus_tui.writing.prose import Paragraph, paragraphs, sentences, words

# Suffixes whose derived forms a dictionary may lack ("unhelpfully"): root + suffix.
_SUFFIXES = (("ingly", 2), ("ness", 1), ("ment", 1), ("less", 1), ("ful", 1), ("ly", 1),
             ("ing", 1), ("s", 0), ("ed", 0))


class _Dictionary:
    """Syllable counts of the CMU Pronouncing Dictionary's 126,000 words (BSD-style licence,
    data/LICENSE-cmudict), shipped in the package as sorted ``word<TAB>count`` lines. Looked up
    by binary search: splitting the file is all the loading (a dict would take 5x longer)."""

    def __init__(self) -> None:
        data = resources.files("openmanus_tui.writing").joinpath(
            "data/cmudict_syllables.txt.gz").read_bytes()
        self.lines = gzip.decompress(data).decode("utf-8").split("\n")

    def get(self, word: str) -> int | None:
        key = word + "\t"
        at = bisect.bisect_left(self.lines, key)
        if at < len(self.lines) and self.lines[at].startswith(key):
            return int(self.lines[at][len(key):])
        return None


@functools.cache
def _cmudict() -> _Dictionary:
    return _Dictionary()


def _part_syllables(part: str) -> int:
    table = _cmudict()
    found = table.get(part)
    if found is not None:
        return max(1, found)
    for suffix, extra in _SUFFIXES:
        root = part[: -len(suffix)]
        if part.endswith(suffix) and len(root) > 2:
            for candidate in (root, root + "e"):
                found = table.get(candidate)
                if found is not None:
                    return max(1, found) + extra
    import syllapy  # unknown words: syllapy's rules (MIT)

    return max(1, syllapy.count(part))


@functools.lru_cache(maxsize=65536)
def syllables(word: str) -> int:
    """Syllables in ``word`` (at least 1)."""
    parts = [p.strip("'") for p in word.lower().replace("’", "'").split("-") if p.strip("'")]
    total = 0
    for part in parts:
        if part.isdigit():
            total += 1  # a number read as one word-ish unit; rare in prose
            continue
        total += _part_syllables(part)
    return max(1, total)


def _complex(word: str) -> bool:
    count = syllables(word)
    if count < 3:
        return False
    lower = word.lower()
    for suffix in ("ing", "ed", "es"):
        if lower.endswith(suffix) and len(lower) > len(suffix) + 2:
            return syllables(word[: -len(suffix)]) >= 3
    return True


@dataclass(frozen=True)
class Readability:
    words: int
    sentences: int
    syllables: int
    complex_words: int
    polysyllables: int
    flesch_reading_ease: float
    flesch_kincaid_grade: float
    gunning_fog: float
    smog: float
    avg_sentence_length: float
    avg_syllables_per_word: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def readability_of_sentences(all_sentences: list[str]) -> Readability:
    word_list = [w for s in all_sentences for w in words(s)]
    n_words, n_sentences = len(word_list), len(all_sentences)
    if not n_words or not n_sentences:
        return Readability(0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    n_syllables = sum(syllables(w) for w in word_list)
    poly = sum(1 for w in word_list if syllables(w) >= 3)
    complex_words = sum(1 for w in word_list if _complex(w))
    asl = n_words / n_sentences
    asw = n_syllables / n_words
    return Readability(
        words=n_words,
        sentences=n_sentences,
        syllables=n_syllables,
        complex_words=complex_words,
        polysyllables=poly,
        flesch_reading_ease=round(206.835 - 1.015 * asl - 84.6 * asw, 2),
        flesch_kincaid_grade=round(0.39 * asl + 11.8 * asw - 15.59, 2),
        gunning_fog=round(0.4 * (asl + 100 * complex_words / n_words), 2),
        smog=round(1.0430 * math.sqrt(poly * 30 / n_sentences) + 3.1291, 2),
        avg_sentence_length=round(asl, 2),
        avg_syllables_per_word=round(asw, 3),
    )


def readability(markdown: str, prose: list[Paragraph] | None = None) -> Readability:
    """The readability of ``markdown``'s prose."""
    prose = prose if prose is not None else paragraphs(markdown)
    return readability_of_sentences([s for p in prose for s in sentences(p.text)])
