"""Write a finished Markdown document as ``md``, ``html``, ``pdf`` or ``docx``.

DOCX goes through python-docx (MIT): headings, paragraphs with bold/italic/code runs, bulleted
and numbered lists, tables, block quotes, code blocks and footnote-style notes as paragraphs.
PDF goes through the same ReportLab renderer as ``manus-md-to-pdf``. Each file is written beside
its target and renamed into place, so a failure never leaves half a document.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
from pathlib import Path
from typing import Any

from openmanus_tui.writing.prose import markdown_parser

HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.5}}
table{{border-collapse:collapse}}th,td{{border:1px solid #888;padding:.2em .5em}}
pre{{background:#f4f4f4;padding:.5em;overflow:auto}}</style></head>
<body>
{body}</body></html>
"""


class OutputError(OSError):
    """The document could not be written (one line)."""


def title_of(markdown: str, fallback: str = "Document") -> str:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def to_html(markdown: str) -> str:
    body = markdown_parser().render(markdown)
    return HTML_PAGE.format(title=html.escape(title_of(markdown)), body=body)


def _runs(paragraph: Any, token: Any, base: Path | None = None) -> None:
    """Add ``token``'s inline children to a python-docx paragraph as formatted runs (a local
    image under ``base`` as a picture, anything else as its alt text)."""
    bold = italic = strike = False
    link: str | None = None
    for child in token.children or []:
        kind = child.type
        if kind in ("text", "html_inline"):
            run = paragraph.add_run(child.content)
            run.bold, run.italic = bold or None, italic or None
            run.font.strike = strike or None
            if link:
                run.underline = True
        elif kind in ("softbreak",):
            paragraph.add_run(" ")
        elif kind == "hardbreak":
            paragraph.add_run().add_break()
        elif kind == "code_inline":
            run = paragraph.add_run(child.content)
            run.font.name = "Courier New"
        elif kind in ("strong_open", "strong_close"):
            bold = kind == "strong_open"
        elif kind in ("em_open", "em_close"):
            italic = kind == "em_open"
        elif kind in ("s_open", "s_close"):
            strike = kind == "s_open"
        elif kind == "link_open":
            link = str(child.attrGet("href") or "")
        elif kind == "link_close":
            if link and not link.startswith("#"):
                paragraph.add_run(f" ({link})")
            link = None
        elif kind == "image":
            from openmanus_tui.utilities.pdf_render import local_image

            found = local_image(str(child.attrGet("src") or ""), base) if base else None
            try:
                if found is None:
                    raise ValueError("not a local file")
                from docx.shared import Inches

                paragraph.add_run().add_picture(str(found), width=Inches(6) if _wide(found)
                                                else None)
            except Exception:  # python-docx raises its own errors for unreadable images
                alt = child.content or child.attrGet("src")
                paragraph.add_run(f"[image: {alt}]").italic = True


def _wide(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as image:
        return image.size[0] > 576  # 6 inches at 96 dpi


def to_docx(markdown: str, target: Path, base: Path | None = None) -> None:
    """Write ``markdown`` as a Word document at ``target`` (images relative to ``base``)."""
    from docx import Document

    document = Document()
    document.core_properties.title = title_of(markdown)
    tokens = markdown_parser().parse(markdown)
    list_styles: list[str] = []
    quote = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind == "heading_open":
            heading = document.add_heading(level=min(int(token.tag[1]), 9))
            _runs(heading, tokens[i + 1], base)
            i += 3
            continue
        if kind == "bullet_list_open":
            list_styles.append("List Bullet")
        elif kind == "ordered_list_open":
            list_styles.append("List Number")
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_styles.pop()
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
        elif kind == "paragraph_open":
            if list_styles:
                depth = len(list_styles)
                style = list_styles[-1] + (f" {depth}" if 1 < depth <= 3 else "")
            else:
                style = "Quote" if quote else None
            paragraph = document.add_paragraph(style=style)
            _runs(paragraph, tokens[i + 1], base)
            i += 3
            continue
        elif kind in ("fence", "code_block"):
            paragraph = document.add_paragraph()
            run = paragraph.add_run(token.content.rstrip("\n"))
            run.font.name = "Courier New"
        elif kind == "table_open":
            i = _table(document, tokens, i)
            continue
        elif kind == "hr":
            document.add_paragraph("—" * 10)
        i += 1
    document.save(str(target))


def _table(document: Any, tokens: list[Any], i: int) -> int:
    rows: list[list[tuple[Any, bool]]] = []
    i += 1
    while tokens[i].type != "table_close":
        kind = tokens[i].type
        if kind == "tr_open":
            rows.append([])
        elif kind in ("th_open", "td_open"):
            rows[-1].append((tokens[i + 1], kind == "th_open"))
        i += 1
    columns = max((len(r) for r in rows), default=1)
    table = document.add_table(rows=len(rows), cols=columns)
    table.style = "Table Grid"
    for r, row in enumerate(rows):
        for c, (inline, header) in enumerate(row):
            cell = table.cell(r, c)
            paragraph = cell.paragraphs[0]
            _runs(paragraph, inline)
            if header:
                for run in paragraph.runs:
                    run.bold = True
    return i + 1


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "document"


def free_name(folder: Path, title: str, fmt: str) -> Path:
    """``folder/<title as a file name>.<fmt>``, numbered when that file exists already."""
    stem = slug(title)
    target = folder / f"{stem}.{fmt}"
    number = 2
    while target.exists():
        target = folder / f"{stem}-{number}.{fmt}"
        number += 1
    return target


def write_document(markdown: str, target: Path, fmt: str) -> Path:
    """Write ``markdown`` to ``target`` in ``fmt`` (md, html, pdf, docx); returns ``target``."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "md":
            partial.write_text(markdown, encoding="utf-8")
        elif fmt == "html":
            partial.write_text(to_html(markdown), encoding="utf-8")
        elif fmt == "docx":
            to_docx(markdown, partial, base=target.parent.resolve())
        elif fmt == "pdf":
            from openmanus_tui.utilities.pdf_render import render_pdf

            render_pdf(markdown, partial, base=target.parent.resolve(),
                       title=title_of(markdown), creator="openmanus write")
        else:
            raise ValueError(f"unknown format {fmt!r}: use md, html, pdf or docx")
        os.replace(partial, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return target
