"""Markdown → PDF layout with ReportLab (BSD): markdown-it-py tokens become ReportLab flowables
(headings, paragraphs with inline emphasis, code and links, nested lists, block quotes, GFM
tables with cell borders, fenced code in a monospaced font, local images at their own size).

No browser, no system libraries, nothing downloaded. Text is set in DejaVu Sans when Debian's
``fonts-dejavu-core`` is installed (every Unicode letter the document uses), else in the PDF base
fonts (Helvetica, Courier: Latin-1 only). A small CSS subset is understood (see ``apply_css``);
other rules are reported back as warnings rather than silently dropped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_FONT_FILES = {
    "Sans": "DejaVuSans.ttf", "Sans-Bold": "DejaVuSans-Bold.ttf",
    "Sans-Oblique": "DejaVuSans-Oblique.ttf", "Sans-BoldOblique": "DejaVuSans-BoldOblique.ttf",
    "SansMono": "DejaVuSansMono.ttf", "SansMono-Bold": "DejaVuSansMono-Bold.ttf",
    "SansMono-Oblique": "DejaVuSansMono-Oblique.ttf",
    "SansMono-BoldOblique": "DejaVuSansMono-BoldOblique.ttf",
    "Serif": "DejaVuSerif.ttf", "Serif-Bold": "DejaVuSerif-Bold.ttf",
    "Serif-Oblique": "DejaVuSerif-Italic.ttf", "Serif-BoldOblique": "DejaVuSerif-BoldItalic.ttf",
}
_BASE_FONTS = {"Sans": "Helvetica", "SansMono": "Courier", "Serif": "Times-Roman"}
_BASE_VARIANTS = {
    "Helvetica": ("Helvetica-Bold", "Helvetica-Oblique", "Helvetica-BoldOblique"),
    "Courier": ("Courier-Bold", "Courier-Oblique", "Courier-BoldOblique"),
    "Times-Roman": ("Times-Bold", "Times-Italic", "Times-BoldItalic"),
}


def paper_size(name: str) -> tuple[float, float] | None:
    """A ReportLab page size by name (``A4``, ``letter``, ``legal``…; ``-L`` for landscape)."""
    from reportlab.lib import pagesizes

    key = name.strip().upper().replace("-", "_")
    landscape = key.endswith("_L")
    if landscape:
        key = key[:-2]
    size = getattr(pagesizes, key, None)
    if not (isinstance(size, tuple) and len(size) == 2 and key.isupper()):
        return None
    return (size[1], size[0]) if landscape else (float(size[0]), float(size[1]))


def _register_fonts() -> dict[str, str]:
    """Family name → regular font name, registering DejaVu (with bold/italic) when present."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if not all((DEJAVU / f).is_file() for f in _FONT_FILES.values()):
        for regular, (bold, italic, both) in _BASE_VARIANTS.items():
            addMapping(regular, 0, 0, regular)
            addMapping(regular, 1, 0, bold)
            addMapping(regular, 0, 1, italic)
            addMapping(regular, 1, 1, both)
        return dict(_BASE_FONTS)
    for name, file in _FONT_FILES.items():
        full = f"DejaVu{name}"
        if full not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(full, str(DEJAVU / file)))
    for family in ("Sans", "SansMono", "Serif"):
        base = f"DejaVu{family}"
        addMapping(base, 0, 0, base)
        addMapping(base, 1, 0, f"{base}-Bold")
        addMapping(base, 0, 1, f"{base}-Oblique")
        addMapping(base, 1, 1, f"{base}-BoldOblique")
    return {family: f"DejaVu{family}" for family in ("Sans", "SansMono", "Serif")}


@dataclass
class Look:
    """What the CSS subset can change."""

    body_family: str = "Sans"
    body_size: float = 11.0
    code_size: float = 9.0
    text_color: str = "#000000"
    link_color: str = "#1a4fa0"
    heading_color: str = "#000000"
    table_border: str = "#888888"
    table_header_bg: str = "#eeeeee"
    warnings: list[str] = field(default_factory=list)


_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_SIZE = re.compile(r"^\s*([\d.]+)\s*(pt|px)?\s*$")


