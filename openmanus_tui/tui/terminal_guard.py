"""The workbench's last line against terminal escapes: no control character in widget text is
ever written to the terminal, whatever widget or path the text came by.

Textual (8.2, checked by ``tests/test_tui_terminal_safety.py`` in a pty) writes widget text to
the terminal as it is: only BEL, BS, VT, FF and CR are stripped (by Rich); ESC and the C1
controls go out raw, so a session title holding ``ESC]0;…ESC\\`` set the terminal's window title
and an OSC 52 would write the clipboard. Every text cell reaches the terminal through
:meth:`textual.strip.Strip.render` (full layouts and partial updates alike), so that is the one
place to close it: :func:`install` wraps it so that segment text loses its control characters
before Textual adds its own styling sequences (which it keeps). Those characters take no cell,
so the layout is unchanged.

This is the backstop. Where the workbench turns model, tool or stored text into content
(events via :func:`termsafe.safe_event`, titles, the approval modal, notifications), it uses
:func:`termsafe.sanitize`, which shows the sequences as visible ``\\x1b`` text instead.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip

from openmanus_tui.termsafe import drop_controls, has_controls, sanitize

_original_render = Strip.render


def _guarded_render(self: Strip, console: Any) -> str:
    if self._render_cache is None:
        segments = self._segments
        if has_controls("".join([segment.text for segment in segments])):
            clean = Strip(
                [Segment(drop_controls(text), style, control) for text, style, control in segments],
                self._cell_length,
            )
            self._render_cache = _original_render(clean, console)
    return _original_render(self, console)


def install() -> None:
    """Guard :meth:`Strip.render` (idempotent)."""
    if Strip.render is not _guarded_render:
        Strip.render = _guarded_render  # type: ignore[method-assign]


def installed() -> bool:
    return Strip.render is _guarded_render


def plain(text: str, style: str = "") -> Text:
    """Untrusted text (a title, a note, an error, a name) as widget content: never read as
    markup (``[@click=…]`` would make an action link), control sequences as visible escapes."""
    return Text(sanitize(text, keep_sgr=False), style=style)
