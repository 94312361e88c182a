"""The always-on status line: model, profile, approval mode, isolation, context, tokens, cost,
run state, elapsed time and any circuit breaker that is not closed. Fixed height, so updates
skip layout."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from openmanus_tui.termsafe import sanitize


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
    # Open or half-open circuit breakers ("" when all are closed): ``breaker_text``.
    breakers: str = ""


def breaker_text(states: list[dict[str, object]]) -> str:
    """The status line's word on the breakers: the first open one, and how many more."""
    down = [s for s in states if s.get("state") in ("open", "half_open")]
    if not down:
        return ""
    first = down[0]
    word = "OPEN" if first["state"] == "open" else "probing"
    more = f" +{len(down) - 1}" if len(down) > 1 else ""
    return sanitize(f"⚡ {first['name']} {word}{more}", keep_sgr=False)  # a name from config


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
        # A breaker goes first after the state: it explains a slow or fallen-back run.
        breakers = (f" {info.breakers} │", "bold reverse") if info.breakers else ""
        self.update(Text.assemble(state, breakers, rest, no_wrap=True, overflow="ellipsis"),
                    layout=False)
