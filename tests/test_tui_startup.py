"""Start-up of the workbench as ``openmanus`` starts it: no settings given, the first frame
before pydantic, the theme guessed from the remembered choice and confirmed once the settings
are in, a broken config file ending the app with its one-line error, ``--last``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tui_helpers import notices, wait_for

from openmanus_tui import launch, paths
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tui import app as tui_app
from openmanus_tui.tui.app import OpenManusApp
from openmanus_tui.tui.widgets.prompt import PromptInput
from openmanus_tui.tui.widgets.status import StatusLine

SIZE = (140, 40)


def fresh_python(code: str) -> str:
    """What ``code`` prints in a new interpreter (imports and process state start clean)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout


def test_the_workbench_modules_do_not_import_pydantic() -> None:
    # What the first frame needs must not pay for pydantic (a third of a second here), nor for
    # the side panel, which is mounted after that frame.
    code = ("import sys, openmanus_tui.cli, openmanus_tui.tui.app; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pydantic', 'pydantic_settings', 'langgraph', 'langchain_core') or m in "
            "('openmanus_tui.tui.widgets.side_panel', 'openmanus_tui.tui.widgets.inspector', "
            "'openmanus_tui.tui.widgets.memory', 'openmanus_tui.tui.widgets.tools_pane', "
            # Imported when first used: the palette's providers and the slash commands (with
            # the runtime's API), the transcript model and the block widgets.
            "'openmanus_tui.tui.commands', 'openmanus_tui.tui.branching', "
            "'openmanus_tui.runtime.api', 'openmanus_tui.runtime.views', "
            "'openmanus_tui.tui.transcript', 'openmanus_tui.tui.widgets.blocks', 'sqlite3')))")
    assert fresh_python(code).strip() == "[]"


def test_the_palette_providers_load_when_asked_for() -> None:
    from openmanus_tui.tui import branching, commands

    # Textual calls what is not a class (as its command palette does) to get the provider.
    loaded = {p if isinstance(p, type) else p() for p in OpenManusApp.COMMANDS}
    assert commands.PROVIDERS | {branching.HistoryCommands} <= loaded


def test_only_the_openmanus_process_tunes_the_collector() -> None:
    # In a fresh process: the tuning is the entry point's (``launch.main``), never an import's.
    code = (
        "import gc; from openmanus_tui import launch; default = gc.get_threshold(); "
        "launch.settle_after_startup(); "
        "untouched = gc.get_threshold() == default and gc.get_freeze_count() == 0; "
        "launch.configure_process(); startup = gc.get_threshold(); "
        "launch.settle_after_startup(); "
        "print(untouched, startup[0], startup[1:] == default[1:], gc.get_threshold()[0], "
        "gc.get_freeze_count() > 0)")
    assert fresh_python(code).split() == [
        "True", str(launch.STARTUP_THRESHOLD), "True", str(launch.SETTLED_THRESHOLD), "True"]


def test_the_collector_is_held_for_the_first_frame_only_in_the_openmanus_process() -> None:
    code = (
        "import gc; from openmanus_tui import launch; "
        "launch.hold_collector(); untouched = gc.isenabled(); "
        "launch.configure_process(); launch.hold_collector(); held = not gc.isenabled(); "
        "launch.after_first_frame(); "
        "print(untouched, held, gc.isenabled(), gc.get_freeze_count() > 0, "
        "gc.get_threshold()[0])")
    assert fresh_python(code).split() == [
        "True", "True", "True", "True", str(launch.STARTUP_THRESHOLD)]


