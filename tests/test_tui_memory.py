"""The Memory tab: the session's next prompt (``context_parts``), pins, and the compaction preview
that Apply stores exactly; plus its snapshot (a pin and an open preview, from a recorded scene).

Interaction tests drive the real app, runtime and scripted model with Pilot; the snapshot test
is a plain (sync) function because ``snap_compare`` runs the app in its own loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scenes import workbench as scenes
from textual.widgets import Button, DataTable
from tui_helpers import make_app, notices, send, wait_for

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.tui.app import OpenManusApp
from openmanus_tui.tui.screens import approval as approval_mod
from openmanus_tui.tui.screens.approval import ApprovalScreen
from openmanus_tui.tui.widgets.memory import MemoryPane
from openmanus_tui.tui.widgets.stream import StreamView

SIZE = (140, 45)


@pytest.fixture(autouse=True)
def _fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approval_mod, "ARM_DELAY", 0.05)
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


def answers(app: OpenManusApp) -> int:
    return sum(b.kind == "answer" for b in app.query_one(StreamView).transcript.blocks)


async def run_demo(app: OpenManusApp, pilot, text: str = "do the demo") -> None:
    before = answers(app)
    await send(pilot, text)
    await wait_for(pilot, lambda: answers(app) > before and not app.run_in_progress(), 60)


def kinds(pane: MemoryPane) -> list[str]:
    table = pane.query_one(DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


async def test_parts_pin_by_key_and_unpin_by_click() -> None:
    app = make_app(approval={"mode": "yolo"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await run_demo(app, pilot)
        pane = app.query_one(MemoryPane)
        app.query_one("#panel").active = "tab-memory"
        await wait_for(pilot, lambda: pane.view is not None and len(pane.view.parts) > 3)
        view = await app.session.context_parts()
        # The pane shows exactly the session's parts, with the same weights.
        assert [(p.kind, p.tokens) for p in pane.view.parts] == [
            (p.kind, p.tokens) for p in view.parts]
        assert kinds(pane)[:3] == ["system", "tools", "request"]

        # The system prompt cannot be pinned.
        table = pane.query_one(DataTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("p")
        await pilot.pause(0.1)
        assert await app.session.pins() == []

        # A tool-call turn pinned with the key: stored, marked, counted as pinned.
        row = next(i for i, p in enumerate(pane.view.parts) if p.kind == "tool_call")
        turn_ids = pane.view.parts[row].message_ids
        table.move_cursor(row=row)
        await pilot.press("p")
        await wait_for(pilot, lambda: any(p.pinned for p in pane.view.parts))
        assert await app.session.pins() == [turn_ids[0]]
        pinned = next(p for p in pane.view.parts if p.pinned)
        assert pinned.message_ids == turn_ids and pinned.kind == "pinned"
        events = await app.runtime.db.events(app.session.id)
        assert any(isinstance(e, ev.Memory) and e.action == "pinned" for e in events)

        # Unpinned with a click on the (now "Unpin") button.
        table.move_cursor(row=pane.view.parts.index(pinned))
        await pilot.pause(0.05)
        assert str(pane.query_one("#memory-pin", Button).label) == "Unpin"
        await pilot.click("#memory-pin")
        await wait_for(pilot, lambda: not any(p.pinned for p in pane.view.parts))
        assert await app.session.pins() == []


async def test_compact_preview_is_what_apply_stores() -> None:
    app = make_app(approval={"mode": "yolo"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await run_demo(app, pilot, "first task")
        await run_demo(app, pilot, "second task")
        pane = app.query_one(MemoryPane)
        await send(pilot, "/compact the numbers")
        await wait_for(pilot, lambda: pane.preview is not None)
        preview = pane.preview
        assert app.query_one("#panel").active == "tab-memory"
        assert pane.query_one("#memory-preview").display
        assert preview.focus == "the numbers" and preview.turns
        assert preview.tokens_after < preview.tokens_before
        shown = str(pane.query_one("#memory-preview-text").render())
        assert f"{preview.tokens_before:,} → {preview.tokens_after:,}" in shown
        assert preview.text.splitlines()[0] in shown

        await pilot.click("#compact-apply")
        await wait_for(pilot, lambda: pane.preview is None and pane.view is not None
                       and any(p.kind == "summary" for p in pane.view.parts))
        state = await app.runtime.graph.aget_state(app.session.config)
        stored = state.values["summaries"][-1]
        assert stored == preview.summary  # the very record that was previewed
        covered = {i for turn in preview.turns for i in turn["ids"] if not i.startswith("result_")}
        assert covered <= set(stored["covers"])
        summary_part = next(p for p in pane.view.parts if p.kind == "summary")
        shown_ids = {i for p in pane.view.parts if p.kind != "summary" for i in p.message_ids}
        assert not covered & shown_ids  # the summarised turns left the prompt
        assert summary_part.tokens > 0
        events = await app.runtime.db.events(app.session.id)
        compacted = [e for e in events if isinstance(e, ev.Memory) and e.action == "compacted"]
        assert compacted[-1].data["summary"] == preview.text
        assert compacted[-1].data["tokens_after"] == preview.tokens_after


async def test_no_compaction_while_a_run_is_going() -> None:
    app = make_app(approval={"mode": "ask"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "do the demo")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        pane = app.query_one(MemoryPane)
        await pane.preview_compaction().wait()
        assert pane.preview is None
        assert any("run is in progress" in n.message for n in notices(app))
        app.action_stop_run()
        await wait_for(pilot, lambda: not app.run_in_progress())


async def test_items_the_window_would_drop_are_marked() -> None:
    # A window so small that the oldest turns no longer fit the budget.
    app = make_app(model={"context_window": 2900}, memory={"auto_compact": False})
    async with app.run_test(size=SIZE):
        await scenes.stage_memory(app, pin=None, preview=False)
        pane = app.query_one(MemoryPane)
        dropped = [p for p in pane.view.parts if not p.included]
        assert dropped and pane.view.dropped == len(dropped)
        assert sum(k.endswith("(dropped)") for k in kinds(pane)) == len(dropped)
        assert "dropped by the window" in str(pane.query_one("#memory-summary").render())


# ---- snapshot ---------------------------------------------------------------------------------
def snapshot_app() -> OpenManusApp:
    return OpenManusApp(
        load_settings({"ui": {"theme": "openmanus-dark"}}), clock=scenes.FixedClock(),
        wall_clock=lambda: scenes.BASE_TS + 3600, blink=False,
    )


async def memory_scene(pilot) -> None:
    await scenes.stage_memory(pilot.app)
    await pilot.pause()


def test_memory_pane_with_pin_and_preview_snapshot(snap_compare, isolated_env: Path) -> None:
    assert snap_compare(snapshot_app(), terminal_size=(140, 40), run_before=memory_scene)
