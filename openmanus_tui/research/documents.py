"""Documents: what a fetched page or a workspace file says, extracted once and stored once.

* :func:`normalize_url` is the key of a web source (courlan: lower-case host, default port
  dropped, tracking parameters dropped, parameters sorted; plus no fragment, dot segments
  resolved). The same page reached by two spellings is one source.
* :func:`extract` turns bytes into a :class:`Document`: HTML through trafilatura (main text,
  title, author, site name) with the dates from htmldate, given only the page's own date
  markup (meta tags, ``<time>``, schema.org, JSON-LD) and the URL — a date merely mentioned in
  the text is never taken for the page's date; PDF through pypdf (text, title, author, creation and
  modification dates); plain text as it is. Primary-source signals (a DOI, data, a methods
  section) are read from the markup and the text.
* :class:`DocumentStore` keeps the text content-addressed (``research_documents``, keyed by the
  SHA-256 of the text, so two URLs serving the same text store it once) and the last fetch of
  each normalised URL (``research_pages``), which is the TTL cache: a page fetched again within
  ``network.cache_ttl_hours`` is not read from the network again.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from openmanus_tui.errors import OpenManusError
from openmanus_tui.store.tables import TableStore

HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPES = ("application/pdf", "application/x-pdf")
TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown", "text/csv", "application/json")
MAX_TEXT_CHARS = 2_000_000  # of extracted text kept per document


class ExtractError(OpenManusError):
    """The bytes could not be read as a document; one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_class="permanent")


@dataclass
class Signals:
    """Primary-source signals found in a document (credibility factors)."""

    doi: str | None = None
    data: bool = False  # a dataset, data table or data availability statement
    methods: bool = False  # a methods / methodology section

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Document:
    url: str  # the normalised URL, or "file:<workspace-relative path>"
    final_url: str
    kind: str  # "html", "pdf", "text"
    title: str
    author: str | None
    site: str | None
    domain: str
    published: str | None  # ISO date (YYYY-MM-DD) or None when the document does not say
    modified: str | None
    text: str
    content_hash: str
    fetched: float  # epoch seconds
    content_type: str = ""
    truncated: bool = False
    signals: Signals = field(default_factory=Signals)
    from_cache: bool = False
    aliases: list[str] = field(default_factory=list)  # other normalised URLs that led here
    via_private: bool = False  # fetched through a non-public address (allowed at the time)

    @property
    def https(self) -> bool:
        return self.final_url.lower().startswith("https://")

    def meta(self) -> dict[str, Any]:
        """Everything but the text (what the page cache stores next to the hash)."""
        out = asdict(self)
        out.pop("text")
        out.pop("from_cache")
        return out


# ---- URLs ---------------------------------------------------------------------------------
def normalize_url(url: str) -> str:
    """The key of a web source (see the module docstring); the URL as given if courlan
    cannot parse it."""
    import courlan

    text = url.strip()
    try:
        normal = courlan.normalize_url(text)
    except (ValueError, TypeError, AttributeError):
        normal = text
    parts = urlsplit(normal)
    path = parts.path or "/"
    if ".." in path or "/./" in path:
        trailing = path.endswith("/")
        path = posixpath.normpath(path)
        path = path + "/" if trailing and path != "/" else path
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def domain_of(url: str) -> str:
    """The registered domain (``bbc.co.uk`` for ``www.bbc.co.uk``), or the host when there is
    none (an IP address, ``localhost``, a test name)."""
    import courlan

    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    try:
        found = courlan.extract_domain(url, fast=True)
    except (ValueError, TypeError, AttributeError):
        found = None
    return (found or host or "").lower()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---- extraction ---------------------------------------------------------------------------
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>]+[^\s\"'<>.,;)\]])")
_DATA = re.compile(
    r"\b(data ?sets?|data availability|data are available|raw data|supplementary data"
    r"|statistical (release|bulletin|tables?)|data tables?|download the data)\b",
    re.IGNORECASE,
)
_METHODS = re.compile(
    r"^\s*(#+\s*)?(materials and methods|methods|methodology|study design)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_META_DOI = re.compile(
    r"<meta[^>]+name=[\"'](?:citation_doi|dc\.identifier|prism\.doi)[\"'][^>]*content=[\"']"
    r"(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.[^\"']+)[\"']",
    re.IGNORECASE,
)


def find_signals(text: str, html: str = "") -> Signals:
    doi_match = _META_DOI.search(html) if html else None
    doi = doi_match.group(1) if doi_match else None
    if doi is None:
        found = _DOI.search(text)
        doi = found.group(1) if found else None
    return Signals(doi=doi, data=bool(_DATA.search(text)), methods=bool(_METHODS.search(text)))


