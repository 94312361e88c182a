"""The memory pane: what the next model call will contain, with a token weight per item.

Built from the session's transcript (stored events plus live ones): the system prompt, user
messages, the model's messages with their tool calls, and tool results, rebuilt as chat messages
and passed through the same ``build_context`` the agent uses, so items the window would drop are
shown as dropped. Pinning and compaction previews come with the memory issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from openmanus_tui.tui.transcript import Transcript

BAR_WIDTH = 10


@dataclass
class MemoryItem:
    kind: str  # system, user, assistant, tool
    label: str
    tokens: int
    included: bool = True


def context_items(
    transcript: Transcript, system_prompt: str, budget_tokens: int
) -> list[MemoryItem]:
    """The items of the next model call, in order, with estimated tokens."""
    # Imported here: langchain_core is heavy, and only needed once the pane is shown.
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from openmanus_tui.agent.context import build_context, estimate_tokens

    messages = []
    labels: list[tuple[str, str]] = []
    for block in transcript.blocks:
        if block.kind == "user":
            messages.append(HumanMessage(content=block.text))
            labels.append(("user", block.text))
        elif block.kind in ("thought", "answer"):
            calls = [
                {"id": r.call_id, "name": r.tool, "args": r.args_ran or r.args or {}}
                for r in transcript.calls.values()
                if block.message_id and r.message_id == block.message_id
            ]
            messages.append(AIMessage(content=block.text, tool_calls=calls))
            names = ", ".join(c["name"] for c in calls)
            labels.append(("assistant", block.text + (f" → {names}" if names else "")))
        elif block.kind == "observation" and block.call_id in transcript.calls:
            rec = transcript.calls[block.call_id]
            if rec.status in ("pending", "running"):
                continue
            messages.append(ToolMessage(content=rec.result, tool_call_id=rec.call_id))
            labels.append(("tool", f"{rec.tool}: {rec.result}"))
    sent, _, _ = build_context(system_prompt, messages, budget_tokens)
    sent_ids = {id(m) for m in sent}
    items = [MemoryItem("system", system_prompt, estimate_tokens(sent[0]))]
    for msg, (kind, label) in zip(messages, labels, strict=True):
        items.append(MemoryItem(kind, label, estimate_tokens(msg), id(msg) in sent_ids))
    return items


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    fraction = max(0.0, min(1.0, fraction))
    full = round(fraction * width)
    return "█" * full + "░" * (width - full)


def _one_line(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


class MemoryPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("No session yet.", id="memory-summary")
        yield DataTable(id="memory-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("kind", "tokens", "weight", "item")

    def show(self, items: list[MemoryItem], window: int) -> None:
        used = sum(i.tokens for i in items if i.included)
        dropped = sum(1 for i in items if not i.included)
        summary = Text.assemble(
            ("context ", "bold"), bar(used / window if window else 0, 20),
            f" {used:,} / {window:,} tokens ({(used / window * 100) if window else 0:.1f}%)",
        )
        summary.append(f"\n{len(items)} items")
        if dropped:
            summary.append(f", {dropped} dropped by the window", style="bold")
        summary.append(" · estimates (~4 chars a token); pinning and compaction: not yet",
                       style="dim")
        self.query_one("#memory-summary", Static).update(summary)
        table = self.query_one(DataTable)
        table.clear()
        for n, item in enumerate(items):
            share = item.tokens / used if used else 0
            kind = item.kind if item.included else f"{item.kind} (dropped)"
            table.add_row(kind, f"{item.tokens:,}", bar(share), _one_line(item.label), key=str(n))
