"""The guards of issue 12 one by one: the git check, the state rules, the file tools' refusal,
MCP trust from the command line, and what ``doctor`` says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openmanus_tui.sandbox import Sandbox, git_guard
from openmanus_tui.sandbox.state_guard import (
    StateItem,
    WorkspaceRefused,
    check_workspace,
    mask_plan,
)

GIT_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": "/dev/null"}


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=GIT_ENV, timeout=30)


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    path = tmp_path / "marks"
    path.mkdir()
    return path


def plant(repo: Path, marks: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {marks}/hook\n")
    hook.chmod(0o755)
    git(repo, "config", "core.fsmonitor", f"touch {marks}/fsmonitor")
    git(repo, "config", "alias.st", f"!touch {marks}/alias")
    (repo / "extra.cfg").write_text(f"[core]\n\tpager = touch {marks}/pager\n")
    git(repo, "config", "include.path", "../extra.cfg")


def run_everything(repo: Path) -> None:
    git(repo, "status")
    git(repo, "st")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "--allow-empty", "-qm", "x")
    subprocess.run(["git", "-C", str(repo), "log"], env={**GIT_ENV, "GIT_PAGER": ""},
                   capture_output=True, timeout=30)


def test_git_guard_neutralises_what_a_command_planted(tmp_path: Path, marks: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    git(ws, "init", "-q")
    own_hook = ws / ".git" / "hooks" / "post-merge"
    own_hook.write_text("#!/bin/sh\necho mine\n")  # the person's own: left alone
    guard = git_guard.GitGuard(ws, tmp_path / "data")
    assert guard.before() == []
    plant(ws, marks)
    (ws / "sub").mkdir()
    git(ws / "sub", "init", "-q")
    plant(ws / "sub", marks)
    found = guard.after()
    text = git_guard.summary(found)
    assert "hook pre-commit" in text and "core.fsmonitor" in text and "alias.st" in text
    assert "new repository" in text and "core.pager" in text
    run_everything(ws)
    run_everything(ws / "sub")
    assert sorted(p.name for p in marks.iterdir()) == []
    assert own_hook.exists()
    assert (ws / ".git" / "hooks" / ("pre-commit" + git_guard.DISABLED_SUFFIX)).exists()
    assert guard.after() == []  # neutralised once, quiet afterwards


def test_git_guard_person_changes_between_runs_are_left(tmp_path: Path, marks: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    git(ws, "init", "-q")
    git_guard.GitGuard(ws, tmp_path / "data").before()  # an earlier run's record
    hook = ws / ".git" / "hooks" / "pre-push"
    hook.write_text("#!/bin/sh\necho person\n")  # the person installs a hook between runs
    guard = git_guard.GitGuard(ws, tmp_path / "data")  # a new process
    found = guard.before()
    assert [f.action for f in found] == [
        "changed since the last run, not by a command seen here; left in place"
    ]
    assert hook.exists()
    # later in the same process only our commands ran: a change is neutralised
    plant(ws, marks)
    assert any("fsmonitor" in f.what for f in guard.before())
    run_everything(ws)
    assert list(marks.iterdir()) == []


def test_git_guard_approve_keeps_a_change(tmp_path: Path, marks: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    git(ws, "init", "-q")
    guard = git_guard.GitGuard(ws, tmp_path / "data")
    guard.before()
    git(ws, "config", "core.editor", "vim")
    guard.approve()
    assert guard.after() == []
    assert git(ws, "config", "core.editor").stdout.strip() == "vim"


def test_git_guard_symlinked_git_and_bare_repo(tmp_path: Path, marks: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    guard = git_guard.GitGuard(ws, tmp_path / "data")
    guard.before()
    (ws / "real").mkdir()
    git(ws / "real", "init", "-q")
    os.rename(ws / "real" / ".git", ws / "hidden")  # HEAD, objects, refs: git uses it
    (ws / "proj").mkdir()
    os.symlink("../hidden", ws / "proj" / ".git")
    git(ws / "hidden", "config", "core.fsmonitor", f"touch {marks}/fsmonitor")
    found = guard.after()
    assert any("fsmonitor" in f.what for f in found)
    assert any(".git symlink" in f.what for f in found)
    git(ws / "proj", "status")
    git(ws / "hidden", "status")
    assert list(marks.iterdir()) == []


STATE = [
    StateItem(Path("/home/u/.config/openmanus"), "config folder", True),
    StateItem(Path("/home/u/.local/share/openmanus"), "data folder", True),
    StateItem(Path("/home/u/.local/share/openmanus/openmanus.db"), "database", True),
    StateItem(Path("/home/u/proj/conf/openmanus.toml"), "config file", False),
]


@pytest.mark.parametrize(
    ("workspace", "outcome"),
    [
        ("/home/u", "contains openmanus's config folder"),
        ("/", "contains openmanus's config folder"),
        ("/home/u/.local/share/openmanus", "is openmanus's data folder"),
        ("/home/u/.local/share/openmanus/snapshots", "is inside openmanus's data folder"),
        ("/home/u/.config/openmanus/sub", "is inside openmanus's config folder"),
        ("/home/u/.local/share/openmanus/workspaces/s1", "ok"),
        ("/home/u/proj", "masked"),
        ("/home/u/proj/conf/openmanus.toml", "is openmanus's config file"),
        ("/srv/other", "ok"),
    ],
)
def test_state_rules(workspace: str, outcome: str) -> None:
    if outcome in ("ok", "masked"):
        masked = check_workspace(Path(workspace), STATE)
        assert bool(masked) is (outcome == "masked")
        if masked:
            assert mask_plan(Path(workspace), masked) == [
                ("conf", "pin"), ("conf/openmanus.toml", "mask")
            ]
        return
    with pytest.raises(WorkspaceRefused, match=outcome):
        check_workspace(Path(workspace), STATE)


def test_state_file_needs_mounts() -> None:
    with pytest.raises(WorkspaceRefused, match="cannot hide"):
        check_workspace(Path("/home/u/proj"), STATE, can_mask=False)


def test_sandbox_refuses_the_data_folder(isolated_env: Path) -> None:
    with pytest.raises(WorkspaceRefused, match="data folder"):
        Sandbox(isolated_env / "data")
    with pytest.raises(WorkspaceRefused, match="contains openmanus's data folder"):
        Sandbox(isolated_env)  # above the data folder


async def test_file_tools_refuse_state_inside_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openmanus_tui.tools.base import ToolContext, run_tool
    from openmanus_tui.tools.file_tools import file_tools

    ws = tmp_path / "ws"
    (ws / "conf").mkdir(parents=True)
    config = ws / "conf" / "openmanus.toml"
    config.write_text('[agent]\nsystem_prompt = "canary"\n')
    monkeypatch.setenv("OPENMANUS_CONFIG", str(config))
    os.symlink("conf", ws / "link")
    tools = {t.name: t for t in file_tools()}
    ctx = ToolContext(workspace=ws)
    for name, args in [
        ("file_read", {"path": "conf/openmanus.toml"}),
        ("file_read", {"path": "link/openmanus.toml"}),
        ("file_write", {"path": "conf/openmanus.toml", "content": "x"}),
        ("file_write", {"path": "link/openmanus.toml", "content": "x"}),
        ("file_edit", {"path": "conf/openmanus.toml", "old_text": "canary", "new_text": "x"}),
    ]:
        res = await run_tool(tools[name], ctx, args)
        assert res.status == "error" and "openmanus's own" in res.content, (name, res.content)
    assert "canary" in config.read_text()
    ok = await run_tool(tools["file_write"], ctx, {"path": "conf/notes.md", "content": "fine"})
    assert ok.status == "ok"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "openmanus_tui", *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ), input="")


def test_mcp_trust_from_the_command_line(isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    config.write_text('[mcp.servers.tool]\ncommand = "python3"\nargs = ["server.py"]\n')
    listing = json.loads(_cli("mcp", "list", "--json").stdout)
    assert listing[0]["trusted"] == "no" and listing[0]["runs"] == "sandbox"
    out = _cli("mcp", "trust", "tool")
    assert out.returncode == 0 and "sha256" in out.stdout and "python3 server.py" in out.stdout
    assert json.loads(_cli("mcp", "list", "--json").stdout)[0]["trusted"] == "yes"
    config.write_text(
        '[mcp.servers.tool]\ncommand = "python3"\nargs = ["other.py"]\nsandbox = false\n'
    )
    row = json.loads(_cli("mcp", "list", "--json").stdout)[0]
    assert row["trusted"] == "changed since trusted" and row["runs"].startswith("HOST")
    doctor = _cli("doctor")
    assert "runs on the host" in doctor.stdout and "openmanus mcp trust tool" in doctor.stdout
    bad = _cli("mcp", "trust", "nope")
    assert bad.returncode == 2 and "no MCP server named 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_doctor_says_which_level_protects_what() -> None:
    out = _cli("doctor", "--json")
    rows: list[dict[str, Any]] = json.loads(out.stdout)["protection"]
    assert [r["level"] for r in rows] == ["L3", "L2", "L1", "L0"]
    for row in rows:
        if row["available"] == "yes":
            assert row["git"] and row["state"] and row["mcp"] and row["ownership"]
    text = _cli("doctor").stdout
    assert "Protection by level" in text and "file ownership" in text


async def test_resume_and_validate_refuse_a_state_holding_workspace(isolated_env: Path) -> None:
    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime.session import Runtime

    # a session stored before the rule, with the folder holding config and data as workspace
    runtime = await Runtime.open(load_settings())
    try:
        session = await runtime.create_session(workspace=isolated_env)
    finally:
        await runtime.close()
    res = _cli("resume", session.id)
    assert res.returncode == 2, res.stderr
    assert "contains openmanus's data folder" in res.stderr and "Traceback" not in res.stderr
    (isolated_env / "config.toml").write_text(f'[sandbox]\nworkspace = "{isolated_env}"\n')
    res = _cli("config", "validate")
    assert res.returncode == 2 and "contains openmanus's" in res.stderr


@pytest.mark.parametrize("level", ["L1", "L0"])
async def test_sandboxed_mcp_server_survives_the_commands(
    tmp_path: Path, attacker: Any, inspect_events: Any, level: str
) -> None:
    """Below L2 every leftover process of the sandbox uid is killed after a command; a
    sandboxed MCP server must not be one of them."""
    from openmanus_tui.config import load_settings
    from openmanus_tui.sandbox import IsolationLevel, probe
    from openmanus_tui.tools.mcp_trust import TrustStore
    from openmanus_tui.utilities.mcp_config import parse_mcp_config

    if not probe().available(IsolationLevel.parse(level)):
        pytest.skip(f"{level} not available")
    ws = tmp_path / "ws"
    ws.mkdir()
    echo = Path(__file__).resolve().parent.parent / "mcp_echo_server.py"
    (ws / "echo.py").write_text(echo.read_text())
    servers = {"echo": {"command": sys.executable, "args": ["echo.py"]}}
    TrustStore(load_settings().resolved_data_dir).trust(
        parse_mcp_config({"mcpServers": servers})["echo"]
    )
    events = await attacker(IsolationLevel.parse(level), ws, [
        [("mcp__echo__echo", {"text": "one"})],
        [("shell_exec", {"command": "sleep 60 >/dev/null 2>&1 & echo started"})],
        [("mcp__echo__echo", {"text": "two"})],
    ], mcp={"servers": servers})
    results = inspect_events.results(events)
    assert [r.status for r in results] == ["ok", "ok", "ok"], inspect_events.dump(events)
    assert results[2].result == "two"


async def test_without_root_l3_masks_and_protects_through_bwrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without root there is no helper namespace: L3 must do the masks, pins and read-only
    .git binds with bubblewrap's own arguments (simulated: the sandbox believes it is uid
    1000, so it takes that path; the probe was made for real)."""
    from openmanus_tui.sandbox import IsolationLevel, probe
    from openmanus_tui.sandbox import core as sandbox_core

    if not probe().available(IsolationLevel.L3):
        pytest.skip("L3 not available")
    ws = tmp_path / "ws"
    (ws / "conf").mkdir(parents=True)
    config = ws / "conf" / "openmanus.toml"
    config.write_text("canary=1\n")
    (ws / "repo").mkdir()
    git(ws / "repo", "init", "-q")
    monkeypatch.setattr(sandbox_core.os, "geteuid", lambda: 1000)
    sb = Sandbox(ws, level="L3", state=[StateItem(config, "config file", False)])
    try:
        res = await sb.exec(
            "cat conf/openmanus.toml; echo x > conf/openmanus.toml; mv conf c2; "
            "mv repo/.git repo/g; touch repo/.git/hooks/x; git init -q new; echo done",
            timeout=20,
        )
        assert "done" in res.stdout and "canary" not in res.stdout
        res2 = await sb.exec("touch new/.git/hooks/x; mv new/.git new/g; echo done", timeout=20)
    finally:
        sb.close()
    assert config.read_text() == "canary=1\n"
    assert (ws / "conf").is_dir() and (ws / "repo" / ".git").is_dir()
    assert not (ws / "repo" / ".git" / "hooks" / "x").exists()
    assert "done" in res2.stdout and not (ws / "new" / ".git" / "hooks" / "x").exists()
    assert (ws / "new" / ".git").is_dir()


