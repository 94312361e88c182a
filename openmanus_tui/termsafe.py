"""Terminal-safe text: control sequences from model or sandbox output never reach a terminal raw.

Model text, tool output and stored transcripts can carry escape sequences that a terminal obeys:
OSC 52 writes the clipboard, OSC 0 sets the window title, ``ESC[2J`` clears the screen, a
lone ``\\r`` overwrites what was shown. :func:`sanitize` keeps text, newlines, tabs and a safe
subset of SGR colour sequences (``ESC[…m`` with colour, bold, dim, italic, underline, reverse,
strike and reset parameters; not blink or conceal, which can hide text), and shows everything
else visibly as escapes: ``ESC`` becomes the four characters ``\\x1b``, C1 controls, DEL and lone
surrogates (which cannot be encoded) become ``\\u009b``-style escapes.

Those escapes are valid JSON string escapes of the same characters, and valid JSON never holds a
raw control character, so the filter leaves JSON output meaning the same: :class:`SafeStream`
can wrap stdout and stderr for every non-TUI command (``cli.main`` installs it), which is the one
place all terminal paths (the run renderer, transcripts, history, export to stdout, doctor,
plain ``print``) go through.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

# SGR parameters that only change colour or emphasis. 5/6 (blink) and 8 (conceal) are left out.
_SAFE_SGR = {0, 1, 2, 3, 4, 7, 9, 21, 22, 23, 24, 27, 29, 39, 49, 53, 55}
_SAFE_SGR |= set(range(30, 38)) | set(range(40, 48)) | set(range(90, 98)) | set(range(100, 108))

_SGR = re.compile(r"\x1b\[([0-9;]{0,64})m")
# Everything a terminal may interpret: C0 but \t and \n, DEL, C1, lone surrogates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# A write that ends inside an SGR sequence: held back until the rest arrives.
_PARTIAL_TAIL = re.compile(r"\x1b(\[[0-9;]{0,64})?$")


def _sgr_is_safe(params: str) -> bool:
    if not params:
        return True  # ESC[m is a reset
    parts = params.split(";")
    i = 0
    while i < len(parts):
        if not parts[i].isdigit():
            return False
        code = int(parts[i])
        if code in (38, 48):  # extended colour: 5;n or 2;r;g;b
            mode = parts[i + 1] if i + 1 < len(parts) else ""
            width = {"5": 1, "2": 3}.get(mode)
            args = parts[i + 2 : i + 2 + (width or 0)]
            if width is None or len(args) != width or not all(a.isdigit() for a in args):
                return False
            if not all(int(a) < 256 for a in args):
                return False
            i += 2 + width
            continue
        if code not in _SAFE_SGR:
            return False
        i += 1
    return True


def has_controls(text: str) -> bool:
    """Whether ``text`` holds a character a terminal may interpret (C0 but tab and newline,
    DEL, C1, lone surrogates)."""
    return _UNSAFE.search(text) is not None


def drop_controls(text: str) -> str:
    """``text`` without the characters :func:`has_controls` looks for. For text already laid
    out in terminal cells: those characters take no cell, so dropping them keeps the layout,
    where :func:`sanitize`'s visible escapes would widen the line."""
    return _UNSAFE.sub("", text)


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code == 0x1B:
        return "\\x1b"
    if code < 0x20:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"  # DEL, C1, surrogates


def _escape_run(text: str) -> str:
    return _UNSAFE.sub(lambda m: _escape_char(m.group()), text)


def sanitize(text: str, *, keep_sgr: bool = True) -> str:
    """``text`` with every control sequence but safe SGR colours shown as visible escapes
    (``keep_sgr=False``: SGR too, for the workbench, which styles text itself)."""
    if not _UNSAFE.search(text):
        return text  # the common case: nothing to do
    text = text.replace("\r\n", "\n")
    if not keep_sgr:
        return _escape_run(text)
    out: list[str] = []
    pos = 0
    for m in _SGR.finditer(text):
        out.append(_escape_run(text[pos : m.start()]))
        out.append(m.group() if _sgr_is_safe(m.group(1)) else _escape_run(m.group()))
        pos = m.end()
    out.append(_escape_run(text[pos:]))
    return "".join(out)


def _safe_value(value: Any) -> Any:
    if isinstance(value, str):
        return sanitize(value, keep_sgr=False)
    if isinstance(value, dict):
        return {k: _safe_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe_value(v) for v in value]
    return value


def sanitize_value(value: Any) -> Any:
    """``value`` (str, or dicts and lists of them) with every string :func:`sanitize`-d without
    SGR: for the workbench's views of stored messages."""
    return _safe_value(value)


def _needs(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSAFE.search(value) is not None
    if isinstance(value, dict):
        return any(_needs(v) for v in value.values())
    if isinstance(value, list):
        return any(_needs(v) for v in value)
    return False


def safe_event(event: Any) -> Any:
    """A copy of a pydantic event whose text fields are :func:`sanitize`-d (no SGR kept), for
    views that render text themselves (the workbench); the event itself when nothing needs it."""
    fields = {k: getattr(event, k) for k in type(event).model_fields}
    changed = {k: _safe_value(v) for k, v in fields.items() if _needs(v)}
    return event.model_copy(update=changed) if changed else event


class SafeStream:
    """A text stream wrapper that writes :func:`sanitize`-d text to ``inner``.

    A sequence split across two writes (a streamed token ending in ``ESC[3``) is held back
    until the next write (or :meth:`close_pending`), so an allowed colour split in two is not
    mangled and a forbidden one split in two is still caught.
    """

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self._pending = ""

    @property
    def inner(self) -> TextIO:
        return self._inner

    def write(self, text: str) -> int:
        data = self._pending + text
        self._pending = ""
        tail = _PARTIAL_TAIL.search(data)
        if tail is not None:
            self._pending, data = tail.group(), data[: tail.start()]
        if data:
            self._inner.write(sanitize(data))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        # A held-back partial sequence stays held: streamed tokens are flushed one by one.
        self._inner.flush()

    def close_pending(self) -> None:
        """Write out a held-back partial sequence (escaped): the end of the output."""
        if self._pending:
            self._inner.write(sanitize(self._pending))
            self._pending = ""
            self._inner.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, buffer...
        return getattr(self._inner, name)


class installed:
    """``with installed():`` wraps ``sys.stdout`` and ``sys.stderr`` in :class:`SafeStream`."""

    def __enter__(self) -> None:
        import sys

        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = SafeStream(sys.stdout)  # type: ignore[assignment]
        sys.stderr = SafeStream(sys.stderr)  # type: ignore[assignment]

    def __exit__(self, *exc: object) -> None:
        import sys

        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, SafeStream):
                try:
                    stream.close_pending()
                except (OSError, ValueError):
                    pass
        sys.stdout, sys.stderr = self._saved