def apply_css(css: str) -> Look:
    """The CSS subset: ``font-size`` and ``font-family`` (serif / sans-serif / monospace) of
    ``body``; ``font-size`` of ``pre``/``code``; ``color`` of ``body``,
    ``a`` and headings; ``border`` colour of ``td``/``th``; ``background-color`` of ``th``.
    Anything else comes back as a warning naming the rule."""
    look = Look()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    for selectors, body in _RULE.findall(css):
        for selector in (s.strip() for s in selectors.split(",")):
            for declaration in filter(None, (d.strip() for d in body.split(";"))):
                prop, _, value = (part.strip() for part in declaration.partition(":"))
                if not _apply(look, selector, prop.lower(), value):
                    look.warnings.append(f"CSS not applied (unsupported): {selector} {{ {prop} }}")
    return look


def _apply(look: Look, selector: str, prop: str, value: str) -> bool:
    size = _SIZE.match(value)
    color = value if re.fullmatch(r"#[0-9a-fA-F]{3,6}|[a-z]+", value) else None
    if selector == "body" and prop == "font-size" and size:
        look.body_size = float(size.group(1)) * (0.75 if size.group(2) == "px" else 1)
    elif selector == "body" and prop == "font-family":
        lowered = value.lower()
        look.body_family = ("SansMono" if "mono" in lowered else
                            "Sans" if "sans" in lowered else
                            "Serif" if "serif" in lowered else look.body_family)
    elif selector in ("pre", "code") and prop == "font-size" and size:
        look.code_size = float(size.group(1)) * (0.75 if size.group(2) == "px" else 1)
    elif selector == "body" and prop == "color" and color:
        look.text_color = value
    elif selector == "a" and prop == "color" and color:
        look.link_color = value
    elif re.fullmatch(r"h[1-6]", selector) and prop == "color" and color:
        look.heading_color = value
    elif selector in ("td", "th", "th, td") and prop == "border":
        found = re.search(r"#[0-9a-fA-F]{3,6}", value)
        if not found:
            return False
        look.table_border = found.group(0)
    elif selector == "th" and prop in ("background", "background-color") and color:
        look.table_header_bg = value
    else:
        return False
    return True


ImageResolver = Callable[[str], "Path | None"]


