"""BibTeX → CSL-JSON, through bibtexparser 2 (MIT): LaTeX decoded, names split into parts."""

from __future__ import annotations

import re
from typing import Any

# BibTeX entry types → CSL types (the ones a writer's file commonly holds).
_TYPES = {
    "article": "article-journal",
    "book": "book",
    "inbook": "chapter",
    "incollection": "chapter",
    "inproceedings": "paper-conference",
    "conference": "paper-conference",
    "proceedings": "book",
    "phdthesis": "thesis",
    "mastersthesis": "thesis",
    "techreport": "report",
    "manual": "report",
    "online": "webpage",
    "misc": "document",
    "unpublished": "manuscript",
}
# BibTeX fields → CSL variables taken as they are.
_FIELDS = {
    "title": "title",
    "volume": "volume",
    "number": "issue",
    "pages": "page",
    "publisher": "publisher",
    "address": "publisher-place",
    "edition": "edition",
    "doi": "DOI",
    "url": "URL",
    "isbn": "ISBN",
    "issn": "ISSN",
    "abstract": "abstract",
    "note": "note",
}
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


class BibtexError(ValueError):
    """The file is not BibTeX that can be read."""


def _date(text: str, month: str | None = None, day: str | None = None) -> dict[str, Any] | None:
    match = re.match(r"\s*(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?", text or "")
    if not match:
        return None
    parts = [int(match.group(1))]
    m = match.group(2) or month
    if m:
        m_str = str(m).strip().lower()[:3]
        number = _MONTHS.get(m_str) or (int(m_str) if m_str.isdigit() else None)
        if number:
            parts.append(number)
            d = match.group(3) or day
            if d and str(d).strip().isdigit():
                parts.append(int(str(d).strip()))
    return {"date-parts": [parts]}


def _decode(text: str) -> str:
    from pylatexenc.latex2text import LatexNodes2Text

    return LatexNodes2Text().latex_to_text(text).strip()


def _names(value: Any) -> list[dict[str, str]]:
    from bibtexparser.middlewares.names import NameParts

    people: list[dict[str, str]] = []
    for part in value if isinstance(value, list) else [value]:
        if isinstance(part, NameParts):
            raw_family = " ".join(part.last)
            family = _decode(raw_family)
            given = _decode(" ".join(part.first))
            von = _decode(" ".join(part.von))
            if (not given and not von and not part.jr and raw_family.startswith("{")
                    and raw_family.endswith("}")):
                # `{World Health Organization}`: a braced name is an organisation.
                people.append({"literal": family})
                continue
            person = {"family": family}
            if given:
                person["given"] = given
            if von:
                person["non-dropping-particle"] = von
            if part.jr:
                person["suffix"] = _decode(" ".join(part.jr))
            people.append(person)
        else:
            people.append({"literal": str(part)})
    return people


def bibtex_to_csl(text: str) -> list[dict[str, Any]]:
    """The entries of a BibTeX document as CSL-JSON items (keys kept as ids)."""
    import bibtexparser
    from bibtexparser import middlewares as mw

    library = bibtexparser.parse_string(
        text,
        # Names are split before LaTeX is decoded so that a braced name
        # (``{World Health Organization}``) stays one organisation.
        append_middleware=[
            mw.SeparateCoAuthors(),
            mw.SplitNameParts(),
            mw.LatexDecodingMiddleware(),
        ],
    )
    if library.failed_blocks:
        first = library.failed_blocks[0]
        line = getattr(first, "start_line", None)
        where = f" (line {line + 1})" if isinstance(line, int) else ""
        raise BibtexError(f"cannot read a BibTeX entry{where}: {getattr(first, 'error', first)}")
    items: list[dict[str, Any]] = []
    for entry in library.entries:
        fields = {f.key.lower(): f.value for f in entry.fields}
        kind = entry.entry_type.lower()
        item: dict[str, Any] = {"id": entry.key, "type": _TYPES.get(kind, "document")}
        for name, variable in _FIELDS.items():
            if name in fields and str(fields[name]).strip():
                item[variable] = str(fields[name]).strip()
        for role in ("author", "editor"):
            if role in fields:
                item[role] = _names(fields[role])
        container = fields.get("journal") or fields.get("booktitle") or fields.get("journaltitle")
        if container:
            item["container-title"] = str(container).strip()
        if kind in ("phdthesis", "mastersthesis") and "school" in fields:
            item["publisher"] = str(fields["school"]).strip()
        if kind in ("techreport",) and "institution" in fields:
            item["publisher"] = str(fields["institution"]).strip()
        issued = _date(str(fields.get("date") or fields.get("year") or ""),
                       fields.get("month"), fields.get("day"))
        if issued:
            item["issued"] = issued
        accessed = _date(str(fields.get("urldate") or ""))
        if accessed:
            item["accessed"] = accessed
        if kind == "misc" and "url" in fields and "container-title" not in item:
            item["type"] = "webpage"
        items.append(item)
    return items