def test_ownership_journal_survives_a_crash(tmp_path: Path) -> None:
    """The fallback hands files over per command; a process that dies before giving them
    back leaves a journal the next sandbox gives back from."""
    if os.geteuid() != 0:
        pytest.skip("only root hands files to another uid")
    from openmanus_tui.sandbox.ownership import OwnershipLedger

    ws = tmp_path / "ws"
    (ws / "d").mkdir(parents=True)
    (ws / "d" / "f").write_text("x")
    os.chown(ws / "d" / "f", 1234, 1234)  # a file of another owner is restored as it was
    journal = tmp_path / "data" / "ownership" / "j.json"
    ledger = OwnershipLedger(ws, 59999, 59999, journal)
    ledger.hand_over()
    assert os.stat(ws / "d" / "f").st_uid == 59999 and journal.exists()
    (ws / "new").write_text("made by the command")
    os.chown(ws / "new", 59999, 59999)
    del ledger  # the process dies here
    again = OwnershipLedger(ws, 59999, 59999, journal)
    assert again.recovered and not journal.exists()
    assert os.stat(ws / "d" / "f").st_uid == 1234
    assert os.stat(ws / "d").st_uid == 0 and os.stat(ws / "new").st_uid == 0


async def test_runtime_uses_its_own_settings_for_the_state(
    tmp_path: Path, attacker: Any, inspect_events: Any
) -> None:
    """A data folder set in the settings (not the environment) is kept out of reach too."""
    from openmanus_tui.sandbox import probe

    ws = tmp_path / "proj"
    state = ws / "state"
    events = await attacker(probe().level, ws, [[("shell_exec", {"command": "echo hi > x"})]],
                            data_dir=str(state))
    result = inspect_events.results(events)[0]
    assert result.status == "error" and "contains openmanus's data folder" in result.result
    assert not (ws / "x").exists()
