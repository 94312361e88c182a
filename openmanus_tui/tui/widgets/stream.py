"""The stream view: a bounded window of block widgets over the session's full transcript.

Only the newest ``WINDOW`` blocks are mounted: mounting and laying out widgets is what opening a
long session costs (10-30 ms a block on a loaded 2-core machine), so the window is about a screen
tall, not the whole history. Scrolling up to the top mounts ``LOAD_MORE`` older blocks above,
keeping what is on screen in place; the "load earlier" button at the top does the same from
the keyboard, and a window that does not fill the view grows until it does.
Live events update the transcript at once, but widget updates are coalesced: streamed tokens
and output lines are flushed every ``FLUSH_S`` seconds (one Markdown write per flush, not per
token). New blocks are mounted immediately so the order on screen always matches the order of
events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Button

if TYPE_CHECKING:
    from openmanus_tui import events as ev
    from openmanus_tui.tui.transcript import Transcript
    from openmanus_tui.tui.widgets.blocks import BlockWidget

# The transcript model and the block widgets (``tui/transcript.py``, ``widgets/blocks.py``) are
# imported when first needed: the first frame (an empty session's welcome) has neither.

WINDOW = 24
LOAD_MORE = 100
# Ten updates a second: each one lays out and repaints the stream, and at twenty a second the
# repaints alone kept the event loop about half busy on a slow 2-core machine (bench/tui_stream.py:
# p95 stall 33 ms at 20/s, 28 ms at 10/s; at 200 tokens/s an update is still just ~20 words).
FLUSH_S = 0.1
TOP_EDGE = 2  # rows from the top at which scrolling up loads earlier blocks


class StreamView(VerticalScroll):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._transcript: Transcript | None = None  # an empty one, made when first asked for
        self.expand_all = False
        self._start = 0  # index in transcript.blocks of the first mounted block
        self._limit = WINDOW  # grows when the user loads earlier blocks
        self._widgets: dict[str, BlockWidget] = {}
        self._dirty: set[str] = set()
        self._load_button: Button | None = None
        self._loading_earlier = False
        # What an empty transcript shows (the app's welcome); removed by the first block.
        self.placeholder_factory: Callable[[], Widget] | None = None
        self.placeholder: Widget | None = None

    @property
    def transcript(self) -> Transcript:
        if self._transcript is None:
            from openmanus_tui.tui.transcript import Transcript

            self._transcript = Transcript()
        return self._transcript

    @transcript.setter
    def transcript(self, transcript: Transcript) -> None:
        self._transcript = transcript

    def compose(self) -> ComposeResult:
        # An empty session's placeholder (the welcome) is composed with the view, not mounted
        # from ``on_mount``: it is then part of the first layout, instead of re-laying out and
        # repainting the screen once more before the first frame.
        if self._transcript is None and self.placeholder_factory is not None:
            self.placeholder = self.placeholder_factory()
            yield self.placeholder

    def on_mount(self) -> None:
        self.anchor()
        self.set_interval(FLUSH_S, self.flush, name="stream-flush")
        if (self._transcript is None or not self._transcript.blocks) and not self.children:
            self._mount_placeholder()

    def _mount_placeholder(self) -> None:
        if self.placeholder_factory is not None and self.placeholder is None:
            self.placeholder = self.placeholder_factory()
            self.mount(self.placeholder)

    def _drop_placeholder(self) -> None:
        if self.placeholder is not None:
            self.placeholder.remove()
            self.placeholder = None

    # ---- whole-transcript operations ----------------------------------------------------------
    async def show(self, transcript: Transcript) -> None:
        """Replace the view with ``transcript``, mounting its newest ``WINDOW`` blocks."""
        self.transcript = transcript
        self._dirty.clear()
        self._widgets.clear()
        self._load_button = None
        self._limit = WINDOW
        self.placeholder = None
        await self.remove_children()
        if not transcript.blocks:
            self._mount_placeholder()
        self._start = max(0, len(transcript.blocks) - WINDOW)
        widgets = [self._make(b.key) for b in transcript.blocks[self._start :]]
        await self._sync_load_button()
        if widgets:
            await self.mount_all(widgets)
        self.scroll_end(animate=False)
        self.anchor()
        self.call_after_refresh(self._fill_view)

    def _fill_view(self) -> None:
        # A tall terminal or short blocks: nothing to scroll, so scrolling up cannot load more.
        if self._start > 0 and self.max_scroll_y == 0 and self.is_mounted:
            self.run_worker(self.load_earlier_in_place(), group="stream-earlier")

    def _make(self, key: str) -> BlockWidget:
        from openmanus_tui.tui.widgets.blocks import make_block_widget

        widget = make_block_widget(
            self.transcript.by_key[key], self.transcript, expanded=self.expand_all
        )
        self._widgets[key] = widget
        return widget

    async def _sync_load_button(self) -> None:
        if self._start > 0 and self._load_button is None:
            self._load_button = Button(
                f"▲ load earlier ({self._start} more)", id="load-earlier", compact=True
            )
            await self.mount(self._load_button, before=0 if self.children else None)
        elif self._start > 0 and self._load_button is not None:
            self._load_button.label = f"▲ load earlier ({self._start} more)"
        elif self._start == 0 and self._load_button is not None:
            await self._load_button.remove()
            self._load_button = None

    async def load_earlier(self) -> None:
        if self._start == 0:
            return
        new_start = max(0, self._start - LOAD_MORE)
        keys = [b.key for b in self.transcript.blocks[new_start : self._start]]
        first = self._widgets.get(self.transcript.blocks[self._start].key)
        self._limit += self._start - new_start
        self._start = new_start
        widgets = [self._make(k) for k in keys]
        await self.mount_all(widgets, before=first)
        await self._sync_load_button()

    async def load_earlier_in_place(self) -> None:
        """``load_earlier``, then scroll by the height added so the view does not jump."""
        if self._start == 0 or self._loading_earlier:
            return
        self._loading_earlier = True
        try:
            height, y = self.virtual_size.height, self.scroll_y
            await self.load_earlier()
            self.call_after_refresh(self._keep_in_place, height, y)
        finally:
            self._loading_earlier = False

    def _keep_in_place(self, height: int, y: float) -> None:
        self.scroll_to(y=y + self.virtual_size.height - height, animate=False, immediate=True)
        self._fill_view()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Not exclusive: a second scroll event must not cancel a load half-way through its
        # mount; ``load_earlier_in_place`` ignores calls while one is under way.
        if (new_value < old_value and new_value <= TOP_EDGE and self._start > 0
                and not self._loading_earlier):
            self.run_worker(self.load_earlier_in_place(), group="stream-earlier")

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "load-earlier":
            event.stop()
            await self.load_earlier_in_place()

    @property
    def mounted_blocks(self) -> int:
        return len(self._widgets)

    def set_expand_all(self, expanded: bool) -> None:
        from openmanus_tui.tui.widgets.blocks import ObservationBlock

        self.expand_all = expanded
        for widget in self._widgets.values():
            if isinstance(widget, ObservationBlock):
                widget.set_expanded(expanded)

    # ---- live events ------------------------------------------------------------------------
    def handle_event(self, event: ev.Event) -> None:
        """Fold one live event into the transcript and schedule the widget changes."""
        for key in self.transcript.apply(event):
            if key.startswith("-"):
                widget = self._widgets.pop(key[1:], None)
                if widget is not None:
                    widget.remove()
            elif key in self._widgets:
                self._dirty.add(key)
            elif key in self.transcript.by_key:
                self._drop_placeholder()
                self.mount(self._make(key))
                self._dirty.add(key)
                self._trim()

    def _trim(self) -> None:
        # Keep the mounted window bounded while a long run streams in.
        blocks = self.transcript.blocks
        while len(self._widgets) > self._limit and self._start < len(blocks):
            widget = self._widgets.pop(blocks[self._start].key, None)
            self._start += 1
            if widget is not None:
                widget.remove()
        if self._start > 0:
            self.call_later(self._sync_load_button)

    async def flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            widget = self._widgets.get(key)
            if widget is None:
                continue
            if not widget.is_mounted:
                self._dirty.add(key)  # mounted on a later frame; try again next flush
                continue
            if widget.block.kind in ("thought", "answer"):
                await widget.flush_stream()
            else:
                widget.refresh_block()
