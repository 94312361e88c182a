"""Configuration that changes while running: environment overlays, hot reload (the core's
``ConfigReloader`` and the workbench on top of it), versions, diff and rollback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import cli
from tui_helpers import screen_text, wait_for

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.errors import ConfigError
from openmanus_tui.runtime.config_reload import ConfigReloader, ReloadResult
from openmanus_tui.runtime.config_versions import (
    config_database,
    describe_diff,
    get_version,
    list_versions,
    rollback,
)
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tui.app import OpenManusApp


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


# ---- overlays ---------------------------------------------------------------------------------
def test_overlay_merges_section_by_section(isolated_env: Path, monkeypatch) -> None:
    base = isolated_env / "config.toml"
    write(base, '[approval]\nmode = "ask"\n[agent]\nmax_steps = 7\nrepeat_limit = 4\n')
    write(isolated_env / "config.prod.toml", "[agent]\nmax_steps = 3\n")
    monkeypatch.setenv("OPENMANUS_ENV", "prod")
    settings = load_settings()
    assert settings.agent.max_steps == 3  # the overlay's
    assert settings.agent.repeat_limit == 4  # the base's, same section
    assert settings.approval.mode == "ask"  # a section the overlay does not name
    # the environment still beats both files
    monkeypatch.setenv("OPENMANUS_AGENT__MAX_STEPS", "9")
    assert load_settings().agent.max_steps == 9


def test_overlay_mistakes_are_one_line(isolated_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENMANUS_ENV", "stagign")
    with pytest.raises(ConfigError, match=r"OPENMANUS_ENV=stagign: no overlay file .*stagign"):
        load_settings()
    write(isolated_env / "config.dev.toml", "[agent]\nmax_step = 3\n")
    monkeypatch.setenv("OPENMANUS_ENV", "dev")
    with pytest.raises(ConfigError, match=r"config\.dev\.toml: agent\.max_step: unknown key"):
        load_settings()
    monkeypatch.setenv("OPENMANUS_ENV", "../x")
    with pytest.raises(ConfigError, match="not an environment name"):
        load_settings()


def test_config_path_and_show_name_the_files(isolated_env: Path) -> None:
    write(isolated_env / "config.toml", '[approval]\nmode = "ask"\n')
    write(isolated_env / "config.dev.toml", '[approval]\nmode = "yolo"\n')
    env = {"OPENMANUS_ENV": "dev"}
    out = cli("config", "path", env=env)
    assert out.returncode == 0, out.stderr
    assert f"config file: {isolated_env / 'config.toml'}" in out.stdout
    assert f"overlay (OPENMANUS_ENV=dev): {isolated_env / 'config.dev.toml'}" in out.stdout
    shown = cli("config", "show", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert '"mode": "yolo"' in shown.stdout
    assert str(isolated_env / "config.dev.toml") in cli("config", "show", env=env).stdout


def test_overlay_file_is_state_the_sandbox_cannot_reach(isolated_env: Path, monkeypatch) -> None:
    from openmanus_tui.sandbox.state_guard import program_state

    write(isolated_env / "config.dev.toml", "")
    monkeypatch.setenv("OPENMANUS_ENV", "dev")
    items = {(i.path, i.label) for i in program_state(load_settings())}
    assert ((isolated_env / "config.dev.toml").resolve(), "config overlay file") in items


# ---- hot reload in the core -------------------------------------------------------------------
async def open_runtime() -> Runtime:
    return await Runtime.open(load_settings())


async def test_reload_applies_a_valid_change_and_refuses_an_invalid_one(isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    write(config, '[approval]\nmode = "auto"\n')
    seen: list[ReloadResult] = []
    async with await open_runtime() as runtime:
        first = runtime.config_version
        assert first is not None
        reloader = ConfigReloader(runtime, on_result=seen.append)
        await reloader.start()

        write(config, '[approval]\nmode = "ask"\n[agent]\nmax_steps = 5\n')
        result = await reloader.reload()
        assert result.applied and result.error is None
        assert sorted(result.changed) == ["agent.max_steps", "approval.mode"]
        assert runtime.settings.approval.mode == "ask" and runtime.settings.agent.max_steps == 5
        assert runtime.config_version == result.version and result.version > first
        assert reloader.paths() == [config]

        # Invalid: the same line `config validate` prints, and nothing changes.
        write(config, '[approval]\nmode = "sometimes"\n')
        validate = await asyncio.to_thread(cli, "config", "validate")
        assert validate.returncode == 2
        refused = await reloader.reload()
        assert not refused.applied
        assert f"openmanus: {refused.error}" == validate.stderr.splitlines()[0]
        assert runtime.settings.approval.mode == "ask"
        assert runtime.config_version == result.version
        assert seen == [result, refused]


async def test_reload_follows_the_overlay_and_tells_listeners(
    isolated_env: Path, monkeypatch
) -> None:
    overlay = isolated_env / "config.prod.toml"
    write(overlay, "[agent]\nmax_steps = 4\n")
    monkeypatch.setenv("OPENMANUS_ENV", "prod")
    async with await open_runtime() as runtime:
        told: list[tuple[int, int]] = []
        runtime.settings_listeners.append(
            lambda old, new: told.append((old.agent.max_steps, new.agent.max_steps))
        )
        reloader = ConfigReloader(runtime)
        assert reloader.paths() == [isolated_env / "config.toml", overlay]
        await reloader.start()
        write(overlay, "[agent]\nmax_steps = 6\n")
        assert (await reloader.reload()).changed == ["agent.max_steps"]
        assert told == [(4, 6)]
        versions = await list_versions(runtime.db)
        assert versions[-1].content["env"] == "prod"
        assert set(versions[-1].content["files"]) == {str(isolated_env / "config.toml"),
                                                      str(overlay)}


async def test_reload_keeps_changes_made_while_running(isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    write(config, '[approval]\nmode = "auto"\n[agent]\nmax_steps = 10\n')
    async with await open_runtime() as runtime:
        reloader = ConfigReloader(runtime)
        await reloader.start()
        runtime.settings.approval.mode = "yolo"  # what /approval does in the workbench
        write(config, '[approval]\nmode = "auto"\n[agent]\nmax_steps = 11\n')
        result = await reloader.reload()
        assert result.changed == ["agent.max_steps"]
        assert runtime.settings.approval.mode == "yolo"  # the file did not change it
        write(config, '[approval]\nmode = "ask"\n[agent]\nmax_steps = 11\n')
        await reloader.reload()
        assert runtime.settings.approval.mode == "ask"  # the file's change wins
        # A start-only setting is named, not applied: the database stays where it is.
        write(config, '[approval]\nmode = "ask"\n[storage]\nkeep_last = 5\n')
        result = await reloader.reload()
        assert result.restart == ["storage.keep_last"]
        assert runtime.settings.storage.keep_last is None


async def test_a_reloaded_model_and_sandbox_reach_the_next_run(isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    write(config, '[model]\nprovider = "scripted"\nname = "demo"\n')
    async with await open_runtime() as runtime:
        session = await runtime.create_session()
        box = session.sandbox()
        reloader = ConfigReloader(runtime)
        await reloader.start()
        write(config, '[model]\nprovider = "scripted"\nname = "demo"\n'
                      "[sandbox]\noutput_cap_kb = 8\n")
        result = await reloader.reload()
        assert result.changed == ["sandbox.output_cap_kb"]
        assert session.sandbox() is box  # until the next run starts
        events: list[ev.Event] = []
        await session.run("hello", on_event=events.append)
        rebuilt = session.sandbox()
        assert rebuilt is not box and rebuilt.limits.output_cap_bytes == 8 * 1024
        started = next(e for e in events if isinstance(e, ev.RunStarted))
        assert started.config_version == result.version


async def test_watcher_applies_an_edit(isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    write(config, '[approval]\nmode = "auto"\n')
    async with await open_runtime() as runtime:
        applied = asyncio.Event()
        reloader = ConfigReloader(runtime, on_result=lambda r: applied.set())
        task = asyncio.create_task(reloader.watch())
        await reloader.watching.wait()
        tmp = config.with_name("config.toml.new")
        write(tmp, '[approval]\nmode = "ask"\n')
        tmp.replace(config)  # how editors save: a rename over the file
        await asyncio.wait_for(applied.wait(), timeout=20)
        assert runtime.settings.approval.mode == "ask"
        reloader.stop()
        await asyncio.wait_for(task, timeout=10)


# ---- the workbench ------------------------------------------------------------------------------
def notes(app: OpenManusApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_workbench_follows_the_config_file(isolated_env: Path) -> None:
    """Editing the file while the workbench runs changes the approval mode on screen; an
    invalid value is refused with validate's line and the running mode stays."""
    config = isolated_env / "config.toml"
    write(config, '[approval]\nmode = "auto"\n')
    app = OpenManusApp(blink=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await app.ready.wait()
        await wait_for(pilot, lambda: app.config_reloader is not None
                       and app.config_reloader.watching.is_set())
        assert "approval auto" in screen_text(app)
        write(config, '[approval]\nmode = "ask"\n')
        await wait_for(pilot, lambda: app.status.approval == "ask", timeout=20)
        await wait_for(pilot, lambda: "approval ask" in screen_text(app))
        await wait_for(pilot, lambda: any("Configuration reloaded" in n for n in notes(app)))
        assert any("approval.mode" in n for n in notes(app))

        app.clear_notifications()
        write(config, '[approval]\nmode = "never"\n')
        await wait_for(pilot, lambda: any("refused" in n for n in notes(app)), timeout=20)
        validate = await asyncio.to_thread(cli, "config", "validate")
        line = validate.stderr.splitlines()[0].removeprefix("openmanus: ")
        assert any(line in n for n in notes(app)), notes(app)
        assert app.runtime.settings.approval.mode == "ask"
        assert app.status.approval == "ask"


# ---- versions, diff, rollback -------------------------------------------------------------------
async def test_history_diff_and_rollback(isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    first_text = (
        '# mine\n[approval]\nmode = "auto"   # the default\n'
        '[model]\napi_key = "sk-first-plain-key-1234"\n'
    )
    write(config, first_text)
    async with await open_runtime() as runtime:
        v1 = runtime.config_version
        reloader = ConfigReloader(runtime)
        await reloader.start()
        write(config, '[approval]\nmode = "ask"\n[model]\napi_key = "sk-second-plain-key-99"\n')
        v2 = (await reloader.reload()).version
        versions = await list_versions(runtime.db)
        assert [v.id for v in versions] == [v1, v2]
        assert [v.source for v in versions] == ["start", "reload"]
        stored = versions[0].content["files"][str(config)]
        assert "sk-first" not in stored and 'api_key = "****"' in stored and "# mine" in stored
        diff = describe_diff(versions[0], versions[1])
        assert 'approval.mode: "auto" → "ask"' in diff
        assert "sk-" not in diff
        assert '-mode = "auto"   # the default' in diff and '+mode = "ask"' in diff

        result = await rollback(runtime.db, runtime.settings, v1)
        text = config.read_text()
        # The first version's text, its masked key taken from the file as it is now.
        assert text == first_text.replace("sk-first-plain-key-1234", "sk-second-plain-key-99")
        assert len(result.backups) == 1 and "mode = \"ask\"" in result.backups[0].read_text()
        assert result.backups[0].parent == isolated_env / "data" / "config-backups"
        assert result.new_version is not None and result.new_version > v2
        latest = await get_version(runtime.db, result.new_version)
        assert latest.source == f"rollback {v1}" and latest.hash == versions[0].hash


def test_rollback_refuses_a_masked_secret_it_cannot_restore(isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    write(config, '[model]\napi_key = "sk-plain-key-abcdef"\n')

    async def go() -> None:
        async with await open_runtime() as runtime:
            v1 = runtime.config_version
            write(config, '[approval]\nmode = "ask"\n')
            await ConfigReloader(runtime).reload()
            with pytest.raises(ConfigError, match=r"model\.api_key held a plain-text secret"):
                await rollback(runtime.db, runtime.settings, v1)
            with pytest.raises(ConfigError, match="no configuration version 99"):
                await rollback(runtime.db, runtime.settings, 99)

    asyncio.run(go())
    assert config.read_text() == '[approval]\nmode = "ask"\n'  # nothing written


async def test_config_database_reads_versions_without_a_runtime(isolated_env: Path) -> None:
    async with await open_runtime() as runtime:
        version = runtime.config_version
    async with config_database(load_settings()) as db:
        assert [v.id for v in await list_versions(db)] == [version]


def test_cli_history_diff_rollback(isolated_env: Path) -> None:
    """The issue's walk-through from the command line: two configurations applied (each
    command that opens the runtime records the one in force), listed, compared, the first
    restored."""
    config = isolated_env / "config.toml"
    first = '[approval]\nmode = "auto"\n[model]\nbase_url = "http://me:pa55word-x@127.0.0.1:9/v1"\n'
    write(config, first)
    assert cli("sessions", "list").returncode == 0
    write(config, '[approval]\nmode = "ask"\n')
    assert cli("sessions", "list").returncode == 0
    assert cli("sessions", "list").returncode == 0  # the same configuration: no new version

    history = cli("config", "history")
    assert history.returncode == 0, history.stderr
    rows = [line.split() for line in history.stdout.splitlines()[1:]]
    assert [(r[0], r[3]) for r in rows] == [("1", "start"), ("2", "start")]
    assert "pa55word" not in history.stdout + cli("config", "history", "--json").stdout

    diff = cli("config", "diff", "1", "2")
    assert diff.returncode == 0
    assert 'approval.mode: "auto" → "ask"' in diff.stdout
    assert "http://me:****@127.0.0.1:9/v1" in diff.stdout and "pa55word" not in diff.stdout

    # The password was masked in the history and the file has none now: refused, unchanged.
    refused = cli("config", "rollback", "1")
    assert refused.returncode == 2
    assert "model.base_url held a plain-text secret" in refused.stderr
    assert config.read_text() == '[approval]\nmode = "ask"\n'

    write(config, '[approval]\nmode = "ask"\n'
                  '[model]\nbase_url = "http://me:pa55word-x@127.0.0.1:9/v1"\n')
    done = cli("config", "rollback", "1")
    assert done.returncode == 0, done.stderr
    assert config.read_text() == first
    assert "config-backups" in done.stdout
    latest = cli("config", "history").stdout.splitlines()[-1].split()
    assert latest[3:5] == ["rollback", "1"]
    missing = cli("config", "rollback", "42")
    assert missing.stderr.startswith("openmanus: no configuration version 42")
    shown = cli("config", "show").stdout
    assert "pa55word" not in shown and "me:****@" in shown


def test_masking_keeps_the_file_and_hides_every_secret() -> None:
    from openmanus_tui.config_snapshot import mask_toml, restore_text

    text = (
        "# my settings\n"
        "[model]\n"
        'api_key = "sk-plain-secret-1"  # to move\n'
        'base_url = "https://u:pw-secret-2@example.test/v1"\n'
        "[memory]\n"
        'embeddings_api_key = "secret:embed"\n'
        "[mcp.servers.gh]\n"
        'command = "gh-mcp"\n'
        'env = { GH_TOKEN = "tok-secret-3", LEVEL = "debug" }\n'
        'headers = { Authorization = "Bearer hdr-secret-4" }\n'
    )
    masked = mask_toml(text)
    for secret in ("sk-plain-secret-1", "pw-secret-2", "tok-secret-3", "hdr-secret-4"):
        assert secret not in masked
    assert "# my settings" in masked and "# to move" in masked
    assert 'embeddings_api_key = "secret:embed"' in masked  # a name, kept
    assert 'LEVEL = "****"' in masked  # every env value of an MCP server: they carry tokens
    assert 'command = "gh-mcp"' in masked
    # Written back over the current file, the values come back from it.
    assert restore_text(masked, text, "config.toml", 1) == text
