"""``openmanus cite FILE.json|FILE.bib [--style STYLE] [--format text|html]``: the formatted
reference list of a CSL-JSON or BibTeX file, no model needed (issue 14; the formatting is
``runtime/writing.py``'s)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles


def add_parser(sub: Any) -> None:
    cite = sub.add_parser("cite", help="print the formatted reference list of a CSL-JSON or "
                          "BibTeX file (no model needed)")
    cite.add_argument("file", metavar="FILE", help="references (.json CSL-JSON or .bib)")
    cite.add_argument("--style", default=None, metavar="STYLE",
                      help="apa (default), mla, chicago-author-date or chicago-notes")
    cite.add_argument("--format", choices=("text", "html"), default="text")
    handles(cite, handle, needs="settings")


def handle(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.writing import format_reference_file

    entries = format_reference_file(Path(args.file), args.style, args.format, settings)
    if args.format == "html":
        print('<div class="csl-bib-body">')
        for entry in entries:
            print(f'  <div class="csl-entry">{entry}</div>')
        print("</div>")
    else:
        print("\n\n".join(entries))
    return EXIT_OK
