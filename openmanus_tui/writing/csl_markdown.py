"""A citeproc-py output format for Markdown: italics as ``*…*``, bold as ``**…**``, so a
reference list in a Markdown document keeps the style's italics (journal and book titles)."""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\*_\[\]`])")


def preformat(text: object) -> str:
    return _SPECIAL.sub(r"\\\1", str(text))


def _wrapper(mark: str) -> type[str]:
    class Wrapped(str):
        def __new__(cls, text: str) -> Wrapped:
            return super().__new__(cls, f"{mark}{text}{mark}" if str(text).strip() else text)

    return Wrapped


Italic = _wrapper("*")
Oblique = Italic
Bold = _wrapper("**")
Light = str
Underline = str
Superscript = _wrapper("^")
Subscript = _wrapper("~")
SmallCaps = str
