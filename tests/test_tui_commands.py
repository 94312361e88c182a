"""Slash commands and palette entries of the workbench: /model, /agent, /export, /help with
binding ids, the theme remembered across restarts, the palette's providers, MCP servers in the
Tools tab; plus the command palette snapshot. Real app, runtime and scripted models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from scenes import workbench as scenes
from textual.widgets import Input
from tui_helpers import make_app, notices, send, wait_for

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.tui.app import OpenManusApp
from openmanus_tui.tui.screens.help import HelpScreen, help_markdown
from openmanus_tui.tui.ui_state import load_ui_state
from openmanus_tui.tui.widgets.stream import StreamView
from openmanus_tui.tui.widgets.tools_pane import McpTable

SIZE = (140, 45)
ECHO_SERVER = str(Path(__file__).with_name("mcp_echo_server.py"))


@pytest.fixture(autouse=True)
def _fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")


def answers(app: OpenManusApp) -> list[str]:
    return [b.text for b in app.query_one(StreamView).transcript.blocks if b.kind == "answer"]


async def run_task(app: OpenManusApp, pilot, text: str) -> None:
    before = len(answers(app))
    await send(pilot, text)
    await wait_for(pilot, lambda: len(answers(app)) > before and not app.run_in_progress(), 60)


def messages(app: OpenManusApp) -> list[str]:
    return [n.message for n in notices(app)]


async def test_model_switch_and_a_wrong_spec(tmp_path: Path) -> None:
    script = tmp_path / "other.json"
    script.write_text(json.dumps({"steps": [], "final": "answered by the other model"}))
    app = make_app(approval={"mode": "yolo"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await run_task(app, pilot, "do the demo")
        session_id = app.session.id

        await send(pilot, "/model nonsense", close_menu=True)
        await wait_for(pilot, lambda: any("not a model spec" in m for m in messages(app)))
        assert app.session.record.model == "scripted:demo"

        await send(pilot, f"/model scripted:{script}", close_menu=True)
        await wait_for(pilot, lambda: app.status.model == f"scripted:{script}")
        assert app.session.id == session_id  # the same session, reopened with the model
        assert (await app.runtime.db.get_session(session_id)).model == f"scripted:{script}"
        assert f"scripted:{script}" in str(app.query_one("#status").content)

        await run_task(app, pilot, "and now?")
        assert answers(app)[-1] == "answered by the other model"
        events = await app.runtime.db.events(session_id)
        started = [e for e in events if isinstance(e, ev.RunStarted)]
        assert started[-1].model == f"scripted:{script}"


async def test_agent_profiles_change_the_system_prompt() -> None:
    app = make_app(approval={"mode": "yolo"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        # Chosen before the first task: the new session is created with it.
        await send(pilot, "/agent Data analysis", close_menu=True)
        await wait_for(pilot, lambda: app.status.profile == "data_analysis")
        await run_task(app, pilot, "do the demo")
        record = await app.runtime.db.get_session(app.session.id)
        assert record.profile == "data_analysis"
        assert "pandas" in app.session._system_prompt()

        await send(pilot, "/agent research", close_menu=True)
        await wait_for(pilot, lambda: app.session.record.profile == "research")
        assert (await app.runtime.db.get_session(app.session.id)).profile == "research"
        assert "credibility" in app.session._system_prompt()
        view = await app.session.context_parts()
        system = view.parts[0]
        assert system.kind == "system" and system.tokens > 0

        await run_task(app, pilot, "again")
        events = await app.runtime.db.events(app.session.id)
        assert [e.profile for e in events if isinstance(e, ev.RunStarted)] == [
            "data_analysis", "research"]

        await send(pilot, "/agent poet", close_menu=True)
        await wait_for(pilot, lambda: any("No agent profile 'poet'" in m for m in messages(app)))
        assert app.session.record.profile == "research"


async def test_export_writes_into_the_workspace_or_a_path() -> None:
    app = make_app(approval={"mode": "yolo"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "/export", close_menu=True)
        await wait_for(pilot, lambda: any("Nothing to export" in m for m in messages(app)))
        await run_task(app, pilot, "do the demo")
        workspace = app.session.workspace

        await send(pilot, "/export html", close_menu=True)
        target = workspace / f"openmanus-{app.session.id}.html"
        await wait_for(pilot, lambda: target.exists())
        html = target.read_text()
        assert html.lstrip().lower().startswith("<!doctype html") and "list_files" in html
        assert any(str(target) in m for m in messages(app))

        await send(pilot, "/export exports/run.json", close_menu=True)
        target = workspace / "exports" / "run.json"
        await wait_for(pilot, lambda: target.exists())
        doc = json.loads(target.read_text())
        assert doc["session"]["id"] == app.session.id
        assert any(e["type"] == "final_answer" for e in doc["events"])

        await send(pilot, "/export pdf", close_menu=True)
        await wait_for(pilot, lambda: any("unknown format" in m for m in messages(app)))


async def test_theme_is_remembered_across_restarts(isolated_env: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        assert app.theme == "openmanus-dark"
        await send(pilot, "/theme openmanus-ember", close_menu=True)
        assert app.theme == "openmanus-ember"
        await pilot.pause(0.05)
    assert load_ui_state(app.settings)["theme"] == "openmanus-ember"
    assert (isolated_env / "config.toml").read_text() == ""  # the TOML is never rewritten

    app = make_app()
    async with app.run_test(size=SIZE):
        await app.ready.wait()
        assert app.theme == "openmanus-ember"

    # A theme set in the configuration after the switch wins…
    app = make_app(ui={"theme": "openmanus-light"})
    async with app.run_test(size=SIZE):
        await app.ready.wait()
        assert app.theme == "openmanus-light"
    # …without forgetting the switch for the configuration it was made under.
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        assert app.theme == "openmanus-ember"
        # A switch through the palette's own theme command is remembered too.
        app.theme = "openmanus-ocean"
        await pilot.pause(0.05)
    assert load_ui_state(app.settings)["theme"] == "openmanus-ocean"


async def test_help_lists_bindings_with_ids_after_remapping() -> None:
    app = make_app(ui={"keymap": {"app.stop": "ctrl+x"}})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "/help", close_menu=True)
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = help_markdown(app.screen.keys)
        assert "| `^x` | Stop | anywhere | `app.stop` |" in text
        for binding_id in ("app.new_session", "memory.pin", "memory.compact", "session.delete",
                           "approval.deny"):
            assert f"`{binding_id}`" in text
        for command in ("/model SPEC", "/agent NAME", "/compact [FOCUS]", "/export"):
            assert command in text
        await pilot.press("escape")
        await pilot.press("ctrl+x")  # the remapped key works (nothing to stop: no error)


async def test_palette_switches_profile_and_lists_models() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.press("ctrl+p")
        await pilot.press(*"Agent: Writ")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.status.profile == "writing")
        from openmanus_tui.tui.commands import ModelCommands, model_specs

        specs = model_specs(app.status.model)
        assert "scripted:demo" in specs and "openai:gpt-4.1-mini" in specs
        names = [name for name, _, _ in ModelCommands(app.screen).entries(app)]
        assert "Model: scripted:demo" in names


async def test_tools_tab_shows_mcp_servers_and_their_state(isolated_env: Path) -> None:
    from openmanus_tui.config import load_settings
    from openmanus_tui.tools.mcp_trust import TrustStore
    from openmanus_tui.utilities.mcp_config import parse_mcp_config

    servers = {
        "echo": {"command": sys.executable, "args": [ECHO_SERVER], "sandbox": False},
        "broken": {"command": str(isolated_env / "no-such-server"), "sandbox": False},
    }
    store = TrustStore(load_settings().resolved_data_dir)
    for cfg in parse_mcp_config({"mcpServers": servers}).values():
        store.trust(cfg)
    servers["new"] = {"command": "sh", "args": ["-c", "exit 0"]}  # never trusted (issue 12)
    app = make_app(mcp={"servers": servers})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        app.query_one("#panel").active = "tab-tools"
        await wait_for(pilot, lambda: bool(app.query(McpTable)) and
                       app.query_one(McpTable).row_count == 3)
        table = app.query_one(McpTable)
        echo = table.get_row("echo")
        assert echo[0] == "echo" and echo[1] == "stdio" and str(echo[2]) == "running"
        assert int(echo[3]) > 0
        broken = table.get_row("broken")
        assert str(broken[2]) == "failed" and str(broken[4])
        new = table.get_row("new")
        assert str(new[2]) == "untrusted" and "openmanus mcp trust new" in str(new[4])
        assert table.display


# ---- snapshot ---------------------------------------------------------------------------------
async def palette_scene(pilot) -> None:
    await scenes.stage_main(pilot.app, live=False)
    await pilot.press("ctrl+p")
    # The palette's own input blinks its cursor: steady, so that the frame is deterministic.
    pilot.app.screen.query_one(Input).cursor_blink = False
    await pilot.press(*"agent")
    await pilot.pause(0.5)


def test_command_palette_snapshot(snap_compare) -> None:
    app = OpenManusApp(
        load_settings({"ui": {"theme": "openmanus-dark"}}), clock=scenes.FixedClock(),
        wall_clock=lambda: scenes.BASE_TS + 3600, blink=False,
    )
    assert snap_compare(app, terminal_size=(140, 40), run_before=palette_scene)
