"""A damaged database is found, reported in one line, read read-only, and never written to.

When it is checked: ``Database.open`` runs ``PRAGMA quick_check`` on every open of a file up to
:data:`QUICK_CHECK_MAX_BYTES` = 64 MB (measured: a few milliseconds for a typical database of
a few MB; 0.08 s for 100 MB on an idle machine with a warm cache, 0.25 s on a loaded one), so
start-up stays fast; a larger file is not checked at open, and damage found later
(``sqlite3.DatabaseError``) is reported the same way.
``openmanus db check`` always runs the full ``PRAGMA integrity_check``.

A database that fails the check is opened read-only (``mode=ro``), so SQLite itself refuses any
write; commands that only read (list, show, tree, diff, export) still work on what is readable,
the others stop with one line that says how to recover.

Recovery (``openmanus db recover``) writes a new file and never touches the damaged one: with the
``sqlite3`` command-line tool installed it is SQLite's own ``.recover`` (which also salvages rows
from damaged pages); without it, a Python fallback copies, table by table and row by row, every
row that can still be read.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from openmanus_tui.errors import OpenManusError

QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
_MAX_PROBLEMS = 20
_MAX_ROWID_PROBES = 5_000_000


class DatabaseDamaged(OpenManusError):
    """The database file is damaged; it was not written to. Exit status 1, not a usage error."""

    error_class = "permanent"


def damaged_error(path: Path, detail: str) -> DatabaseDamaged:
    detail = " ".join(detail.split())[:120]
    return DatabaseDamaged(
        f"the database {path} is damaged ({detail}); it was not changed",
        hint=f"see `openmanus db check`; save what is readable with `openmanus db recover -o "
        f"NEW.db` and point storage.path at it (or move {path.name} aside)",
    )


def is_damage(exc: BaseException) -> bool:
    """Whether an exception from sqlite3 means a damaged file (not a lock or a full disk)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    text = str(exc).lower()
    return any(
        key in text
        for key in ("malformed", "not a database", "corrupt", "file is encrypted", "disk image")
    )


def quick_check(conn: sqlite3.Connection, full: bool = False) -> list[str]:
    """The problems SQLite finds (empty: healthy). Unreadable headers count as a problem."""
    pragma = "integrity_check" if full else "quick_check"
    try:
        rows = conn.execute(f"PRAGMA {pragma}({_MAX_PROBLEMS})").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    # One row can hold several lines ("*** in database main ***\nPage 68: …"): one per problem.
    problems = [
        line.strip()
        for r in rows
        for line in str(r[0]).splitlines()
        if line.strip() and not line.startswith("***")
    ]
    return [] if problems == ["ok"] else problems


def should_check_at_open(path: Path) -> bool:
    try:
        return path.stat().st_size <= QUICK_CHECK_MAX_BYTES
    except OSError:
        return False


@dataclass
class CheckReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    tables: dict[str, int | str] = field(default_factory=dict)  # rows, or why unreadable

    @property
    def ok(self) -> bool:
        return not self.problems


def check_file(path: Path) -> CheckReport:
    """``PRAGMA integrity_check`` and a row count per table, read-only."""
    report = CheckReport(path)
    conn = connect_readonly(path)
    try:
        report.problems = quick_check(conn, full=True)
        try:
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        except sqlite3.DatabaseError as exc:
            report.tables["(schema)"] = str(exc)
            names = []
        for name in names:
            try:
                (n,) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()
                report.tables[name] = int(n)
            except sqlite3.DatabaseError as exc:
                report.tables[name] = f"unreadable: {exc}"
    finally:
        conn.close()
    return report


