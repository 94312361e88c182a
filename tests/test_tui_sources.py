"""The workbench's Sources tab: the session's registry as a table, the selected source's excerpt
and factors, live refresh after a web_fetch, and its snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scenes import workbench as scenes
from scenes.sources import stage_sources
from tui_helpers import screen_text, send, wait_for
from web_fixture import WebFixture

from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.tui.app import OpenManusApp

SIZE = (150, 44)


@pytest.fixture(autouse=True)
def _fixed_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


def detail(app: OpenManusApp) -> str:
    """The detail area's text, unwrapped."""
    return str(app.query_one("#sources-detail").render())


def make_app(**overrides: object) -> OpenManusApp:
    return OpenManusApp(
        load_settings(overrides or None),  # type: ignore[arg-type]
        clock=scenes.FixedClock(), wall_clock=lambda: scenes.BASE_TS + 3600, blink=False,
    )  # fmt: skip


async def test_rows_and_the_selected_sources_factors() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await stage_sources(app)
        pane = app.query_one("#sources")
        table = pane.query_one("#sources-table")
        assert table.row_count == 6
        first = [str(c).strip() for c in table.get_row_at(0)]
        assert first == [
            "1", "Renewables 2024: so…\n energy-agency.gov", "2024-03-05",
            "1.00", "0.56", "2",  # freshness: 302 days old, half-life 365 days
        ]  # fmt: skip
        assert "6 sources · 5 read" in screen_text(app)
        shown = detail(app)
        assert shown.startswith("[1] Renewables 2024: solar capacity statistics\n")
        assert "+0.90 domain class: stats.energy-agency.gov: government (gov)" in shown
        assert "+0.05 corroboration: 1 other domain agrees" in shown
        assert "cited by report [1], report [3]" in shown
        assert "freshness 0.56 — published 2024-03-05 · age 302 days · half-life 365 days" in shown
        # the last row: a search hit never fetched says so and shows its snippet
        table.focus()
        await pilot.press("ctrl+end")
        await wait_for(pilot, lambda: "search snippet (not fetched)" in detail(app))
        assert "grew by 50% in 2023" in detail(app)
        # the row above: the content farm, its factors and its excerpt
        await pilot.press("up")
        await wait_for(pilot, lambda: "known content farm" in detail(app))
        shown = detail(app)
        assert "freshness unknown — unknown: the source gives no date · half-life 365" in shown
        assert "Solar power is amazing" in shown


async def test_a_web_fetch_run_fills_the_tab(
    tmp_path: Path, web: WebFixture
) -> None:
    url = web.url("news.dailyclarion.com", "/solar-boom.html")
    script = tmp_path / "script.json"
    steps = [{"tool_calls": [{"name": "web_fetch", "args": {"url": url}}]}]
    script.write_text(json.dumps({"steps": steps, "final": "done"}))
    app = make_app(approval={"mode": "yolo"}, model={"provider": "scripted", "name": str(script)})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        app.runtime.sources = web.service(app.runtime.db)
        app.query_one("#panel").active = "tab-sources"
        await wait_for(pilot, lambda: "No session yet" in screen_text(app))
        await send(pilot, "read the news")
        await wait_for(pilot, lambda: "Tom Becker" in detail(app))
        assert "1 sources · 1 read" in screen_text(app)
        assert detail(app).startswith("[1] Solar boom: capacity jumps a third in a single year")
        assert "dailyclarion.com: established news" in detail(app)


def test_sources_tab_snapshot(snap_compare) -> None:
    async def scene(pilot) -> None:
        await stage_sources(pilot.app)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=scene)
