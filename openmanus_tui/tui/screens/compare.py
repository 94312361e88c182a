"""The compare view: two branches side by side (``History.compare`` → ``BranchDiff``).

Left A, right B: the messages only on each branch after their common part (user messages,
the model's text and tool calls, tool results), each branch's final answer, and below both the
workspace files that differ between the two heads, with a unified diff per small text file.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from openmanus_tui.termsafe import sanitize_value
from openmanus_tui.tui.terminal_guard import plain

RESULT_LINES = 8
TEXT_CHARS = 600
ROLE_NAMES = {"human": "user", "ai": "model", "tool": "tool", "system": "system"}
ROLE_STYLE = {"human": "bold magenta", "ai": "bold", "tool": "bold green", "system": "dim"}


def _clip_lines(text: str, lines: int = RESULT_LINES, chars: int = TEXT_CHARS) -> str:
    parts = text[:chars].splitlines()
    more = len(text.splitlines()) - min(len(parts), lines)
    shown = "\n".join(parts[:lines])
    if more > 0 or len(text) > chars:
        shown += f"\n… ({max(more, 0)} more lines)" if more > 0 else " …"
    return shown


def render_message(item: dict[str, Any]) -> Text:
    """One message of a branch (``describe_message`` output) as a few lines of text."""
    item = sanitize_value(item)  # stored model and tool text: control sequences shown as escapes
    role = item.get("role", "")
    out = Text()
    out.append(f"{ROLE_NAMES.get(role, role)}", style=ROLE_STYLE.get(role, "bold"))
    if role == "tool":
        status = item.get("status") or "success"
        out.append(f" {item.get('tool', '')} ", style="green")
        out.append(f"[{status}]", style="red" if status == "error" else "dim")
        out.append("\n" + _clip_lines(item.get("text", "")), style="dim")
        return out
    text = item.get("text", "")
    if text:
        out.append("  " + _clip_lines(text))
    for call in item.get("tool_calls") or []:
        args = json.dumps(call.get("args"), ensure_ascii=False)
        out.append(f"\n  → {call.get('tool')}", style="cyan")
        out.append(f"({args[:240]}{'…' if len(args) > 240 else ''})", style="cyan dim")
    return out


def render_side(items: list[dict[str, Any]], final: str | None) -> RenderableType:
    parts: list[RenderableType] = []
    if not items:
        parts.append(Text("(nothing after the common part)", style="dim"))
    for item in items:
        parts.append(render_message(item))
        parts.append(Text(""))
    answer = Text("final answer: ", style="bold")
    shown = sanitize_value(final) if final is not None else "(none)"
    answer.append(shown, style="" if final else "dim")
    parts.append(answer)
    return Group(*parts)


def render_files(files: list[Any]) -> RenderableType:
    if not files:
        return Text("The two heads have the same workspace files.", style="dim")
    parts: list[RenderableType] = []
    for change in files:
        line = Text(f"{change.status:>9}  ", style="bold")
        line.append(change.path)
        if change.binary:
            size = {"added": f"{change.new_size}", "deleted": f"{change.old_size}"}.get(
                change.status, f"{change.old_size} → {change.new_size}"
            )
            line.append(f"   binary, {size} bytes", style="dim")
        elif change.too_large:
            line.append(f"   too large to diff ({change.new_size or change.old_size} bytes)",
                        style="dim")
        parts.append(line)
        if change.diff:
            parts.append(Syntax(change.diff.rstrip("\n"), "diff", theme="ansi_dark",
                                word_wrap=True))
    return Group(*parts)


class CompareScreen(Screen[None]):
    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    #compare-title { height: auto; padding: 0 1; background: $panel; }
    #compare-sides { height: 3fr; }
    .compare-side { width: 1fr; padding: 0 1; }
    #compare-a { border-right: vkey $panel; }
    .compare-head { text-style: bold; color: $primary; }
    #compare-files { height: 2fr; border-top: hkey $panel; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, diff: Any, label_a: str, label_b: str) -> None:
        super().__init__()
        self.diff = diff
        self.label_a, self.label_b = label_a, label_b

    def compose(self) -> ComposeResult:
        d = self.diff
        title = Text("Compare branches", style="bold")
        title.append(f" — {d.common} message(s) in common, then "
                     f"{len(d.only_a)} only on A and {len(d.only_b)} only on B", style="dim")
        yield Static(title, id="compare-title")
        with Horizontal(id="compare-sides"):
            for side, label, items, final in (
                ("a", self.label_a, d.only_a, d.final_a), ("b", self.label_b, d.only_b, d.final_b),
            ):
                with Vertical(classes="compare-side", id=f"compare-{side}"):
                    yield Static(plain(f"{side.upper()}  {label}"), classes="compare-head")
                    with VerticalScroll(id=f"compare-{side}-body"):
                        yield Static(render_side(items, final), id=f"compare-{side}-messages")
        with VerticalScroll(id="compare-files"):
            yield Static(Text(f"Files ({len(d.files)} changed from A to B)", style="bold"))
            yield Static(render_files(d.files), id="compare-files-body")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