async def test_the_first_frame_holds_only_what_it_shows(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first frame: the welcome, the focused prompt, the status line and the footer. The
    sidebar's contents, the slash menu, the queued strip and the side panel come right after it,
    when the collector comes back too (``launch.after_first_frame``)."""
    from openmanus_tui.tui.widgets.welcome import Welcome

    seen: dict[str, object] = {}

    def first_frame() -> None:
        seen["focused"] = app.focused
        seen["welcome"] = bool(app.query(Welcome))
        seen["later"] = [s for s in ("#session-list", "#slash-menu", "#queued", "#panel")
                         if app.query(s)]

    came_back: list[bool] = []
    monkeypatch.setattr(tui_app, "after_first_frame",
                        lambda: came_back.append(bool(app.query("#panel"))))
    app = OpenManusApp(blink=False)
    app.call_after_refresh(first_frame)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: bool(seen))
        assert isinstance(seen["focused"], PromptInput) and seen["welcome"]
        assert seen["later"] == []
        for selector in ("#session-list", "#slash-menu", "#queued", "#panel"):
            app.query_one(selector)  # all there once the app is ready
        assert came_back == [False]  # once, before the side panel was mounted


async def test_starts_without_settings_and_loads_them_after_the_first_frame(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (isolated_env / "config.toml").write_text('[approval]\nmode = "ask"\n')
    settled: list[bool] = []
    monkeypatch.setattr(tui_app, "settle_after_startup",
                        lambda: settled.append(app.runtime is not None))
    app = OpenManusApp(blink=False)
    assert app.settings is None
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        assert app.settings.approval.mode == "ask"
        assert app.runtime is not None
        assert settled == [True]  # once, as soon as the runtime was open
        assert app.query_one("#panel").parent is app.query_one("#panel-slot")  # mounted by _boot
        await pilot.pause(0.05)
        status = str(app.query_one(StatusLine).render())
        assert status.startswith(" idle ") and "approval ask" in status


async def test_remembered_theme_is_the_first_frame_theme(isolated_env: Path) -> None:
    data = isolated_env / "data"
    data.mkdir()
    (data / "ui-state.json").write_text(
        json.dumps({"theme": "openmanus-light", "config_theme": "openmanus-dark"}))
    app = OpenManusApp(blink=False)
    assert app.theme == "openmanus-light"  # before the settings, before the first frame
    changes: list[str] = []
    async with app.run_test(size=SIZE):
        app.theme_changed_signal.subscribe(app, lambda theme: changes.append(theme.name))
        await app.ready.wait()
        assert app.theme == "openmanus-light" and changes == []  # confirmed: no re-style


async def test_a_wrong_guess_is_corrected_once_the_settings_are_in(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The config file moves the data folder (no OPENMANUS_DATA_DIR): the guess looks in the
    # platform's folder and cannot see the remembered choice.
    monkeypatch.delenv("OPENMANUS_DATA_DIR")
    monkeypatch.setattr(paths, "default_data_dir", lambda: isolated_env / "platform-data")
    elsewhere = isolated_env / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "ui-state.json").write_text(
        json.dumps({"theme": "openmanus-ember", "config_theme": "openmanus-dark"}))
    (isolated_env / "config.toml").write_text(f'data_dir = "{elsewhere}"\n')
    app = OpenManusApp(blink=False)
    assert app.theme == "openmanus-dark"
    async with app.run_test(size=SIZE):
        await app.ready.wait()
        assert app.theme == "openmanus-ember"


async def _first_frame_facts(overrides: dict | None = None) -> tuple[str, str, str]:
    """(the welcome's facts in the first frame, the status line then, the facts once the
    settings are in) of a start as ``openmanus`` makes it."""
    from openmanus_tui.tui.widgets.welcome import Welcome

    app = OpenManusApp(blink=False, overrides=overrides)
    first: list[tuple[str, str]] = []

    def facts() -> str:
        return str(app.query_one(Welcome).query_one("#welcome-facts").render())

    app.call_after_refresh(lambda: first.append((facts(), str(app.query_one(StatusLine).render()))))
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: bool(first))
        for worker in [w for w in app.workers if w.group == "ui-state"]:
            await worker.wait()  # the facts are stored for the next start
        return first[0][0], first[0][1], facts()


async def test_the_first_frame_names_the_model_a_start_with_the_same_inputs_found(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The welcome of the first frame: "Reading the configuration…" on a first start, the real
    facts (model, approval) on the next start with the same config file, environment, flags
    and folder; a changed input is not trusted (the facts wait for the settings again)."""
    (isolated_env / "config.toml").write_text('[approval]\nmode = "ask"\n')
    flags = {"model": {"provider": "scripted", "name": "demo"}}
    first, _, loaded = await _first_frame_facts(flags)
    assert "Reading the configuration" in first
    assert "scripted:demo" in loaded and "ask" in loaded
    again, status, _ = await _first_frame_facts(flags)
    assert again == loaded  # before pydantic has read anything
    assert "scripted:demo" in status and "approval ask" in status
    monkeypatch.setenv("OPENMANUS_APPROVAL__MODE", "yolo")  # another input: no guess
    changed, _, loaded = await _first_frame_facts(flags)
    assert "Reading the configuration" in changed and "yolo" in loaded
    (isolated_env / "config.toml").write_text('[approval]\nmode = "auto"\n')  # the file too
    changed, _, _ = await _first_frame_facts(flags)
    assert "Reading the configuration" in changed


async def test_resume_last_opens_the_newest_session(isolated_env: Path) -> None:
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    try:
        older = await runtime.create_session()
        await older.run("first")
        newer = await runtime.create_session()
        await newer.run("second")
    finally:
        await runtime.close()
    app = OpenManusApp(resume_last=True, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: app.session is not None)
        assert app.session.id == newer.id


def test_broken_config_ends_the_workbench_with_one_line(isolated_env: Path) -> None:
    """The real command in a terminal: exit status 2 and the config error after the screen
    is restored, as every other command reports it."""
    (isolated_env / "config.toml").write_text('[model]\nnme = "x"\n')
    main_fd, tty_fd = os.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "openmanus_tui"], stdin=tty_fd, stdout=tty_fd,
            stderr=subprocess.PIPE, env={**os.environ, "TERM": "xterm-256color"}, timeout=120,
        )
    finally:
        os.close(tty_fd)
        os.close(main_fd)
    assert proc.returncode == 2
    # After the escape codes that restore the terminal; wrapped at the terminal's width.
    printed = proc.stderr.decode(errors="replace").rsplit("\x1b[", 1)[-1].split("openmanus:", 1)
    assert len(printed) == 2
    assert "".join(printed[1].split()) == "".join(
        f"{isolated_env / 'config.toml'}: model.nme: unknown key".split())


