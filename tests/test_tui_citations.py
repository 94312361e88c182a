"""Citations in a research report are links to their sources: clicking ``[n]`` in the answer
block opens the Sources tab on the registry's source (the report numbers by citation order, the
registry by first sight; the verify step's map joins them). A number the report does not map,
and a link the model wrote itself, stay plain text."""

from __future__ import annotations

import pytest
from scenes.sources import settle, stage_sources
from test_tui_sources import SIZE, detail, make_app
from textual.errors import NoWidget
from tui_helpers import wait_for

from openmanus_tui import events as ev
from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.tui.widgets.blocks import MarkdownBlock, link_citations

REPORT = (
    "Solar capacity grew fastest [1], ahead of wind [2]. An unmapped number [7] stays text, "
    "and so does a link the model wrote: [see](cite-1).\n\n## References\n\n"
    "[1] IEA — https://www.iea.org\n\n[2] Agency — https://stats.energy-agency.gov\n"
)


@pytest.fixture(autouse=True)
def _fixed_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


def links(app) -> dict[str, tuple[int, int]]:
    """Each clickable cell's action in the answer block, at its first screen position."""
    block = app.query(MarkdownBlock).filter(".block-answer").last()
    region = block.region
    found: dict[str, tuple[int, int]] = {}
    for y in range(region.y, region.bottom):
        for x in range(region.x, region.right):
            try:
                action = app.screen.get_style_at(x, y).meta.get("@click")
            except NoWidget:  # off the visible screen
                continue
            if action and action not in found:
                found[action] = (x, y)
    return found


def test_only_mapped_citations_become_links() -> None:
    text = link_citations("a [1] b [2] c [1](x) d [[1]] `[1]`", {1: 3}, "tok")
    assert text == "a [\\[1\\]](cite-tok-1) b [2] c [1](x) d [[1]] `[1]`"
    fenced = link_citations("```\n[1]\n```\n[1]", {1: 3}, "tok")
    assert fenced == "```\n[1]\n```\n[\\[1\\]](cite-tok-1)"


async def test_clicking_a_citation_opens_its_source() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await stage_sources(app)
        app.query_one("#panel").active = "tab-inspector"
        # Report [1] is registry source 3, report [2] registry source 1.
        app.handle_event(ev.ResearchStep(stage="verify", text="2 citation(s) checked",
                                         data={"sources": {"1": 3, "2": 1}}))
        app.handle_event(ev.FinalAnswer(text=REPORT))
        await wait_for(pilot, lambda: len(links(app)) >= 2)
        await pilot.pause()
        found = links(app)
        # [1] and [2] are links carrying the block's token; [7] is not a link at all, and the
        # model's own "cite-1" link carries no token (the block would not follow it).
        ours = sorted((a for a in found if "cite-" in a and a.count("-") == 2),
                      key=lambda a: a.split("-")[-1])
        assert [a.split("-")[-1][0] for a in ours] == ["1", "2"], found
        assert not any(a.split("-")[-1].startswith("7") for a in found)

        x, y = found[next(a for a in ours if a.split("-")[-1].startswith("1"))]
        await pilot.click(offset=(x, y))
        await wait_for(pilot, lambda: app.query_one("#panel").active == "tab-sources")
        await settle(app)
        table = app.query_one("#sources-table")
        assert table.get_row_at(table.cursor_row)[0].plain == "3"
        await wait_for(pilot, lambda: detail(app).startswith("[3] "))

        x, y = found[next(a for a in ours if a.split("-")[-1].startswith("2"))]
        app.query_one("#panel").active = "tab-inspector"
        await pilot.click(offset=(x, y))
        await wait_for(pilot, lambda: app.query_one("#panel").active == "tab-sources")
        await settle(app)
        assert table.get_row_at(table.cursor_row)[0].plain == "1"
        await wait_for(pilot, lambda: detail(app).startswith("[1] "))


async def test_c_on_the_focused_report_steps_through_its_sources() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await stage_sources(app)
        app.query_one("#panel").active = "tab-inspector"
        app.handle_event(ev.ResearchStep(stage="verify", text="2 citation(s) checked",
                                         data={"sources": {"1": 3, "2": 1}}))
        app.handle_event(ev.FinalAnswer(text=REPORT))
        await wait_for(pilot, lambda: bool(app.query(MarkdownBlock).filter(".block-answer")))
        app.query(MarkdownBlock).filter(".block-answer").last().focus()
        table = app.query_one("#sources-table")
        for expected in ("3", "1", "3"):  # report [1], [2], then round again
            await pilot.press("c")
            await wait_for(pilot, lambda: app.query_one("#panel").active == "tab-sources")
            await settle(app)
            assert table.get_row_at(table.cursor_row)[0].plain == expected
