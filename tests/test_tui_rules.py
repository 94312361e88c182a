"""Approval rules in the workbench, driven with Pilot and the scripted model: "Always allow…"
creating a rule that then approves a matching call (and not a non-matching one), the editor's
refusals and reach preview, the Rules screen (list, add, edit, delete); and SVG snapshots of the
Rules screen and of the always-allow editor (sync functions, fixed size, clock and data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scenes import workbench as scenes
from textual.widgets import Button, DataTable, Input, Static
from tui_helpers import wait_for

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import AgentSession
from openmanus_tui.store.db import Database, SessionRecord
from openmanus_tui.store.rules import RuleStore
from openmanus_tui.tui.app import OpenManusApp
from openmanus_tui.tui.screens import approval as approval_mod
from openmanus_tui.tui.screens.approval import ApprovalScreen
from openmanus_tui.tui.screens.dialogs import ConfirmScreen
from openmanus_tui.tui.screens.rules import RuleContext, RuleEditorScreen, RulesScreen
from openmanus_tui.tui.widgets.prompt import PromptInput

SIZE = (140, 45)


@pytest.fixture(autouse=True)
def _fast_and_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sandbox level and the database's size on disk depend on the machine.
    monkeypatch.setattr(AgentSession, "isolation", lambda self: "L2")

    async def fixed_size(self: Database) -> int:
        return 338 * 1024

    monkeypatch.setattr(Database, "size_bytes", fixed_size)


async def click_radio(pilot: Any, selector: str) -> None:
    # On the button's label: its first cell does not toggle it.
    assert await pilot.click(selector, offset=(4, 0))


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


async def seed_past_calls(db: Any, session_id: str, commands: list[str], *,
                          workspace: str = "/home/me/site", ts: float = scenes.BASE_TS) -> None:
    """A stored session with shell calls, as an earlier run would have left them."""
    await db.create_session(SessionRecord(id=session_id, title="earlier work",
                                          workspace=workspace, created=ts, updated=ts))
    for n, command in enumerate(commands, 1):
        await db.append_event(ev.ToolCall(
            session_id=session_id, seq=n, call_id=f"{session_id}-c{n}", tool="shell_exec",
            args={"command": command}, ts=ts + n, risk="execute", tier=1,
        ))


def scripted_app(tmp: Path, commands: list[str]) -> OpenManusApp:
    script = tmp / "shell.json"
    script.write_text(json.dumps({
        "steps": [{"text": f"Step {n}.", "tool_calls": [
            {"name": "shell_exec", "args": {"command": c}}]} for n, c in enumerate(commands)],
        "final": "Done.",
    }))
    settings = load_settings({"model": {"provider": "scripted", "name": str(script)},
                              "approval": {"mode": "auto"}})
    return OpenManusApp(settings, blink=False)


async def next_approval(app: OpenManusApp, pilot: Any) -> ApprovalScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
    screen = app.screen
    assert isinstance(screen, ApprovalScreen)
    await wait_for(pilot, lambda: screen.armed)
    return screen


async def settled_editor(app: OpenManusApp, pilot: Any) -> RuleEditorScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, RuleEditorScreen)
                   and bool(app.screen.query("#reach-title")))
    editor = app.screen
    assert isinstance(editor, RuleEditorScreen)
    await wait_for(pilot, lambda: editor.armed and editor.reach is not None
                   and editor.problem != "checking…"
                   and not any(w.is_running for w in app.workers if w.node is editor))
    return editor


async def test_always_allow_rule_approves_matching_calls_only(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approval_mod, "ARM_DELAY", 0.05)
    app = scripted_app(isolated_env, ["echo one > one.txt", "echo two > two.txt",
                                      "touch three.txt"])
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await seed_past_calls(app.runtime.db, "20240101-000000-aaaaaa",
                              ["echo earlier", "ls -la", "echo again && rm -rf x"])
        await pilot.click("#prompt")
        await pilot.press(*"go", "enter")

        screen = await next_approval(app, pilot)
        assert screen.call.args["command"] == "echo one > one.txt"
        assert app.focused is screen.query_one("#approval-scroll")  # never "always"
        await pilot.click("#always")
        editor = await settled_editor(app, pilot)
        pattern = editor.query_one("#rule-pattern", Input)
        assert pattern.value == "shell_exec(echo *)"  # the suggestion
        assert text_of(editor, "#rule-check") == "✓ matches this call"
        # The reach follows the scope: nothing earlier in this session, one call elsewhere
        # (the compound one is not allowed: its rm part does not match).
        assert "would have allowed 0 past calls in this session" in text_of(editor,
                                                                              "#reach-title")
        await click_radio(pilot, "#scope-global")
        await wait_for(pilot, lambda: "in all sessions" in text_of(editor, "#reach-title"))
        assert "would have allowed 1 past call in all sessions" in text_of(editor,
                                                                             "#reach-title")
        assert "echo earlier" in text_of(editor, "#reach-calls")
        assert "rm -rf" not in text_of(editor, "#reach-calls")

        # A rule that does not match the call is refused, with the reason.
        pattern.value = "shell_exec(git *)"
        await wait_for(pilot, lambda: editor.problem not in (None, "checking…"))
        assert editor.query_one("#rule-save", Button).disabled
        assert "does not match this call" in text_of(editor, "#rule-check")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert app.screen is editor
        assert "must match the call" in text_of(editor, "#rule-error")
        pattern.value = "shell_exec(echo *)"
        await wait_for(pilot, lambda: editor.problem is None)
        await click_radio(pilot, "#scope-project")
        await wait_for(pilot, lambda: "in this workspace" in text_of(editor, "#reach-title"))
        await pilot.click("#rule-save")

        # "echo two" runs by the rule; "touch three" is asked about, and denied.
        screen = await next_approval(app, pilot)
        assert screen.call.args["command"] == "touch three.txt"
        screen.query_one("#deny-reason", Input).focus()
        await pilot.press(*"not now", "enter")
        await wait_for(pilot, lambda: not app.run_in_progress())
        events = await app.runtime.db.events(app.session.id)
        rules = await RuleStore(app.runtime.db).list()
        workspace = app.session.workspace

    decided = {e.call_id: e for e in events if isinstance(e, ev.ApprovalDecided)}
    calls = {e.args["command"]: e.call_id for e in events if isinstance(e, ev.ToolCall)}
    first, second, third = (decided[calls[c]] for c in
                            ("echo one > one.txt", "echo two > two.txt", "touch three.txt"))
    assert (first.decision, first.by, first.rule, first.scope) == (
        "always", "user", "shell_exec(echo *)", "project")
    assert (second.decision, second.by, second.rule) == ("approve", "rule", "shell_exec(echo *)")
    assert (third.decision, third.by) == ("deny", "user")
    assert (workspace / "two.txt").read_text() == "two\n"
    assert not (workspace / "three.txt").exists()
    (rule,) = rules
    assert (rule.text, rule.action, rule.scope, rule.project, rule.hits) == (
        "shell_exec(echo *)", "allow", "project", str(workspace), 1)


async def test_editor_cannot_be_saved_by_keys_typed_ahead(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approval_mod, "ARM_DELAY", 60)  # never arms by itself here
    app = scripted_app(isolated_env, ["echo one"])
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.click("#prompt")
        await pilot.press(*"go", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        screen = app.screen
        assert isinstance(screen, ApprovalScreen)
        assert screen.query_one("#always", Button).disabled
        screen.action_always()  # not armed: nothing opens
        await pilot.pause(0.05)
        assert app.screen is screen
        screen._arm()
        await pilot.click("#always")
        await wait_for(pilot, lambda: isinstance(app.screen, RuleEditorScreen))
        editor = app.screen
        assert isinstance(editor, RuleEditorScreen)
        await pilot.press("enter", "ctrl+s")  # typed ahead: neither saves
        await pilot.pause(0.1)
        assert app.screen is editor and editor.query_one("#rule-save", Button).disabled
        await pilot.press("escape")  # back to the approval, which is still waiting
        await wait_for(pilot, lambda: app.screen is screen)
        app.action_stop_run()
        rules = await RuleStore(app.runtime.db).list()
    assert rules == []


async def test_rules_screen_lists_adds_edits_and_deletes(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approval_mod, "ARM_DELAY", 0.05)
    app = OpenManusApp(load_settings(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        store = RuleStore(app.runtime.db)
        await store.add("shell_exec(git status *)", scope="global")
        await store.add("file_write(secrets/**)", action="deny", scope="global")
        await pilot.click("#prompt")
        await pilot.press(*"/rules", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RulesScreen))
        rules_screen = app.screen
        assert isinstance(rules_screen, RulesScreen)
        table = rules_screen.query_one("#rules-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert [str(c) for c in table.get_row_at(0)][:4] == [
            "shell_exec", "git status *", "allow", "global"]

        # Delete asks first; cancelling keeps the rule.
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is rules_screen)
        assert table.row_count == 2
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert [r.text for r in await store.list()] == ["file_write(secrets/**)"]

        # Add: a deny rule by default. A broken pattern is refused in place.
        await pilot.press("a")
        editor = await settled_editor(app, pilot)
        assert editor.action == "deny"
        editor.query_one("#rule-pattern", Input).value = "shell_exec("
        await wait_for(pilot, lambda: editor.problem not in (None, "checking…"))
        assert "not a rule" in text_of(editor, "#rule-check")
        editor.query_one("#rule-pattern", Input).value = "shell_exec(curl *)"
        await wait_for(pilot, lambda: editor.problem is None)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is rules_screen and table.row_count == 2)

        # Edit (Enter on a row): the action changes, the pattern too.
        table.move_cursor(row=0)
        await pilot.press("e")
        editor = await settled_editor(app, pilot)
        editor.query_one("#rule-pattern", Input).value = "file_write(secrets/*.key)"
        await click_radio(pilot, "#action-ask")
        await wait_for(pilot, lambda: editor.problem is None and editor.action == "ask")
        await pilot.click("#rule-save")
        await wait_for(pilot, lambda: app.screen is rules_screen)
        stored = {r.text: r.action for r in await store.list()}
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen.focused, PromptInput)
                       or not isinstance(app.screen, RulesScreen))
    assert stored == {"file_write(secrets/*.key)": "ask", "shell_exec(curl *)": "deny"}


# ---- snapshots ------------------------------------------------------------------------------
def snapshot_app() -> OpenManusApp:
    settings = load_settings({"ui": {"theme": "openmanus-dark"}})
    return OpenManusApp(settings, clock=scenes.FixedClock(),
                        wall_clock=lambda: scenes.BASE_TS + 3600, blink=False)


async def rules_scene(pilot: Any) -> None:
    app = pilot.app
    await scenes.stage_main(app, live=False)
    db = app.runtime.db
    store = RuleStore(db)
    workspace = str(app.session.workspace)
    made = [
        await store.add("shell_exec(rm -rf *)", action="deny", scope="global"),
        await store.add("mcp__github", action="ask", scope="global"),
        await store.add("shell_exec(git status *)", scope="project", project=workspace),
        await store.add("file_write(src/**)", scope="project", project="/home/me/projects/site"),
        await store.add("shell_exec(python3 stats.py *)", scope="session",
                        session_id=scenes.SESSION_ID),
    ]
    for rule, hits, ago_s in zip(made, [2, 0, 14, 3, 1], [7200, 0, 300, 86400 * 3, 30],
                                 strict=True):
        if hits:
            await store.record_hits([rule.id] * hits, ts=scenes.BASE_TS + 3600 - ago_s)
    screen = RulesScreen(RuleContext.of(db, app.session), now=app.wall_clock)
    app.push_screen(screen)
    # Conditions, not fixed pauses: a loaded machine outlasts any pause.
    await wait_for(pilot, lambda: any(t.row_count == len(made) for t in screen.query(DataTable)))
    await pilot.pause()


def shell_call() -> ev.ApprovalCall:
    return ev.ApprovalCall(call_id="call_demo_2", tool="shell_exec",
                           args={"command": "python3 stats.py --json", "timeout": 30},
                           risk="execute", tier=1, reason="execute tool in approval mode auto")


async def approval_scene(pilot: Any) -> None:
    app = pilot.app
    await scenes.stage_main(app, live=False)
    screen = ApprovalScreen(shell_call(), workspace=app.session.workspace,
                            rules=RuleContext.of(app.runtime.db, app.session))
    app.push_screen(screen)
    await wait_for(pilot, lambda: screen.armed)  # past the arming delay: buttons enabled
    await pilot.pause()


async def always_scene(pilot: Any) -> None:
    app = pilot.app
    await scenes.stage_main(app, live=False)
    db = app.runtime.db
    await seed_past_calls(db, "20241229-100000-111111", [
        "python3 stats.py", "python3 stats.py --verbose > report.txt", "ls -l",
        "python3 stats.py && rm -rf build", "python3 other.py",
    ], workspace=str(app.session.workspace))
    screen = ApprovalScreen(shell_call(), workspace=app.session.workspace,
                            rules=RuleContext.of(db, app.session))
    app.push_screen(screen)
    await wait_for(pilot, lambda: screen.armed)  # past the arming delay
    screen.action_always()
    await wait_for(pilot, lambda: isinstance(app.screen, RuleEditorScreen)
                   and bool(app.screen.query("#reach-title")))
    editor = app.screen
    editor.query_one("#scope-project").value = True  # the workspace's earlier calls
    # The editor arms and the preview settles on the workspace's calls.
    await wait_for(pilot, lambda: editor.armed and "in this workspace" in str(
        editor.query_one("#reach-title", Static).render()))
    await pilot.pause()


def test_rules_screen_snapshot(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=(140, 40), run_before=rules_scene)


def test_approval_modal_with_always_allow_snapshot(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=(140, 40), run_before=approval_scene)


def test_always_allow_editor_snapshot(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=(140, 44), run_before=always_scene)
