"""The research report in the workbench: a Research session over three workspace documents
with the offline demo model (no key), the verified report with its contradiction list in the
answer block, and the Sources tab. For the screenshot (``screenshots/make_screenshots.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_helpers import send, wait_for

DOCS = {
    "bridge.md": "# Harbour bridge history\n\nThe harbour bridge opened in 1932 after eight "
    "years of work. Today it carries about 160,000 vehicles a day.\n",
    "tolls.md": "# Toll report\n\nTolls on the harbour bridge were introduced in 1935. "
    "Bridge tolls rose by 12 percent in 2020.\n",
    "gazette.md": "# Old gazette\n\nThe harbour bridge opened in 1934, the gazette wrote, "
    "after a long delay.\n",
}


async def stage_research(app: Any, pilot: Any, workspace: Path) -> None:
    from scenes.sources import settle

    workspace.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (workspace / name).write_text(text)
    await app.ready.wait()
    app.settings.sandbox.workspace = workspace
    await send(pilot, "/agent research", close_menu=True)
    await wait_for(pilot, lambda: app.status.profile == "research")
    await send(pilot, "When did the harbour bridge open, and what do the tolls cost?")
    stream = app.query_one("#stream")
    await wait_for(pilot, lambda: not app.run_in_progress() and any(
        b.kind == "answer" for b in stream.transcript.blocks), 60)
    app.query_one("#panel").active = "tab-sources"
    pane = app.query_one("#sources")
    await pane.ensure_built()
    await pane.reload().wait()
    await settle(app)
    stream.scroll_end(animate=False)
    await pilot.pause(0.3)