def _iso(value: Any) -> str | None:
    """A date as YYYY-MM-DD, or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    text = str(value).strip()
    match = re.match(r"^(?:D:)?(\d{4})-?(\d{2})-?(\d{2})", text)
    if not match:
        return None
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3])).date().isoformat()
    except ValueError:
        return None


def _decode_html(body: bytes, charset: str | None) -> str:
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000]).best()
    return body.decode(best.encoding if best else "utf-8", errors="replace")


_DATE_MARKUP = (
    "//time | //*[@itemprop='datePublished' or @itemprop='dateModified' or "
    "@itemprop='dateCreated'] | //script[@type='application/ld+json']"
)


def _date_markup(html: str) -> str:
    """Only where a page states its own dates: the head (meta tags), ``<time>`` elements,
    schema.org date properties and JSON-LD. htmldate, even without its extensive search,
    takes an ISO date written anywhere in the text for the page's date; the body's prose is
    left out so that a date merely mentioned there is never taken."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    head = tree.find("head")
    head_text = etree.tostring(head, encoding="unicode") if head is not None else "<head></head>"
    body = [
        etree.tostring(el, encoding="unicode", with_tail=False)
        for el in tree.xpath(_DATE_MARKUP)
        if head is None or head not in el.iterancestors()
    ]
    return f"<html>{head_text}<body>{''.join(body)}</body></html>"


def _page_dates(html: str, url: str) -> tuple[str | None, str | None]:
    from htmldate import find_date

    options = {"extensive_search": False, "outputformat": "%Y-%m-%d"}
    markup = _date_markup(html)
    try:
        published = find_date(markup, url=url, original_date=True, **options)
        modified = find_date(markup, url=url, original_date=False, **options)
    except Exception:  # htmldate on a broken page: no date, not a failed fetch
        return None, None
    return _iso(published), _iso(modified)


def _extract_html(body: bytes, charset: str | None, url: str) -> dict[str, Any]:
    import trafilatura

    html = _decode_html(body, charset)
    found = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True,
        favor_recall=True, date_extraction_params={"extensive_search": False},
    )  # fmt: skip
    meta = found.as_dict() if found is not None and hasattr(found, "as_dict") else (found or {})
    text = meta.get("text") or ""
    if not text.strip():
        text = trafilatura.html2txt(html) or ""
    published, modified = _page_dates(html, url)
    return {
        "kind": "html",
        "title": (meta.get("title") or "").strip(),
        "author": (meta.get("author") or "").strip() or None,
        "site": (meta.get("sitename") or "").strip() or None,
        "published": published,
        "modified": modified if modified != published else None,
        "text": text,
        "signals": find_signals(text, html),
    }


