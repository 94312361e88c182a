"""SVG snapshot tests of the workbench, from recorded scenes (``tests/scenes/``):
fixed ids, times, clock and theme, cursor blink off. Update with ``pytest --snapshot-update``
after checking the new SVGs in ``tests/__snapshots__/`` by eye.

These must stay plain (sync) functions: ``snap_compare`` runs the app in its own loop.
"""

from __future__ import annotations

import pytest
from scenes import workbench as scenes

from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.tools.file_tools import FileWriteArgs
from openmanus_tui.tui.app import OpenManusApp
from openmanus_tui.tui.screens.approval import ApprovalScreen


@pytest.fixture(autouse=True)
def _fixed_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sandbox level depends on the machine; the recorded scene says L2.
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


def make_app(theme: str = "openmanus-dark") -> OpenManusApp:
    settings = load_settings({"ui": {"theme": theme}})
    return OpenManusApp(
        settings, clock=scenes.FixedClock(), wall_clock=lambda: scenes.BASE_TS + 3600,
        blink=False,
    )


async def main_scene(pilot) -> None:
    await scenes.stage_main(pilot.app)
    await pilot.pause()


async def approval_scene(pilot) -> None:
    app = pilot.app
    await scenes.stage_main(app, live=False)
    workspace = app.session.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "stats.py").write_text(scenes.OLD_STATS_PY)
    screen = ApprovalScreen(
        scenes.write_approval_call(), workspace=workspace, args_model=FileWriteArgs,
    )
    app.push_screen(screen)
    # Past the arming delay, so the buttons show enabled: waited for, not slept (a fixed 0.6 s
    # for the 0.4 s timer was too short once on a loaded machine).
    for _ in range(600):
        if screen.armed:
            break
        await pilot.pause(0.05)
    assert screen.armed, "the approval screen never armed"
    await pilot.pause()


async def inspector_scene(pilot) -> None:
    app = pilot.app
    await scenes.stage_main(app)
    stream = app.query_one("#stream")
    widget = stream._widgets["action:call_demo_1"]
    widget.scroll_visible(animate=False)
    widget.focus()
    widget.action_select_block()
    await pilot.pause(0.2)


async def memory_scene(pilot) -> None:
    app = pilot.app
    await scenes.stage_main(app)
    app.query_one("#panel").active = "tab-memory"
    await pilot.pause(0.2)


def test_main_screen_mid_run(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=main_scene)


def test_approval_modal_with_diff(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(140, 44), run_before=approval_scene)


def test_inspector(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=inspector_scene)


def test_memory_pane(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=memory_scene)


def test_narrow_80x24(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=main_scene)


@pytest.mark.parametrize("theme", ["openmanus-light", "openmanus-ember"])
def test_themes(snap_compare, theme: str) -> None:
    assert snap_compare(make_app(theme), terminal_size=(140, 40), run_before=main_scene)


async def settled(pilot) -> None:
    await pilot.app.ready.wait()
    await pilot.pause(0.3)


def test_welcome_80x24(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first screen at 80×24: the demo model that will run (no key), the workspace, the
    approval mode and the example tasks."""
    from openmanus_tui.tui.widgets import welcome

    monkeypatch.setattr(welcome, "sandbox_level", lambda settings: "L2")
    settings = load_settings({"sandbox": {"workspace": "/home/you/project"}})
    app = OpenManusApp(settings, clock=scenes.FixedClock(),
                       wall_clock=lambda: scenes.BASE_TS + 3600, blink=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled)


def test_approval_modal_80x24(snap_compare) -> None:
    """Every button on screen; the body scrolls between the docked title and buttons."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=approval_scene)


async def write_form_scene(pilot) -> None:
    from openmanus_tui.tui.screens.write_form import WriteFormScreen

    app = pilot.app
    await app.ready.wait()
    app.run_slash("/write Why and how to write plainly")
    for _ in range(600):
        if isinstance(app.screen, WriteFormScreen):
            break
        await pilot.pause(0.05)
    await pilot.pause()


def test_write_form_80x24(snap_compare) -> None:
    """The /write form at 80×24: the title and the buttons on screen, the fields scroll."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=write_form_scene)
