"""The tools pane: the registry with tier, risk, call counts, failures, mean latency, cache hits
(read-only network tools) and retries; the MCP servers (name, transport, state, tool count,
error) from the runtime's ``McpManager``; and the circuit breakers that are not closed."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, Static

from openmanus_tui.termsafe import sanitize
from openmanus_tui.tui.terminal_guard import plain
from openmanus_tui.tui.widgets.deferred import DeferredPane

COLUMNS = ("tool", "tier", "risk", "calls", "fail", "mean ms", "cache hits", "retries")
MCP_COLUMNS = ("server", "transport", "state", "tools", "error")
STATE_STYLES = {"running": "", "starting": "italic", "failed": "bold", "stopped": "dim"}


class ToolsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*COLUMNS)

    def refresh_registry(self, registry: Any) -> None:
        """Rebuild the rows from ``registry`` (a ``ToolRegistry``): cheap, a few dozen rows."""
        self.clear()
        for spec in sorted(registry, key=lambda s: (s.tier, s.name)):
            stats = registry.stats.get(spec.name)
            calls = stats.calls if stats else 0
            self.add_row(
                spec.name, str(spec.tier), str(spec.risk), str(calls),
                str(stats.failures if stats else 0),
                f"{stats.mean_ms:.0f}" if stats and calls else "–",
                _cache_cell(spec, stats),
                str(stats.retries) if stats and stats.retries else "–",
                key=spec.name,
            )


def _cache_cell(spec: Any, stats: Any) -> str:
    """Hits of the tool-result cache and the hit rate, for the tools it applies to."""
    if not getattr(spec, "cache_eligible", False):
        return "–"
    if stats is None or not stats.calls:
        return "0"
    return f"{stats.cache_hits}/{stats.calls} ({stats.hit_rate:.0%})"


def breaker_lines(states: list[dict[str, Any]]) -> str:
    """One line per breaker that is not closed; empty when all are."""
    lines = []
    for s in states:
        if s["state"] == "closed":
            continue
        word = "OPEN" if s["state"] == "open" else "half-open (probing)"
        error = f" — {' '.join(str(s['last_error']).split())[:120]}" if s["last_error"] else ""
        lines.append(f"⚡ {s['name']}: {word}{error}")
    return "\n".join(lines)


class McpTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*MCP_COLUMNS)

    def refresh_servers(self, statuses: list[Any]) -> None:
        self.clear()
        for s in statuses:
            self.add_row(
                sanitize(s.name, keep_sgr=False), str(s.transport),
                Text(str(s.state), style=STATE_STYLES.get(s.state, "")),
                str(s.tool_count), plain(" ".join((s.error or "").split()), style="dim"),
                key=s.name,
            )


class ToolsPane(DeferredPane):
    """The Tools tab: the registry above, the MCP servers below (a line when none are set up).
    Built when first shown, refreshed only while shown (``tui/widgets/deferred.py``)."""

    DEFAULT_CSS = """
    ToolsPane #tools { height: 1fr; }
    ToolsPane #mcp-title { height: 1; margin-top: 1; text-style: bold; }
    ToolsPane #mcp-servers { height: auto; max-height: 40%; }
    ToolsPane #breakers { height: auto; margin-top: 1; }
    """

    runtime: Any = None

    def build(self) -> list[Widget]:
        return [ToolsTable(id="tools"), Static("MCP servers", id="mcp-title"),
                McpTable(id="mcp-servers"), Static("", id="breakers")]

    def refresh_tools(self, runtime: Any) -> None:
        """Show both tables from ``runtime`` (its ``registry`` and ``mcp``, which may be None)
        now if the tab is open, else when it is next opened."""
        self.runtime = runtime
        self.request_update()

    def update_data(self) -> None:
        runtime = self.runtime
        if runtime is None:
            return
        self.query_one(ToolsTable).refresh_registry(runtime.registry)
        mcp = getattr(runtime, "mcp", None)
        statuses = mcp.statuses() if mcp is not None else []
        self.query_one("#mcp-title", Static).update(
            "MCP servers" if statuses else "MCP servers: none ([mcp.servers] in the config)"
        )
        table = self.query_one(McpTable)
        table.display = bool(statuses)
        table.refresh_servers(statuses)
        if hasattr(runtime, "breakers"):
            from openmanus_tui.runtime import api

            lines = breaker_lines(api.resilience_status(runtime)["breakers"])
            self.query_one("#breakers", Static).update(plain(lines))  # names, server errors
            self.query_one("#breakers", Static).display = bool(lines)