class _Builder:
    """Walks markdown-it tokens and collects flowables."""

    def __init__(self, look: Look, fonts: dict[str, str], width: float,
                 resolve_image: ImageResolver, warnings: list[str]) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

        self.look, self.fonts, self.width = look, fonts, width
        self.resolve_image, self.warnings = resolve_image, warnings
        sheet = getSampleStyleSheet()
        body_font, mono = fonts[look.body_family], fonts["SansMono"]
        text = colors.toColor(look.text_color)
        self.body = ParagraphStyle("body", parent=sheet["BodyText"], fontName=body_font,
                                   fontSize=look.body_size, leading=look.body_size * 1.35,
                                   textColor=text, spaceAfter=look.body_size * 0.5)
        self.headings = {
            level: ParagraphStyle(
                f"h{level}", parent=self.body, fontName=body_font,
                fontSize=look.body_size * scale, leading=look.body_size * scale * 1.25,
                spaceBefore=look.body_size * 0.8, spaceAfter=look.body_size * 0.4,
                textColor=colors.toColor(look.heading_color))
            for level, scale in {1: 2.0, 2: 1.6, 3: 1.3, 4: 1.15, 5: 1.05, 6: 1.0}.items()}
        self.code = ParagraphStyle("code", parent=self.body, fontName=mono,
                                   fontSize=look.code_size, leading=look.code_size * 1.3,
                                   leftIndent=8, spaceBefore=4, spaceAfter=8)
        self.cell = ParagraphStyle("cell", parent=self.body, spaceAfter=0)
        self.quote = ParagraphStyle("quote", parent=self.body, leftIndent=18,
                                    textColor=colors.toColor("#444444"))

    # -- inline -------------------------------------------------------------------------

    def inline(self, token: Any) -> tuple[str, list[Any]]:
        """ReportLab paragraph markup for an inline token, and the images it holds."""
        out: list[str] = []
        images: list[Any] = []
        mono = self.fonts["SansMono"]
        for child in token.children or []:
            kind = child.type
            if kind == "text":
                out.append(html.escape(child.content, quote=False))
            elif kind in ("softbreak",):
                out.append(" ")
            elif kind == "hardbreak":
                out.append("<br/>")
            elif kind == "em_open":
                out.append("<i>")
            elif kind == "em_close":
                out.append("</i>")
            elif kind == "strong_open":
                out.append("<b>")
            elif kind == "strong_close":
                out.append("</b>")
            elif kind == "s_open":
                out.append("<strike>")
            elif kind == "s_close":
                out.append("</strike>")
            elif kind == "code_inline":
                out.append(f'<font face="{mono}">{html.escape(child.content, quote=False)}'
                           "</font>")
            elif kind == "link_open":
                href = html.escape(str(child.attrGet("href") or ""), quote=True)
                out.append(f'<link href="{href}" color="{self.look.link_color}">')
            elif kind == "link_close":
                out.append("</link>")
            elif kind == "image":
                images.append(child)
            elif kind == "html_inline":
                out.append(html.escape(child.content, quote=False))
        return "".join(out), images

    def image(self, token: Any) -> Any:
        from reportlab.platypus import Image, Paragraph

        src = str(token.attrGet("src") or "")
        alt = html.escape(token.content or src, quote=False)
        path = self.resolve_image(src)
        if path is None:
            return Paragraph(f"<i>[image: {alt}]</i>", self.body)
        try:
            from reportlab.lib.utils import ImageReader

            width, height = ImageReader(str(path)).getSize()
        except Exception as exc:  # Pillow's errors vary by format
            self.warnings.append(f"image not readable: {src} ({exc})")
            return Paragraph(f"<i>[image: {alt}]</i>", self.body)
        scale = min(1.0, self.width / max(1, width))
        return Image(str(path), width=width * scale, height=height * scale, hAlign="LEFT")

    # -- blocks -------------------------------------------------------------------------

    def build(self, tokens: list[Any]) -> list[Any]:
        flowables, _ = self._blocks(tokens, 0, None)
        return flowables

    def _blocks(self, tokens: list[Any], i: int, close: str | None,
                style: Any = None) -> tuple[list[Any], int]:
        from reportlab.lib import colors
        from reportlab.platypus import HRFlowable, Paragraph, Preformatted

        out: list[Any] = []
        style = style or self.body
        while i < len(tokens):
            token = tokens[i]
            kind = token.type
            if close is not None and kind == close:
                return out, i + 1
            if kind == "heading_open":
                markup, images = self.inline(tokens[i + 1])
                out.append(Paragraph(markup, self.headings[int(token.tag[1])]))
                out.extend(self.image(im) for im in images)
                i += 3
            elif kind == "paragraph_open":
                markup, images = self.inline(tokens[i + 1])
                if markup.strip():
                    out.append(Paragraph(markup, style))
                out.extend(self.image(im) for im in images)
                i += 3
            elif kind in ("fence", "code_block"):
                out.append(Preformatted(token.content.rstrip("\n"), self.code))
                i += 1
            elif kind in ("bullet_list_open", "ordered_list_open"):
                flow, i = self._list(tokens, i)
                out.append(flow)
            elif kind == "blockquote_open":
                inner, i = self._blocks(tokens, i + 1, "blockquote_close", self.quote)
                out.extend(inner)
            elif kind == "table_open":
                flow, i = self._table(tokens, i)
                out.append(flow)
            elif kind == "hr":
                out.append(HRFlowable(width="100%", color=colors.grey, spaceBefore=6,
                                      spaceAfter=6))
                i += 1
            elif kind == "html_block":
                out.append(Preformatted(token.content.rstrip("\n"), self.code))
                i += 1
            else:
                i += 1
        return out, i

    def _list(self, tokens: list[Any], i: int) -> tuple[Any, int]:
        from reportlab.platypus import ListFlowable, ListItem

        ordered = tokens[i].type == "ordered_list_open"
        close = "ordered_list_close" if ordered else "bullet_list_close"
        start = int(tokens[i].attrGet("start") or 1) if ordered else 1
        items: list[Any] = []
        i += 1
        while tokens[i].type != close:
            if tokens[i].type == "list_item_open":
                inner, i = self._blocks(tokens, i + 1, "list_item_close")
                items.append(ListItem(inner or [], leftIndent=14))
            else:
                i += 1
        kwargs: dict[str, Any] = {"bulletType": "1", "start": start,
                                                 "bulletFormat": "%s."} if ordered else {
            "bulletType": "bullet", "start": "•"}
        return ListFlowable(items, bulletFontName=self.body.fontName,
                            bulletFontSize=self.body.fontSize, leftIndent=14, **kwargs), i + 1

    def _table(self, tokens: list[Any], i: int) -> tuple[Any, int]:
        from reportlab.lib import colors
        from reportlab.platypus import Paragraph, Table, TableStyle

        rows: list[list[Any]] = []
        aligns: list[str] = []
        header_rows = 0
        in_head = False
        i += 1
        while tokens[i].type != "table_close":
            kind = tokens[i].type
            if kind == "thead_open":
                in_head = True
            elif kind == "thead_close":
                in_head = False
            elif kind == "tr_open":
                rows.append([])
                if in_head:
                    header_rows += 1
            elif kind in ("th_open", "td_open"):
                style_attr = str(tokens[i].attrGet("style") or "")
                align = "RIGHT" if "right" in style_attr else (
                    "CENTER" if "center" in style_attr else "LEFT")
                if len(rows) == 1:
                    aligns.append(align)
                markup, _ = self.inline(tokens[i + 1])
                if kind == "th_open":
                    markup = f"<b>{markup}</b>"
                rows[-1].append(Paragraph(markup, self.cell))
            i += 1
        width = max((len(r) for r in rows), default=1)
        for row in rows:
            row.extend([""] * (width - len(row)))
        commands: list[Any] = [
            ("GRID", (0, 0), (-1, -1), 0.5, colors.toColor(self.look.table_border)),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        if header_rows:
            commands.append(("BACKGROUND", (0, 0), (-1, header_rows - 1),
                             colors.toColor(self.look.table_header_bg)))
        for column, align in enumerate(aligns):
            if align != "LEFT":
                for row in rows:
                    cell = row[column]
                    if hasattr(cell, "style"):
                        cell.style = type(cell.style)(f"{cell.style.name}-{align}",
                                                      parent=cell.style,
                                                      alignment={"RIGHT": 2, "CENTER": 1}[align])
        table = Table(rows, repeatRows=header_rows, hAlign="LEFT")
        table.setStyle(TableStyle(commands))
        return table, i + 1


def local_image(src: str, base: Path) -> Path | None:
    """The file a Markdown image source names, if it is a local file that exists."""
    parsed = urlparse(src)
    if parsed.scheme not in ("", "file"):
        return None
    path = Path(unquote(parsed.path))
    resolved = path if path.is_absolute() else base / path
    return resolved.resolve() if resolved.is_file() else None


def render_pdf(markdown: str, target: Path, *, base: Path, title: str, creator: str,
               css: str | None = None, paper: tuple[float, float] | None = None) -> list[str]:
    """Lay out ``markdown`` into the PDF file ``target``; return the warnings (images not
    found or remote, CSS not applied). Raises ``OSError`` when the file cannot be written
    and ``ValueError`` when the layout fails."""
    from markdown_it import MarkdownIt
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import cm
    from reportlab.platypus import SimpleDocTemplate

    look = apply_css(css) if css else Look()
    warnings = list(look.warnings)

    def resolve(src: str) -> Path | None:
        scheme = urlparse(src).scheme
        if scheme in ("http", "https"):
            warnings.append(f"remote image not fetched (offline): {src}")
            return None
        found = local_image(src, base)
        if found is None:
            warnings.append(f"image not found: {src}")
        return found

    page = paper or A4
    margin = 2 * cm
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    builder = _Builder(look, _register_fonts(), page[0] - 2 * margin, resolve, warnings)
    story = builder.build(parser.parse(markdown))
    doc = SimpleDocTemplate(str(target), pagesize=page, leftMargin=margin, rightMargin=margin,
                            topMargin=margin, bottomMargin=margin, title=title, creator=creator,
                            author="", subject="")
    try:
        doc.build(story or [_empty(builder)])
    except OSError:
        raise
    except Exception as exc:  # ReportLab's LayoutError and friends
        raise ValueError(str(exc)) from exc
    return warnings


def _empty(builder: _Builder) -> Any:
    from reportlab.platypus import Spacer

    return Spacer(1, builder.body.fontSize)
