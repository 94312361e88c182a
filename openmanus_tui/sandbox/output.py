"""Capturing a command's output: live lines for the UI, head and tail kept, the middle cut."""

from __future__ import annotations

from collections.abc import Callable

LIVE_LINE_MAX = 8192  # a "line" longer than this is delivered in pieces


class CappedStream:
    """Collects one stream: the first ``cap/2`` and the last ``cap/2`` bytes survive.

    Lines are delivered to ``on_line`` as they complete, until the stream has produced
    more than ``cap`` bytes; after that one notice is sent and the rest only lands in the tail.
    """

    def __init__(self, name: str, cap: int, on_line: Callable[[str, str], None] | None = None):
        self.name = name
        self.cap = max(cap, 2)
        self._head_cap = self.cap // 2
        self._tail_cap = self.cap - self._head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self._on_line = on_line
        self._pending = bytearray()
        self._live_done = on_line is None

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.total += len(chunk)
        room = self._head_cap - len(self.head)
        rest = chunk
        if room > 0:
            self.head += chunk[:room]
            rest = chunk[room:]
        if rest:
            self.tail += rest
            if len(self.tail) > 2 * self._tail_cap:  # amortised trimming
                del self.tail[: len(self.tail) - self._tail_cap]
        if not self._live_done:
            self._emit_lines(chunk)

    def _emit_lines(self, chunk: bytes) -> None:
        assert self._on_line is not None
        self._pending += chunk
        while True:
            nl = self._pending.find(b"\n")
            if nl < 0:
                if len(self._pending) < LIVE_LINE_MAX:
                    break
                nl = LIVE_LINE_MAX - 1
                line, self._pending = self._pending[:LIVE_LINE_MAX], self._pending[LIVE_LINE_MAX:]
            else:
                line, self._pending = self._pending[:nl], self._pending[nl + 1 :]
            self._on_line(self.name, line.decode("utf-8", "replace"))
        if self.total > self.cap:
            self._live_done = True
            self._pending.clear()
            self._on_line(
                self.name, f"[live output stopped after {self.cap} bytes; head and tail are kept]"
            )

    def finish(self) -> None:
        """Deliver a last line that had no newline."""
        if not self._live_done and self._pending:
            assert self._on_line is not None
            self._on_line(self.name, self._pending.decode("utf-8", "replace"))
        self._pending.clear()

    @property
    def cut_bytes(self) -> int:
        return max(0, self.total - self.cap)

    def text(self) -> str:
        if self.total <= self.cap:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace")
        tail = bytes(self.tail[-self._tail_cap :])
        notice = f"\n[... {self.cut_bytes} bytes of {self.name} cut ...]\n"
        return (
            bytes(self.head).decode("utf-8", "replace") + notice + tail.decode("utf-8", "replace")
        )
