"""Stream block widgets: one per transcript block (user input, thought, action, observation,
final answer, error, notice).

Each widget renders from the transcript's ``Block`` / ``CallRecord`` and is refreshed by the
stream view when its data changes. Blocks are focusable; clicking or pressing Enter selects the
block for the inspector.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Static

from openmanus_tui.tui.transcript import Block, CallRecord, Transcript

if TYPE_CHECKING:
    from textual import events
    from textual.widgets import Markdown
    from textual.widgets.markdown import MarkdownStream

FOLD_LINES = 12
# Expanded output is still capped: the inspector shows the raw result in full.
EXPANDED_MAX_LINES = 2000
ARG_PREVIEW_LINES = 4

STATUS_ICONS = {
    "pending": "·", "running": "⋯", "ok": "✓", "error": "✗", "denied": "⊘",
    "timeout": "⏱", "truncated": "✓", "interrupted": "⊘",
}


class BlockSelected(Message):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class CitationClicked(Message):
    """A research report's citation was clicked: ``number`` is the source registry's."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number


# A citation as the research report writes it: "[3]", not a link's text "[3](…)" nor "[[3]".
_CITATION = re.compile(r"(?<![\[\\`])\[(\d{1,4})\](?![(\[:])")


def link_citations(text: str, citations: dict[int, int], token: str) -> str:
    """``text`` with each ``[n]`` it knows (``citations``) as a Markdown link to ``cite-TOKEN-n``.

    Only numbers of this report become links, and the block only follows hrefs carrying its own
    random token, so a link the model wrote itself cannot pose as a citation. Fenced code stays
    as written."""
    out: list[str] = []
    fenced = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            line = _CITATION.sub(
                lambda m: f"[\\[{m[1]}\\]](cite-{token}-{m[1]})"
                if int(m[1]) in citations else m[0],
                line,
            )
        out.append(line)
    return "".join(out)


def format_args(args: dict[str, Any] | None, max_lines: int = ARG_PREVIEW_LINES) -> str:
    """Compact argument preview: one line per argument, long strings cut to a few lines."""
    if not args:
        return ""
    lines = []
    for name, value in args.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts = text.splitlines() or [""]
        shown = parts[:max_lines]
        more = f"  … {len(parts) - max_lines} more lines" if len(parts) > max_lines else ""
        if len(shown) == 1:
            lines.append(f"{name}: {shown[0][:200]}{more}")
        else:
            lines.append(f"{name}:")
            lines.extend(f"  {p[:200]}" for p in shown)
            if more:
                lines.append(more.strip())
    return "\n".join(lines)


class BlockWidget(Vertical):
    """Base: knows its transcript key, selects itself on click / Enter."""

    can_focus = True
    BINDINGS = [Binding("enter", "select_block", "Inspect", show=False)]

    def __init__(self, block: Block, transcript: Transcript) -> None:
        super().__init__(classes=f"block block-{block.kind}")
        self.block = block
        self.transcript = transcript

    def action_select_block(self) -> None:
        self.post_message(BlockSelected(self.block.key))

    def on_click(self) -> None:
        self.focus()
        self.post_message(BlockSelected(self.block.key))

    def refresh_block(self) -> None:
        """Re-render from the transcript (the data changed)."""

    async def flush_stream(self) -> None:
        """Write buffered streamed text (thought blocks only)."""


class TextBlock(BlockWidget):
    """User input, notices and errors: plain text, no markup interpretation."""

    def compose(self) -> ComposeResult:
        yield Static(self._render_text(), classes="block-body")

    def _render_text(self) -> Text:
        b = self.block
        if b.kind == "user":
            return Text.assemble(("› ", "bold"), b.text)
        if b.kind == "error":
            text = Text.assemble(("✗ Error: ", "bold"), b.text)
            if b.hint:
                text.append(f"\n  → {b.hint}")
            return text
        return Text.assemble(("⚠ " if b.level == "warning" else "ℹ ", "bold"), b.text)

    def refresh_block(self) -> None:
        self.query_one(".block-body", Static).update(self._render_text())


