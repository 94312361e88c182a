"""The tools pane: the registry with tier, risk, call counts, failures and mean latency."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

COLUMNS = ("tool", "tier", "risk", "calls", "fail", "mean ms")


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
                key=spec.name,
            )