def connect_readonly(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise OpenManusError(f"no database at {path}", error_class="user")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


@dataclass
class RecoverReport:
    source: Path
    target: Path
    method: str  # "sqlite3 .recover" or "python row copy"
    tables: dict[str, int] = field(default_factory=dict)
    lost: dict[str, str] = field(default_factory=dict)
    problems_after: list[str] = field(default_factory=list)


def recover(source: Path, target: Path, *, use_cli: bool | None = None) -> RecoverReport:
    """Copy what is readable of ``source`` into the new file ``target`` (which must not exist).
    ``use_cli`` None: SQLite's ``.recover`` when the ``sqlite3`` tool is installed."""
    if target.exists():
        raise OpenManusError(f"{target} already exists; choose a new file", error_class="user")
    if target.resolve() == source.resolve():
        raise OpenManusError("recover into a new file, not the damaged one", error_class="user")
    if not source.exists():
        raise OpenManusError(f"no database at {source}", error_class="user")
    target.parent.mkdir(parents=True, exist_ok=True)
    cli = shutil.which("sqlite3") if use_cli is not False else None
    report = RecoverReport(source, target, "sqlite3 .recover")
    why_not = _recover_with_cli(cli, source, target) if cli else "the sqlite3 tool is not installed"
    if why_not:
        # Some builds of the tool lack .recover (it needs the sqlite_dbpage table): fall back.
        target.unlink(missing_ok=True)
        report = RecoverReport(source, target, f"python row copy ({why_not})")
        report.lost = _recover_with_python(source, target)
    conn = sqlite3.connect(target)
    try:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall():
            (n,) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            report.tables[name] = int(n)
        # The program's journal mode, so the new file can be used as storage.path at once.
        conn.execute("PRAGMA journal_mode=WAL")
        report.problems_after = quick_check(conn, full=True)
    finally:
        conn.close()
    return report


def _recover_with_cli(cli: str, source: Path, target: Path) -> str:
    """SQLite's ``.recover`` into ``target``; returns why it could not be used ("" if it was)."""
    # -readonly: even the recovery tool cannot write the damaged file.
    dump = subprocess.run(
        [cli, "-readonly", str(source), ".recover --ignore-freelist"],
        capture_output=True, text=True, errors="replace", timeout=600,
    )
    if "sql error" in dump.stderr.lower() or "COMMIT;" not in dump.stdout:
        return f"sqlite3 .recover failed: {' '.join(dump.stderr.split())[:80] or 'no output'}"
    load = subprocess.run(
        [cli, str(target)], input=dump.stdout, capture_output=True, text=True,
        errors="replace", timeout=600,
    )
    if load.returncode != 0:
        return f"loading the recovered rows failed: {' '.join(load.stderr.split())[:80]}"
    return ""


def _recover_with_python(source: Path, target: Path) -> dict[str, str]:
    """Schema first, then every readable row, table by table; returns what could not be read."""
    lost: dict[str, str] = {}
    src = connect_readonly(source)
    dst = sqlite3.connect(target)
    try:
        try:
            schema = src.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                "AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table' DESC"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise OpenManusError(f"the schema itself is unreadable ({exc}); "
                                 "install the sqlite3 tool for .recover") from None
        tables = [(name, sql) for kind, name, sql in schema if kind == "table"]
        # Virtual tables (the FTS index) are created empty and their shadow tables skipped:
        # the program rebuilds the index from the rows it indexes.
        virtual = [n for n, sql in tables if sql.upper().startswith("CREATE VIRTUAL TABLE")]
        for name, sql in tables:
            if name in virtual:
                dst.execute(sql)
        for name, sql in tables:
            if name in virtual or any(name.startswith(f"{v}_") for v in virtual):
                continue
            dst.execute(sql)
            lost_here = _copy_rows(src, dst, name)
            if lost_here:
                lost[name] = lost_here
        for kind, name, sql in schema:
            if kind != "table":
                try:
                    dst.execute(sql)
                except sqlite3.DatabaseError as exc:  # e.g. a unique index over salvaged rows
                    lost[f"{kind} {name}"] = str(exc)
        dst.commit()
    finally:
        src.close()
        dst.close()
    return lost


def _copy_rows(src: sqlite3.Connection, dst: sqlite3.Connection, table: str) -> str:
    """Copy by rowid ranges, stepping over the ranges that cannot be read."""
    quoted = f'"{table}"'
    try:
        cols = [r[1] for r in src.execute(f"PRAGMA table_info({quoted})")]
        marks = ", ".join("?" for _ in cols)
        insert = f"INSERT OR IGNORE INTO {quoted} VALUES ({marks})"
        rows = src.execute(f"SELECT * FROM {quoted}")
        for row in rows:
            dst.execute(insert, row)
        return ""
    except sqlite3.DatabaseError as exc:
        first_error = str(exc)
    # A scan stopped at a damaged page: go on row by row, by rowid, from the other end too.
    try:
        has_rowid = True
        bounds = src.execute(f"SELECT min(rowid), max(rowid) FROM {quoted}").fetchone()
    except sqlite3.DatabaseError:
        has_rowid, bounds = False, (None, None)
    if not has_rowid or bounds[0] is None:
        return first_error
    low, high = bounds
    skipped = 0
    rowid = low
    high = min(high, low + _MAX_ROWID_PROBES)  # sparse rowids: do not probe forever
    while rowid <= high:
        try:
            row = src.execute(f"SELECT * FROM {quoted} WHERE rowid = ?", (rowid,)).fetchone()
            if row is not None:
                dst.execute(insert, row)
        except sqlite3.DatabaseError:
            skipped += 1
        rowid += 1
    return f"{first_error}; {skipped} row(s) unreadable"