class MarkdownBlock(BlockWidget):
    """Thoughts (streamed) and the final answer."""

    # Keyboard users' way to the sources a report cites: each press shows the next one.
    BINDINGS = [Binding("c", "next_citation", "Next cited source", show=False)]

    def __init__(self, block: Block, transcript: Transcript) -> None:
        super().__init__(block, transcript)
        self._citation = -1  # the citation the last "c" showed (an index into the report's)
        self._shown = ""
        self._stream: MarkdownStream | None = None
        import secrets  # (hmac, hashlib: not needed before the first block)

        self._token = secrets.token_hex(6)

    def compose(self) -> ComposeResult:
        # Imported here: the Markdown widget (and markdown-it) is a sizeable part of start-up,
        # and the first frame has no thought to show.
        from textual.widgets import Markdown

        if self.block.kind == "answer":
            yield Static(Text("✔ Answer", style="bold"), classes="block-title")
        # A block that is still streaming starts empty: the stream writes its text.
        self._shown = "" if self.block.streaming else self.block.text
        shown = self._shown
        if self.block.citations and not self.block.streaming:
            shown = link_citations(shown, self.block.citations, self._token)
        yield Markdown(shown, classes="block-body", open_links=False)

    def on_click(self, event: events.Click) -> None:
        if event.style.meta.get("@click"):
            self.focus()  # a link: its own message says what to do (not the inspector)
            return
        super().on_click()

    def action_next_citation(self) -> None:
        numbers = sorted(self.block.citations)
        if not numbers:
            return
        self._citation = (self._citation + 1) % len(numbers)
        self.post_message(CitationClicked(self.block.citations[numbers[self._citation]]))

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        event.stop()
        prefix = f"cite-{self._token}-"
        if event.href.startswith(prefix) and event.href[len(prefix):].isdigit():
            number = self.block.citations.get(int(event.href[len(prefix):]))
            if number is not None:
                self.post_message(CitationClicked(number))
        else:
            self.app.open_url(event.href)  # what the Markdown widget does by itself

    async def flush_stream(self) -> None:
        from textual.widgets import Markdown

        text = self.block.text
        md = self.query_one(Markdown)
        if not text.startswith(self._shown):
            # The complete message differs from what streamed (rare): show the real text.
            await self._stop()
            await md.update(text)
        elif len(text) > len(self._shown):
            if self._stream is None:
                self._stream = Markdown.get_stream(md)
            await self._stream.write(text[len(self._shown) :])
        self._shown = text
        if not self.block.streaming:
            await self._stop()

    async def _stop(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()


class ActionBlock(BlockWidget):
    """A tool call: tool, tier, risk, approval state and the arguments."""

    def compose(self) -> ComposeResult:
        yield Static(self._header(), classes="block-title")
        yield Static(self._args(), classes="block-body")

    @property
    def record(self) -> CallRecord:
        return self.transcript.calls[self.block.call_id or ""]

    def _header(self) -> Text:
        rec = self.record
        text = Text.assemble(("▶ ", "bold"), (rec.tool, "bold"))
        meta = []
        if rec.tier is not None:
            meta.append(f"tier {rec.tier}")
        if rec.risk:
            meta.append(f"risk {rec.risk}")
        if rec.approval == "waiting":
            meta.append("awaiting approval")
        elif rec.approval:
            who = f" by {rec.approval_by}" if rec.approval_by and rec.approval_by != "user" else ""
            meta.append(f"{_decision_word(rec.approval)}{who}")
        if meta:
            text.append("  " + " · ".join(meta), style="dim")
        if rec.invalid:
            text.append(f"\n  invalid call: {rec.invalid}")
        return text

    def _args(self) -> Text:
        args = self.record.args_ran if self.record.approval == "edit" else self.record.args
        if self.record.args is None and self.record.raw_args:
            return Text(self.record.raw_args[:400])
        return Text(format_args(args))

    def refresh_block(self) -> None:
        self.query_one(".block-title", Static).update(self._header())
        self.query_one(".block-body", Static).update(self._args())


def _decision_word(decision: str) -> str:
    return {
        "approve": "approved", "edit": "approved with edited args", "deny": "denied",
        "always": "always allowed", "error": "rejected",
    }.get(decision, decision)


class ObservationBlock(BlockWidget):
    """A tool result: status, duration, live output while running, folded when long."""

    def __init__(self, block: Block, transcript: Transcript, expanded: bool = False) -> None:
        super().__init__(block, transcript)
        self.expanded = expanded

    def compose(self) -> ComposeResult:
        yield Static(self._header(), classes="block-title")
        yield Static(self._body(), classes="block-body")
        # The fold toggle only exists once there is something to fold: most results are short,
        # and a button per block is a large part of mounting a long session.
        if self._hidden_lines() > 0:
            yield self._make_toggle()

    @property
    def record(self) -> CallRecord:
        return self.transcript.calls[self.block.call_id or ""]

    def _lines(self) -> list[str]:
        rec = self.record
        if rec.status in ("pending", "running", "interrupted"):
            return rec.output  # an interrupted call has no result: what it printed so far
        return rec.result.splitlines()

    def _header(self) -> Text:
        rec = self.record
        icon = STATUS_ICONS.get(rec.status, "·")
        text = Text.assemble((f"{icon} ", "bold"), (rec.tool, "bold"), f"  {rec.status}")
        meta = []
        if rec.status not in ("pending", "running", "interrupted"):
            meta.append(_duration(rec.duration_ms))
        if rec.isolation:
            meta.append(rec.isolation)
        if meta:
            text.append("  " + " · ".join(meta), style="dim")
        return text

    def _body(self) -> Text:
        lines = self._lines()
        if self.expanded:
            shown = lines[:EXPANDED_MAX_LINES]
        elif self.record.status == "running":
            shown = lines[-FOLD_LINES:]  # live output: the newest lines
        else:
            shown = lines[:FOLD_LINES]
        return Text("\n".join(shown))

    def _hidden_lines(self) -> int:
        return len(self._lines()) - FOLD_LINES

    def _make_toggle(self) -> Button:
        return Button(self._toggle_label(), classes="fold-toggle", compact=True)

    def _toggle_label(self) -> str:
        return "▴ fold" if self.expanded else f"▾ {self._hidden_lines()} more lines"

    def _sync_toggle(self) -> None:
        buttons = self.query(".fold-toggle").results(Button)
        button = next(buttons, None)
        if button is None:
            if self._hidden_lines() > 0:
                self.mount(self._make_toggle())
            return
        button.display = self._hidden_lines() > 0
        button.label = self._toggle_label()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.set_expanded(not self.expanded)

    def set_expanded(self, expanded: bool) -> None:
        self.expanded = expanded
        self.refresh_block()

    def refresh_block(self) -> None:
        self.query_one(".block-title", Static).update(self._header())
        self.query_one(".block-body", Static).update(self._body())
        self._sync_toggle()
        self.set_class(self.record.status not in ("ok", "pending", "running"), "failed")


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def make_block_widget(block: Block, transcript: Transcript, *, expanded: bool) -> BlockWidget:
    if block.kind in ("thought", "answer"):
        return MarkdownBlock(block, transcript)
    if block.kind == "action":
        return ActionBlock(block, transcript)
    if block.kind == "observation":
        return ObservationBlock(block, transcript, expanded=expanded)
    return TextBlock(block, transcript)
