"""The history commands as a user runs them: tree, fork, replay (recorded and live), diff,
export and import (including a ``run --json`` stream), on the offline demo model."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from conftest import cli, json_events, run_cli

YOLO = ("--approval", "yolo")


def tree_of(session_id: str) -> dict[str, Any]:
    result = cli("sessions", "tree", session_id, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def event_count(data_dir: Path, session_id: str) -> int:
    with sqlite3.connect(data_dir / "openmanus.db") as db:
        return db.execute(
            "SELECT COUNT(*) FROM events WHERE session_id = ?", (session_id,)
        ).fetchone()[0]


def test_fork_replay_diff_export_import(isolated_env: Path) -> None:
    first = cli("run", "demo", "--json", *YOLO)
    assert first.returncode == 0, first.stderr
    session_id = json_events(first.stdout)[-1]["session_id"]
    tree = tree_of(session_id)
    assert len(tree["heads"]) == 1
    nodes = {n["checkpoint_id"]: n for n in tree["nodes"]}
    first_tool = next(n for n in tree["nodes"] if n["kind"] == "tool_call")

    # Fork with an edited user message and run it.
    fork = run_cli(
        "fork",
        session_id,
        "--at",
        first_tool["checkpoint_id"][-10:],
        "--message",
        "demo again, differently",
        "--run",
        "--json",
        *YOLO,
    )
    assert fork.returncode == 0, fork.stderr
    assert any(e["type"] == "final_answer" for e in json_events(fork.stdout))
    tree = tree_of(session_id)
    assert len(tree["heads"]) == 2
    labels = [n["label"] for n in tree["nodes"]]
    assert "› demo" in labels and "› demo again, differently" in labels
    main_head = next(iter(nodes[h] for h in tree["heads"] if h in nodes))["checkpoint_id"]
    fork_head = next(h for h in tree["heads"] if h != main_head)
    assert tree["current"] == fork_head

    text_tree = run_cli("sessions", "tree", session_id)
    assert "◆ head" in text_tree.stdout and "← current" in text_tree.stdout

    # Recorded replay re-emits the stored events and stores nothing new.
    data_dir = isolated_env / "data"
    before = event_count(data_dir, session_id)
    replay = cli("replay", session_id, "--branch", main_head, "--json")
    assert replay.returncode == 0, replay.stderr
    replayed = json_events(replay.stdout)
    stored = json_events(cli("sessions", "show", session_id, "--all", "--json").stdout)
    main_inputs = [e["input"] for e in replayed if e["type"] == "run_started"]
    assert main_inputs == ["demo"]
    assert all(e in stored for e in replayed)
    assert event_count(data_dir, session_id) == before

    # Diff of the two branches.
    diff = run_cli("diff", session_id, main_head, fork_head, "--json")
    assert diff.returncode == 0, diff.stderr
    data = json.loads(diff.stdout)
    assert data["only_a"][0]["text"] == "demo"
    assert data["only_b"][0]["text"] == "demo again, differently"

    # Live replay creates a branch.
    live = cli("replay", session_id, "--live", "--json", *YOLO)
    assert live.returncode == 0, live.stderr
    assert len(tree_of(session_id)["heads"]) == 3

    # Export in three formats; JSON comes back as a session that has the same tree.
    out = isolated_env / "export.json"
    assert run_cli("export", session_id, "--format", "json", "-o", str(out)).returncode == 0
    for fmt, marker in (("md", "shell_exec"), ("html", "<html")):
        rendered = cli("export", session_id, "--format", fmt)
        assert rendered.returncode == 0 and marker in rendered.stdout
    imported = run_cli("import", str(out))
    assert imported.returncode == 0, imported.stderr
    new_id = imported.stdout.split()[-1]
    original, copy = tree_of(session_id), tree_of(new_id)
    assert len(copy["heads"]) == len(original["heads"]) == 3
    # Steps that hold no state of their own (graph start, retry markers) are folded away.
    assert sorted(n["label"] for n in copy["nodes"]) == sorted(
        n["label"] for n in original["nodes"] if n["kind"] not in ("start", "retry")
    )
    exported = json.loads(out.read_text())["events"]
    copied = json_events(cli("sessions", "show", new_id, "--all", "--json").stdout)
    keys = ("type", "text", "tool", "args", "result", "status", "decision", "reason", "input")
    strip = [{k: e.get(k) for k in keys} for e in exported if e["type"] != "checkpoint"]
    assert strip == [{k: e.get(k) for k in keys} for e in copied if e["type"] != "checkpoint"]

    # A branch saved as a session of its own.
    saved = run_cli("sessions", "copy", session_id, "--branch", fork_head)
    assert saved.returncode == 0, saved.stderr
    copy_tree = tree_of(saved.stdout.split()[-1])
    assert len(copy_tree["heads"]) == 1
    assert copy_tree["nodes"][0]["label"] == "› demo again, differently"

    # The imported session can be forked and run.
    step = next(n for n in copy["nodes"] if n["kind"] == "tool_call")
    refork = cli("fork", new_id, "--at", step["checkpoint_id"], "--run", "--json", *YOLO)
    assert refork.returncode == 0, refork.stderr
    assert len(tree_of(new_id)["heads"]) == 4


def test_import_a_headless_run_stream(isolated_env: Path) -> None:
    run = cli("run", "demo", "--json", *YOLO)
    stream = isolated_env / "run.jsonl"
    stream.write_text(run.stdout)
    imported = cli("import", str(stream))
    assert imported.returncode == 0, imported.stderr
    new_id = imported.stdout.split()[-1]
    tree = tree_of(new_id)
    assert len(tree["heads"]) == 1 and tree["nodes"][0]["label"] == "› demo"
    resumed = cli("replay", new_id, "--json")
    assert sum(e["type"] == "tool_finished" for e in json_events(resumed.stdout)) == 4


def test_history_command_mistakes(isolated_env: Path) -> None:
    cli("run", "demo", *YOLO)
    session_id = json.loads(cli("sessions", "list", "--json").stdout.splitlines()[0])["id"]
    bad = cli("fork", session_id, "--at", "zzzz")
    assert bad.returncode == 2 and "no checkpoint" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("import", str(isolated_env / "missing.json"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr
    junk = isolated_env / "junk.json"
    junk.write_text("{not json")
    bad = cli("import", str(junk))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_replay_breakpoints_at_a_terminal(isolated_env: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    cli("run", "demo", *YOLO)
    session_id = json.loads(cli("sessions", "list", "--json").stdout.splitlines()[0])["id"]
    # Without a terminal a breakpoint only marks the place: everything is replayed.
    plain = json_events(cli("replay", session_id, "--break", "shell_exec", "--json").stdout)
    assert [e["type"] for e in plain].count("tool_finished") == 4
    # At a terminal it pauses before the shell_exec call; q stops there.
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openmanus_tui",
            "replay",
            session_id,
            "--break",
            "shell_exec",
            "--json",
        ],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    os.close(slave)
    try:
        os.write(master, b"q\n")
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0, stderr
    assert "paused at tool_call" in stderr
    shown = json_events(stdout)
    assert [e["tool"] for e in shown if e["type"] == "tool_call"] == [
        "list_files",
        "file_write",
        "file_read",
    ]
