"""``manus-md-to-pdf``: convert a Markdown file to PDF, offline.

markdown-it-py parses, ReportLab (BSD) lays out (``pdf_render.py``): no browser, no LaTeX, no
downloads. Tables (GFM pipe tables), fenced code blocks and images are supported. Relative image
paths are resolved against the Markdown file's folder; images that cannot be found (or are
remote: nothing is fetched) are reported as warnings on stderr and rendered as a placeholder,
not treated as failures.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from openmanus_tui.utilities._cli import (
    EXIT_CODES_HELP,
    EXIT_OK,
    Failure,
    OneLineParser,
    UsageError,
    run_main,
)
from openmanus_tui.utilities.pdf_render import paper_size, render_pdf

PROG = "manus-md-to-pdf"


def _title_from(markdown: str, fallback: str) -> str:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def convert(source: Path, target: Path, *, css: str | None = None, paper: str = "A4") -> list[str]:
    """Write ``target`` from the Markdown file ``source``; return warnings (missing images,
    CSS the renderer does not apply).

    Raises ``UsageError`` for unreadable input or an unknown paper size, ``Failure`` if the PDF
    cannot be produced.
    """
    size = paper_size(paper)
    if size is None:
        raise UsageError(f"unknown paper size: {paper!r}")
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

    # Write beside the target and rename, so a failed run never leaves a truncated PDF.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        warnings = render_pdf(text, partial, base=source.resolve().parent,
                              title=_title_from(text, source.stem), creator=PROG, css=css,
                              paper=size)
        os.replace(partial, target)
    except OSError as exc:
        raise Failure(f"cannot write {target}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise Failure(f"cannot lay out {source}: {exc}") from None
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
    parser.add_argument("--css", type=Path,
                        help="CSS file adjusting the default style (fonts, sizes, colours; "
                        "rules the renderer cannot apply are listed as warnings)")
    parser.add_argument(
        "--paper", default="A4",
        help="paper size, e.g. A4, A5, letter, legal; -L for landscape (default A4)"
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