def _extract_pdf(body: bytes) -> dict[str, Any]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractError(f"not a readable PDF: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())

    def when(attr: str) -> str | None:
        try:
            return _iso(getattr(info, attr, None)) if info is not None else None
        except (ValueError, TypeError):
            return None

    published = when("creation_date")
    modified = when("modification_date")
    return {
        "kind": "pdf",
        "title": ((info.title if info else None) or "").strip(),
        "author": ((info.author if info else None) or "").strip() or None,
        "site": None,
        "published": published,
        "modified": modified if modified != published else None,
        "text": text,
        "signals": find_signals(text),
    }


def _extract_text(body: bytes, charset: str | None) -> dict[str, Any]:
    text = body.decode(charset or "utf-8", errors="replace")
    first = next((line.strip("# ").strip() for line in text.splitlines() if line.strip()), "")
    return {
        "kind": "text",
        "title": first[:200],
        "author": None,
        "site": None,
        "published": None,
        "modified": None,
        "text": text,
        "signals": find_signals(text),
    }


def sniff_type(body: bytes, content_type: str, name: str = "") -> str:
    """The media type to read ``body`` as: the server's, corrected by the bytes themselves."""
    head = body[:1024].lstrip().lower()
    if body.startswith(b"%PDF-"):
        return "application/pdf"
    if content_type in (*HTML_TYPES, *PDF_TYPES, *TEXT_TYPES):
        return content_type
    if head.startswith((b"<!doctype html", b"<html")) or name.endswith((".html", ".htm")):
        return "text/html"
    if name.endswith((".txt", ".md", ".markdown", ".csv", ".json", ".rst")):
        return "text/plain"
    return content_type or "application/octet-stream"


def extract(
    body: bytes,
    *,
    url: str,
    final_url: str | None = None,
    content_type: str = "",
    charset: str | None = None,
    truncated: bool = False,
    fetched: float | None = None,
    name: str = "",
) -> Document:
    """A :class:`Document` from bytes (see the module docstring); ``ExtractError`` when the
    type is not one we read or nothing readable is in it."""
    media = sniff_type(body, content_type, name or urlsplit(final_url or url).path.lower())
    if media in HTML_TYPES:
        fields = _extract_html(body, charset, final_url or url)
    elif media in PDF_TYPES:
        if truncated:
            raise ExtractError("the PDF is larger than network.fetch_max_mb; it was not read")
        fields = _extract_pdf(body)
    elif media in TEXT_TYPES or media.startswith("text/"):
        fields = _extract_text(body, charset)
    else:
        raise ExtractError(f"cannot read content of type {media!r} (HTML, PDF or text only)")
    text = fields.pop("text")
    text = re.sub(r"[ \t]+\n", "\n", text).strip()[:MAX_TEXT_CHARS]
    if not text:
        raise ExtractError("no readable text in it")
    final = final_url or url
    parts = urlsplit(final)
    if fields["site"] and fields["site"].lower() in (parts.netloc.lower(), (parts.hostname or "")):
        fields["site"] = None  # trafilatura's fallback is the host name: not a site's name
    return Document(
        url=url,
        final_url=final,
        domain=domain_of(final) if "://" in final else "",
        text=text,
        content_hash=content_hash(text),
        fetched=time.time() if fetched is None else fetched,
        content_type=media,
        truncated=truncated,
        **{**fields, "title": fields["title"] or _fallback_title(final)},
    )


def _fallback_title(url: str) -> str:
    parts = urlsplit(url)
    tail = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return tail or parts.hostname or url


# ---- storage ------------------------------------------------------------------------------
SCHEMA = """
CREATE TABLE IF NOT EXISTS research_documents (
    content_hash TEXT PRIMARY KEY,
    chars INTEGER NOT NULL,
    created REAL NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS research_pages (
    url TEXT PRIMARY KEY,
    fetched REAL NOT NULL,
    content_hash TEXT NOT NULL,
    meta TEXT NOT NULL
);
"""


def _document_from_row(meta_json: str, text: str) -> Document:
    meta = json.loads(meta_json)
    meta["signals"] = Signals(**meta.get("signals") or {})
    return Document(text=text, from_cache=True, **meta)


class DocumentStore(TableStore):
    """The stored documents and the page cache, on the process's shared connection."""

    SCHEMA = SCHEMA

    async def put(self, doc: Document) -> None:
        """Store the text (once per content hash) and remember the page's last fetch under its
        URL and its aliases."""
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "INSERT OR IGNORE INTO research_documents (content_hash, chars, created, text) "
                "VALUES (?, ?, ?, ?)",
                (doc.content_hash, len(doc.text), time.time(), doc.text),
            )
            for url in (doc.url, *doc.aliases):
                await self.db.conn.execute(
                    "INSERT OR REPLACE INTO research_pages (url, fetched, content_hash, meta) "
                    "VALUES (?, ?, ?, ?)",
                    (url, doc.fetched, doc.content_hash, json.dumps(doc.meta())),
                )
            await self.db.conn.commit()

    async def cached(self, url: str, ttl_seconds: float) -> Document | None:
        """The page's last fetch when it is younger than ``ttl_seconds``."""
        await self.setup()
        async with self.db.conn.execute(
            "SELECT p.meta, d.text, p.fetched FROM research_pages p "
            "JOIN research_documents d ON d.content_hash = p.content_hash WHERE p.url = ?",
            (url,),
        ) as cur:
            row = await cur.fetchone()
        if row is None or time.time() - row[2] > ttl_seconds:
            return None
        return _document_from_row(row[0], row[1])

    async def prune_unreferenced(self) -> int:
        """Forget stored pages and texts that no session's source uses any more (after a
        session was deleted); returns how many texts went. The ``sources`` table must exist."""
        await self.setup()
        used = "SELECT content_hash FROM sources WHERE content_hash IS NOT NULL"
        async with self.db.saver.lock:
            await self.db.conn.execute(
                f"DELETE FROM research_pages WHERE content_hash NOT IN ({used})"
            )
            cur = await self.db.conn.execute(
                f"DELETE FROM research_documents WHERE content_hash NOT IN ({used})"
            )
            await self.db.conn.commit()
        return cur.rowcount or 0

    async def text(self, content_hash: str) -> str | None:
        """A stored document's whole text by its hash."""
        await self.setup()
        async with self.db.conn.execute(
            "SELECT text FROM research_documents WHERE content_hash = ?", (content_hash,)
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row else None
