"""A database with damaged middle pages (issue 12, defect 6).

A real database is made by real runs, then pages in its middle are overwritten. Every command
ends in one line instead of a traceback, none hangs, none writes to the file (its bytes stay the
same), listing still works read-only, ``db check`` reports the damage and ``db recover`` copies
what is readable into a new file that the program can use at once.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from conftest import cli as cli_here
from conftest import json_events, run_cli

from openmanus_tui import cli
from openmanus_tui.store import integrity


def _digest(path: Path) -> str:
    # A missing WAL and an empty one hold the same (nothing).
    return "".join(
        hashlib.sha256(p.read_bytes() if p.exists() else b"").hexdigest()
        for p in (path, path.with_name(path.name + "-wal"))
    )


@pytest.fixture
def damaged(isolated_env: Path) -> tuple[Path, list[str]]:
    # Made in this process: how the sessions were made is not under test, the damage is.
    for i in range(2):
        done = cli_here("run", f"hello {i}", "--json", "--approval", "yolo")
        assert done.returncode == 0, done.stderr
    ids = [e["id"] for e in json_events(cli_here("sessions", "list", "--json").stdout)]
    db = isolated_env / "data" / "openmanus.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = db.stat().st_size
    pages = size // 4096
    assert pages > 30
    with db.open("r+b") as f:  # the middle third of the file: garbage
        for page in range(pages // 3, 2 * pages // 3):
            f.seek(page * 4096)
            f.write(os.urandom(4096))
    return db, ids


def _one_line_failure(done, expect: str = "is damaged") -> None:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and expect in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2


def test_commands_on_a_damaged_database(damaged) -> None:
    db, ids = damaged
    before = _digest(db)
    for argv in (
        ["sessions", "show", ids[1]],
        ["resume", ids[1]],
        ["sessions", "rm", ids[1]],  # used to hang at exit
        ["run", "more work", "--approval", "yolo"],
        ["sessions", "prune", "--keep-last", "1"],
    ):
        _one_line_failure(run_cli(*argv, timeout=60))
        assert _digest(db) == before, argv  # never written to
    listed = run_cli("sessions", "list")
    assert listed.returncode == 0 and ids[0] in listed.stdout

    check = run_cli("db", "check")
    assert check.returncode == 1 and "DAMAGED" in check.stderr and "Traceback" not in check.stderr

    new = db.parent / "recovered.db"
    recovered = run_cli("db", "recover", "-o", str(new))
    assert recovered.returncode == 0, recovered.stderr
    assert "passes the integrity check" in recovered.stdout and _digest(db) == before
    env = {"OPENMANUS_STORAGE__PATH": str(new)}
    assert run_cli("db", "check", env=env).returncode == 0
    assert ids[0] in run_cli("sessions", "list", env=env).stdout
    again = run_cli("run", "after recovery", "--json", "--approval", "yolo", env=env)
    assert again.returncode == 0, again.stderr


def test_python_fallback_recovers_readable_rows(damaged, tmp_path) -> None:
    db, _ids = damaged
    report = integrity.recover(db, tmp_path / "copy.db", use_cli=False)
    assert report.method.startswith("python row copy")
    assert report.tables["sessions"] == 2 and not report.problems_after
    with pytest.raises(Exception, match="already exists"):
        integrity.recover(db, tmp_path / "copy.db")


def test_damage_found_after_open_is_one_line(damaged, monkeypatch, capsys) -> None:
    """A file too big for the check at open: damage found while reading is still one line."""
    db, ids = damaged
    before = _digest(db)
    monkeypatch.setattr(integrity, "QUICK_CHECK_MAX_BYTES", 0)
    monkeypatch.setattr("openmanus_tui.store.db.should_check_at_open", lambda path: False)
    status = cli.main(["sessions", "show", ids[1]])
    err = capsys.readouterr().err
    assert status == 1 and "is damaged" in err and "Traceback" not in err
    assert _digest(db) == before
