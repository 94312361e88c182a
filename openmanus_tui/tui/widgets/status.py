"""The always-on status line: model, profile, approval mode, isolation, context, tokens, cost,
run state and elapsed time. Fixed height, so updates skip layout."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static


def human_tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def human_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class StatusInfo:
    model: str = ""
    profile: str = ""
    approval: str = ""
    isolation: str = "…"  # until the sandbox has been probed
    context_tokens: int = 0
    context_window: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    state: str = "idle"
    elapsed: float = 0.0


COMPACT_WIDTH = 110
STATE_STYLES = {
    "running": "bold", "awaiting approval": "bold reverse", "error": "bold", "idle": "",
}


class StatusLine(Static):
    def show(self, info: StatusInfo) -> None:
        if not info.model:  # before the settings are loaded (the first frame)
            self.update(Text.assemble((f" {info.state} ", "bold"), " reading the configuration…",
                                      no_wrap=True, overflow="ellipsis"), layout=False)
            return
        ctx = f"ctx {human_tokens(info.context_tokens)}/{human_tokens(info.context_window)}"
        tokens = f"↑{human_tokens(info.tokens_in)} ↓{human_tokens(info.tokens_out)}"
        if self.size.width and self.size.width < COMPACT_WIDTH:
            # Narrow terminals: drop the labels and the profile, keep every number.
            rest = (f" {human_elapsed(info.elapsed)} │ {info.model.split(':')[-1]} │ "
                    f"{info.approval} │ {info.isolation} │ {ctx} │ {tokens} │ ${info.cost:.2f}")
        else:
            rest = (f" {human_elapsed(info.elapsed)} │ {info.model} │ {info.profile} │ "
                    f"approval {info.approval} │ {info.isolation} │ {ctx} │ {tokens} │ "
                    f"${info.cost:.4f}")
        state = (f" {info.state} ", STATE_STYLES.get(info.state, "bold"))
        self.update(Text.assemble(state, rest, no_wrap=True, overflow="ellipsis"), layout=False)