async def test_keys_and_commands_before_the_settings_are_in(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first second: the settings are still loading. Every key and command either works
    (themes, help) or says so — nothing fails, nothing is lost."""
    release = asyncio.Event()
    real_load = OpenManusApp._load_settings

    async def slow_load(self: OpenManusApp) -> bool:
        await release.wait()
        return await real_load(self)

    monkeypatch.setattr(OpenManusApp, "_load_settings", slow_load)
    (isolated_env / "config.toml").write_text('[approval]\nmode = "yolo"\n')
    app = OpenManusApp(blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        assert app.settings is None
        assert app.focused is app.query_one(PromptInput)  # typing works from the first frame
        assert str(app.query_one(StatusLine).render()).startswith(" starting ")
        await pilot.press("ctrl+n")
        for text in ("/approval ask", "/model scripted:demo", "/export md", "a task"):
            app.query_one(PromptInput).load_text(text)
            await pilot.press("enter")
        await pilot.pause(0.1)
        says = [n.message for n in notices(app)]
        assert says.count("Still starting up…") == 4
        assert "Starting up: the task runs as soon as the agent is ready." in says
        app.run_slash("/theme openmanus-light")  # needs no settings
        await pilot.pause(0.05)
        assert app.theme == "openmanus-light"
        release.set()
        await app.ready.wait()
        assert app.settings is not None and app.runtime is not None
        assert app.settings.approval.mode == "yolo"  # the early /approval did nothing
        # The task typed early was kept and ran once the runtime was open.
        await wait_for(pilot, lambda: app.session is not None and not app.run_in_progress())
        stored = await app.runtime.db.events(app.session.id)
        assert [e.input for e in stored if e.type == "run_started"] == ["a task"]


def test_the_remembered_start_follows_every_settings_input(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first frame shows remembered facts only for a start whose inputs are the same: an
    edit of the config file or of the OPENMANUS_ENV overlay, a variable, a flag or the folder
    makes it a different start; a secret counts as set or not, never by its value."""
    from openmanus_tui.tui.ui_state import settings_fingerprint

    config = isolated_env / "config.toml"
    overlay = isolated_env / "config.dev.toml"
    first = settings_fingerprint(None)
    assert settings_fingerprint(None) == first
    config.write_text('[approval]\nmode = "ask"\n')
    after_config = settings_fingerprint(None)
    assert after_config != first
    monkeypatch.setenv("OPENMANUS_ENV", "dev")
    with_env = settings_fingerprint(None)
    assert with_env != after_config
    overlay.write_text('[model]\nname = "gpt-4.1-nano"\n')
    assert settings_fingerprint(None) != with_env
    with_overlay = settings_fingerprint(None)
    assert settings_fingerprint({"approval": {"mode": "yolo"}}) != with_overlay
    monkeypatch.setenv("OPENAI_API_KEY", "sk-one")
    with_key = settings_fingerprint(None)
    assert with_key != with_overlay
    monkeypatch.setenv("OPENAI_API_KEY", "sk-two")
    assert settings_fingerprint(None) == with_key
