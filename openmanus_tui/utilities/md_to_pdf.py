"""``manus-md-to-pdf``: convert a Markdown file to PDF, offline.

Uses ``markdown-pdf`` (markdown-it-py for parsing, PyMuPDF's Story engine for layout): no
browser, no LaTeX, no downloads. Tables (GFM pipe tables), fenced code blocks and images are
supported. Relative image paths are resolved against the Markdown file's folder; images that
cannot be found (or are remote: nothing is fetched) are reported as warnings on stderr and
rendered as a placeholder, not treated as failures.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from openmanus_tui.utilities._cli import (
    EXIT_CODES_HELP,
    EXIT_OK,
    Failure,
    OneLineParser,
    UsageError,
    run_main,
)

PROG = "manus-md-to-pdf"

# PyMuPDF's Story renders a subset of CSS; these rules keep tables and code readable.
DEFAULT_CSS = """
body { font-family: sans-serif; font-size: 11pt; }
table { border-collapse: collapse; margin: 6pt 0; }
th, td { border: 1px solid #888888; padding: 3pt 6pt; }
th { background-color: #eeeeee; }
pre { background-color: #f4f4f4; padding: 6pt; font-family: monospace; font-size: 9pt; }
code { font-family: monospace; }
img { max-width: 100%; }
"""


def _archive_path(path: Path, root: Path) -> str:
    # Images are named relative to the Story archive's root, which holds them all.
    return path.resolve().relative_to(root).as_posix()


def _local_image(src: str, base: Path) -> Path | None:
    """The file a Markdown image source names, if it is a local file that exists."""
    parsed = urlparse(src)
    if parsed.scheme not in ("", "file"):
        return None
    path = Path(unquote(parsed.path))
    resolved = path if path.is_absolute() else base / path
    return resolved.resolve() if resolved.is_file() else None


def _archive_root(md: Any, text: str, base: Path) -> Path:
    """The deepest folder holding the document's folder and every local image. Not simply
    ``/``: the archive lists its root, and a sandbox may not let ``/`` be listed."""
    folders = [base]
    for token in md.parse(text):
        for child in token.children or []:
            if child.type == "image":
                found = _local_image(str(child.attrGet("src") or ""), base)
                if found is not None:
                    folders.append(found.parent)
    return Path(os.path.commonpath(folders))


def _title_from(markdown: str, fallback: str) -> str:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def convert(source: Path, target: Path, *, css: str | None = None, paper: str = "A4") -> list[str]:
    """Write ``target`` from the Markdown file ``source``; return warnings (missing images).

    Raises ``UsageError`` for unreadable input, ``Failure`` if the PDF cannot be produced.
    """
    from markdown_it.renderer import RendererHTML
    from markdown_pdf import MarkdownPdf, Section

    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"input file not found: {source}") from None
    except IsADirectoryError:
        raise UsageError(f"input is a directory, not a Markdown file: {source}") from None
    except UnicodeDecodeError:
        raise UsageError(f"input is not UTF-8 text: {source}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None

    base = source.resolve().parent
    warnings: list[str] = []

    def image_rule(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        parsed = urlparse(src)
        if parsed.scheme in ("http", "https"):
            warnings.append(f"remote image not fetched (offline): {src}")
        elif parsed.scheme in ("", "file"):
            resolved = _local_image(src, base)
            if resolved is not None:
                token.attrSet("src", _archive_path(resolved, root))
            else:
                warnings.append(f"image not found: {src}")
        return RendererHTML.image(renderer, tokens, idx, options, env)

    pdf = MarkdownPdf(toc_level=3)
    pdf.m_d.enable("strikethrough")
    pdf.m_d.add_render_rule("image", image_rule)
    root = _archive_root(pdf.m_d, text, base)
    # ``meta`` is a class attribute in markdown-pdf; copy before changing it.
    pdf.meta = {**MarkdownPdf.meta, "title": _title_from(text, source.stem), "creator": PROG}
    try:
        pdf.add_section(Section(text, root=str(root), paper_size=paper),
                        user_css=css or DEFAULT_CSS)
    except (ValueError, RuntimeError) as exc:
        raise Failure(f"cannot lay out {source}: {exc}") from None
    # Write beside the target and rename, so a failed run never leaves a truncated PDF.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        pdf.save(partial)
        os.replace(partial, target)
    except OSError as exc:
        raise Failure(f"cannot write {target}: {exc.strerror or exc}") from None
    except Exception as exc:  # PyMuPDF raises its own FzError* classes for I/O problems
        raise Failure(f"cannot write {target}: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return warnings


def _build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROG,
        description="Convert a Markdown file to PDF (tables, code blocks, images; works offline).",
        epilog="Relative image paths are resolved against the Markdown file's folder. "
        + EXIT_CODES_HELP,
    )
    parser.add_argument("input", type=Path, help="Markdown file to convert")
    parser.add_argument("output", type=Path, help="PDF file to write")
    parser.add_argument("--css", type=Path, help="CSS file replacing the default style")
    parser.add_argument(
        "--paper", default="A4", help="paper size known to PyMuPDF, e.g. A4, letter (default A4)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print warnings")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    css = None
    if args.css is not None:
        try:
            css = args.css.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read CSS file {args.css}: {exc}") from None
    import pymupdf

    if pymupdf.paper_size(args.paper) == (-1, -1):
        raise UsageError(f"unknown paper size: {args.paper!r}")
    warnings = convert(args.input, args.output, css=css, paper=args.paper)
    if not args.quiet:
        for warning in warnings:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
    print(args.output)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
