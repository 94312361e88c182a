"""The ``openmanus`` command as a user runs it: the offline demo, sessions, doctor, and the
rule that the core never loads Textual."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli, json_events, run_cli

from openmanus_tui import __version__


def test_demo_end_to_end_json(isolated_env: Path) -> None:
    result = cli("run", "show me what you can do", "--json", "--approval", "yolo")
    assert result.returncode == 0, result.stderr
    events = json_events(result.stdout)
    types = [e["type"] for e in events]
    assert types[0] == "notice" and "offline demo model" in events[0]["text"]
    assert types[1] == "run_started" and events[1]["model"] == "scripted:demo"
    calls = [e["tool"] for e in events if e["type"] == "tool_call"]
    assert calls == ["list_files", "file_write", "file_read", "shell_exec"]
    finished = [e for e in events if e["type"] == "tool_finished"]
    assert [e["status"] for e in finished] == ["ok"] * 4
    shell = finished[-1]
    assert "count=10 mean=3.90 median=3.5" in shell["result"]
    assert shell["isolation"] in ("L0", "L1", "L2", "L3")
    live = [e["text"] for e in events if e["type"] == "tool_output"]
    assert "count=10 mean=3.90 median=3.5" in live  # streamed while it ran
    final = [e for e in events if e["type"] == "final_answer"]
    assert len(final) == 1 and "count=10 mean=3.90" in final[0]["text"]
    assert "<tool_output" not in final[0]["text"]  # the demo quotes the result, not its wrapper
    assert types[-1] == "run_finished" and events[-1]["status"] == "completed"
    session_id = events[-1]["session_id"]
    workspace = isolated_env / "data" / "workspaces" / session_id
    assert (workspace / "stats.py").exists()

    listed = cli("sessions", "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["id"] for r in rows] == [session_id] and rows[0]["status"] == "completed"

    shown = cli("sessions", "show", session_id[:15], "--json")
    stored = json_events(shown.stdout)
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    assert [e for e in events if e["type"] not in ("thought_delta", "tool_output")] == stored

    text = cli("sessions", "show", session_id)
    assert text.returncode == 0 and "show me what you can do" in text.stdout
    assert "shell_exec" in text.stdout

    again = cli("resume", session_id)
    assert again.returncode == 0 and "nothing to resume" in again.stdout


def test_demo_without_terminal_pauses_for_approval() -> None:
    """No terminal: the run pauses at the first call that needs a person (exit 4, the call kept
    pending for a resume at a terminal) instead of denying it and finishing as completed."""
    result = run_cli("run", "demo please")  # default approval mode: auto
    assert result.returncode == 4, result.stderr
    assert "Paused" in result.stdout and "openmanus resume" in result.stdout
    shown = run_cli("sessions", "list", "--json")
    row = json.loads(shown.stdout.splitlines()[0])
    assert row["status"] == "awaiting_approval"
    stored = json_events(run_cli("sessions", "show", row["id"], "--json").stdout)
    statuses = {e["tool"]: e["status"] for e in stored if e["type"] == "tool_finished"}
    # The read ran by itself; the write waits, asked but neither run nor denied.
    assert statuses == {"list_files": "ok"}
    asked = [c["tool"] for e in stored if e["type"] == "approval_requested" for c in e["calls"]]
    assert asked == ["file_write"]
    again = run_cli("resume", row["id"])
    assert again.returncode == 4 and "Paused" in again.stdout


def test_sessions_rm_and_unknown_ids() -> None:
    assert cli("run", "hi", "--approval", "yolo").returncode == 0
    session_id = json.loads(cli("sessions", "list", "--json").stdout.splitlines()[0])["id"]
    missing = cli("sessions", "show", "nope-nope")
    assert missing.returncode == 2 and "no session matches 'nope-nope'" in missing.stderr
    assert "Traceback" not in missing.stderr
    removed = run_cli("sessions", "rm", session_id)
    assert removed.returncode == 0 and "deleted session" in removed.stdout
    assert cli("sessions", "list", "--json").stdout.strip() == ""
    assert cli("resume", session_id).returncode == 2


def test_version_help_and_doctor() -> None:
    assert run_cli("--version").stdout.strip() == f"openmanus {__version__}"
    doctor = cli("doctor", "--json")
    assert doctor.returncode == 0
    data = json.loads(doctor.stdout)
    assert data["sandbox"]["level"] in ("L0", "L1", "L2", "L3")
    assert data["model"]["spec"] == "scripted:demo" and data["model"]["offline_reason"]
    text = run_cli("doctor")
    assert text.returncode == 0 and "L" in text.stdout and "scripted:demo" in text.stdout


def test_each_commands_help_names_the_command() -> None:
    """``openmanus run --help`` starts "usage: openmanus run …", not with the top level's
    whole usage line; a mistake names the command once."""
    from openmanus_tui.cli.core import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert {"run", "sessions", "write", "research"} <= set(commands)
    for name, parser in commands.items():
        shown = cli(name, "--help")
        assert shown.returncode == 0, (name, shown.stderr)
        first = shown.stdout.splitlines()[0]
        assert first.startswith(f"usage: openmanus {name} ") and "[TASK]" not in first, first
        actions = [a for a in parser._actions if a.dest == "action"]
        for action in actions[0].choices if actions else ():
            nested = cli(name, action, "--help")
            first = nested.stdout.splitlines()[0]
            assert first.startswith(f"usage: openmanus {name} {action} "), first
    wrong = cli("sessions", "bogus")
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1].startswith("openmanus: sessions: argument")


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox id is chosen only when run as root")
def test_the_sandbox_id_is_taken_from_the_environment() -> None:
    """Two openmanus processes as root each need an id of their own (the sweep after a command
    below L2 kills every process of the id): the process takes it from its environment."""
    named = run_cli("doctor", env={"OPENMANUS_SANDBOX_ID": "61234"})
    assert named.returncode == 0, named.stderr
    assert "commands run as uid 61234 (unprivileged)" in named.stdout
    for bad in ("abc", "1000"):
        wrong = run_cli("doctor", env={"OPENMANUS_SANDBOX_ID": bad})
        assert "Traceback" not in wrong.stderr
        assert f"OPENMANUS_SANDBOX_ID must be a number from 1001 to 2147483646, not '{bad}'" in (
            wrong.stdout + wrong.stderr
        )


def test_broken_database_file_is_a_clear_error(isolated_env: Path) -> None:
    data = isolated_env / "data"
    data.mkdir()
    (data / "openmanus.db").write_bytes(b"this is not a database" * 100)
    result = cli("sessions", "list")
    assert result.returncode == 2 and "cannot open the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_core_does_not_import_textual() -> None:
    code = (
        "import sys\n"
        "import openmanus_tui.cli, openmanus_tui.runtime.session, openmanus_tui.tools.builtin\n"
        "import openmanus_tui.sandbox, openmanus_tui.store.db, openmanus_tui.agent.graph\n"
        "openmanus_tui.tools.builtin.build_registry()\n"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ask_mode_prompts_on_a_terminal(isolated_env: Path) -> None:
    """Approve, edit and deny typed at a real terminal (a pty) in ask mode."""
    import os
    import pty

    master, slave = pty.openpty()
    workspace = isolated_env / "ws"
    edited = {"path": "stats.py", "content": "print('edited by a person')\n"}
    answers = ["approve", "edit", json.dumps(edited), "approve", "deny", "not today, thanks"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openmanus_tui",
            "run",
            "demo",
            "--approval",
            "ask",
            "--workspace",
            str(workspace),
        ],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    os.close(slave)
    try:
        os.write(master, ("\n".join(answers) + "\n").encode())
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        os.close(master)
    assert proc.returncode == 0, stderr
    assert stderr.count("approve / always / edit / deny >") == 4
    assert "reason for the model" in stderr
    assert (workspace / "stats.py").read_text() == edited["content"]
    # The denial reached the model in the same step: the demo's answer quotes the last result.
    assert "The user denied this call. Reason: not today, thanks" in stdout


def test_output_piped_into_head_ends_quietly(isolated_env: Path) -> None:
    """`openmanus doctor | head -1`: the reader leaves early; no traceback, the SIGPIPE code."""
    script = f"{sys.executable} -m openmanus_tui doctor | head -1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("Sandbox isolation")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 141)  # 0 when doctor wrote everything before head left
