"""The SQLite database: LangGraph checkpoints, the sessions table and the append-only events table.

One file, WAL mode, one connection per process shared by the checkpointer and our tables, so
there is exactly one writer (two writers is how "database is locked" happens, langgraph#8136).
Our writes take the checkpointer's lock so they never interleave with one of its transactions.
Every event is committed as it is appended: with WAL and ``synchronous=NORMAL`` a commit is a
cheap WAL append, and a SIGKILL loses nothing that was emitted before it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import WRITES_IDX_MAP, get_checkpoint_metadata
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from openmanus_tui.errors import OpenManusError, SessionNotFound
from openmanus_tui.events import Event, parse_event
from openmanus_tui.store.integrity import quick_check, should_check_at_open

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    profile TEXT NOT NULL DEFAULT 'manus',
    workspace TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'new',
    parent_session TEXT,
    parent_checkpoint TEXT,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    run_id TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT,
    type TEXT NOT NULL,
    call_id TEXT,
    ts REAL NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX IF NOT EXISTS events_by_call ON events(session_id, call_id) WHERE call_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_checkpoint ON events(session_id, checkpoint_id);
CREATE TABLE IF NOT EXISTS snapshots (
    session_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    tree TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (session_id, checkpoint_id)
);
"""


# The session's head follows its branch in the same transaction as each checkpoint: a
# checkpoint written as a child of the head becomes the head. A fork writes a child of another
# checkpoint (and sets the head itself), so it never moves the head by accident; a kill at any
# point leaves the head on the newest durable checkpoint of the branch, where resume continues.
#
# ``EMPTY_HEAD`` is the head of a session taken back to before its first run (the REST API's
# rollback of a thread's first run): its state reads as empty (no checkpoint), and the next
# run's first checkpoint (a new root: no parent) becomes the head. The steps of the run rolled
# back stay in the tree as a branch of their own.
EMPTY_HEAD = "(empty)"
# (The trigger of earlier versions is dropped after the new one exists: no moment without.)
SESSION_HEAD_SQL = f"""
CREATE TRIGGER IF NOT EXISTS session_head_follows_branch_v2 AFTER INSERT ON checkpoints
WHEN NEW.checkpoint_ns = ''
BEGIN
    UPDATE sessions SET head = NEW.checkpoint_id
    WHERE id = NEW.thread_id AND (
        head IS NULL OR head = NEW.parent_checkpoint_id
        OR (head = '{EMPTY_HEAD}' AND NEW.parent_checkpoint_id IS NULL)
    );
END;
DROP TRIGGER IF EXISTS session_head_follows_branch;
"""


async def _migrate(conn: aiosqlite.Connection) -> None:
    """Columns added after the first release, then the head trigger (the checkpoints table
    exists once the saver is set up)."""
    async with conn.execute("PRAGMA table_info(sessions)") as cur:
        columns = {row[1] for row in await cur.fetchall()}
    if "head" not in columns:
        await conn.execute("ALTER TABLE sessions ADD COLUMN head TEXT")
        # Older versions kept a switched-to head in meta.
        await conn.execute(
            "UPDATE sessions SET head = json_extract(meta, '$.head') WHERE json_valid(meta)"
        )
    await conn.executescript(SESSION_HEAD_SQL)
    await conn.commit()


EVENTS_INSERT = (
    "INSERT INTO events (session_id, seq, run_id, checkpoint_id, type, call_id, ts, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The stock saver's statements (langgraph-checkpoint-sqlite's aio.py, kept identical:
# tests/test_store_one_trip.py compares the rows both write).
CHECKPOINT_INSERT = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
WRITES_COLUMNS = (
    "INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, "
    "type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

Statements = list[tuple[str, Sequence[tuple[Any, ...]]]]


def _run_and_commit(conn: sqlite3.Connection, statements: Statements) -> None:
    """In aiosqlite's thread: every statement, then the commit. Each ``await`` of an aiosqlite
    call is a round trip to its thread (~0.1-0.5 ms on a busy machine); an event, a checkpoint
    or a task's writes took two to four of them, now one (bench/step_overhead.py). A failure
    leaves the transaction open, as the separate calls did."""
    for sql, rows in statements:
        if rows:
            conn.executemany(sql, rows)
    conn.commit()


async def commit_in_one_trip(conn: aiosqlite.Connection, statements: Statements) -> None:
    """Run ``statements`` and commit, in one trip to the connection's thread. The caller holds
    the checkpointer's lock (one writer on the shared connection at a time)."""
    await conn._execute(lambda: _run_and_commit(conn._conn, statements))


class _EventAwareSaver(AsyncSqliteSaver):
    """The stock SQLite checkpointer, writing our queued events just before each of its
    own writes so that its commit makes them durable together with the checkpoint.

    A session's "latest checkpoint" is its head (the tip of its current branch), not the
    thread's newest row: LangGraph treats a config naming a ``checkpoint_id`` as time travel
    (a new ``fork`` checkpoint, finished steps re-run, cached resume values dropped), so the
    runtime never names one to continue a branch. It names one only to retry a step."""

    before_write: Any = None
    # The queued events' rows, taken by the next write (set by Database): inserted in the
    # same trip and transaction as the checkpoint or writes that follow them.
    take_events: Callable[[], list[tuple[Any, ...]]] | None = None

    def _events(self) -> Statements:
        rows = self.take_events() if self.take_events is not None else []
        return [(EVENTS_INSERT, rows)] if rows else []

    async def aget_tuple(self, config: Any) -> Any:
        conf = config.get("configurable", {})
        if not conf.get("checkpoint_id") and not conf.get("checkpoint_ns"):
            async with self.lock, self.conn.execute(
                "SELECT head FROM sessions WHERE id = ?", (str(conf.get("thread_id")),)
            ) as cur:
                row = await cur.fetchone()
            if row and row[0] == EMPTY_HEAD:
                return None  # taken back to before the first run: an empty thread
            if row and row[0]:
                config = {
                    **config,
                    "configurable": {**conf, "checkpoint_ns": "", "checkpoint_id": row[0]},
                }
        return await super().aget_tuple(config)

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        """The stock ``aput`` (same row), with the queued events, in one trip."""
        if self.before_write is not None:
            await self.before_write()
        await self.setup()
        conf = config["configurable"]
        thread_id, checkpoint_ns = conf["thread_id"], conf["checkpoint_ns"]
        type_, serialized = self.serde.dumps_typed(checkpoint)
        serialized_metadata = json.dumps(
            get_checkpoint_metadata(config, metadata), ensure_ascii=False
        ).encode("utf-8", "ignore")
        row = (
            str(thread_id), checkpoint_ns, checkpoint["id"], conf.get("checkpoint_id"), type_,
            serialized, serialized_metadata,
        )
        async with self.lock:
            await commit_in_one_trip(self.conn, [*self._events(), (CHECKPOINT_INSERT, [row])])
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self, config: Any, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        """The stock ``aput_writes`` (same rows, same REPLACE / IGNORE choice), with the queued
        events, in one trip."""
        if self.before_write is not None:
            await self.before_write()
        verb = (
            "INSERT OR REPLACE " if all(w[0] in WRITES_IDX_MAP for w in writes)
            else "INSERT OR IGNORE "
        )
        await self.setup()
        conf = config["configurable"]
        rows = [
            (
                str(conf["thread_id"]),
                str(conf["checkpoint_ns"]),
                str(conf["checkpoint_id"]),
                task_id,
                task_path,
                WRITES_IDX_MAP.get(channel, idx),
                channel,
                *self.serde.dumps_typed(value),
            )
            for idx, (channel, value) in enumerate(writes)
        ]
        async with self.lock:
            await commit_in_one_trip(self.conn, [*self._events(), (verb + WRITES_COLUMNS, rows)])


@dataclass
class SessionRecord:
    id: str
    title: str = ""
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    model: str = ""
    profile: str = "manus"
    workspace: str = ""
    status: str = "new"
    parent_session: str | None = None
    parent_checkpoint: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # The tip of the branch the session continues from (see SESSION_HEAD_SQL); None means
    # the thread's newest checkpoint.
    head: str | None = None


_SESSION_COLUMNS = [f for f in SessionRecord.__dataclass_fields__]


def _row_to_session(row: Iterable[Any]) -> SessionRecord:
    data = dict(zip(_SESSION_COLUMNS, row, strict=True))
    data["meta"] = json.loads(data["meta"] or "{}")
    return SessionRecord(**data)


async def _quick_check(path: Path) -> list[str]:
    """``PRAGMA quick_check`` on a read-only connection of its own (store/integrity.py)."""
    import asyncio
    import sqlite3

    def run() -> list[str]:
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error:
            return []  # unopenable: reported by the normal open below
        try:
            return quick_check(conn)
        finally:
            conn.close()

    return await asyncio.to_thread(run)


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path, saver: AsyncSqliteSaver):
        self.conn = conn
        self.path = path
        self.saver = saver
        self._queued: list[tuple[Any, ...]] = []
        if isinstance(saver, _EventAwareSaver):
            saver.take_events = self._take_queued

    # Set when the file failed its integrity check at open: the connection is read-only.
    damaged: str | None = None

    @classmethod
    async def open(cls, path: Path, *, check: bool = True) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        if check and path.exists() and should_check_at_open(path):
            problems = await _quick_check(path)
            # Not a database at all (no SQLite header): the open below says so, exit 2.
            if problems and "not a database" not in problems[0]:
                return await cls._open_damaged(path, problems[0])
        conn: aiosqlite.Connection | None = None
        try:
            conn = await aiosqlite.connect(str(path), timeout=30)
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA busy_timeout=30000")
            await conn.executescript(SCHEMA)
            await conn.commit()
        except Exception as exc:  # sqlite3.DatabaseError, OSError: an unusable file
            if conn is not None:
                await conn.close()  # its worker thread would keep the process alive
            raise OpenManusError(
                f"cannot open the database {path}: {exc}",
                hint="Check storage.path, or move the file aside to start afresh.",
                error_class="user",
            ) from None
        saver = _EventAwareSaver(conn)
        await saver.setup()
        await _migrate(conn)
        return cls(conn, path, saver)

    @classmethod
    async def _open_damaged(cls, path: Path, detail: str) -> Database:
        """Read-only (SQLite refuses every write), for the commands that only read."""
        conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        saver = _EventAwareSaver(conn)
        saver.is_setup = True  # its setup writes (CREATE TABLE, journal mode)
        db = cls(conn, path, saver)
        db.damaged = detail
        return db

    def _take_queued(self) -> list[tuple[Any, ...]]:
        rows, self._queued = self._queued, []
        return rows

    async def close(self) -> None:
        try:
            if self.damaged is None:
                await self.flush_events(commit=True)
        finally:
            # Always: the connection's worker thread would otherwise keep the process alive
            # (the hang of `sessions rm` on a damaged file).
            await self.conn.close()

    # ---- sessions ------------------------------------------------------------------------
    async def create_session(self, record: SessionRecord) -> SessionRecord:
        values = asdict(record)
        values["meta"] = json.dumps(values["meta"])
        cols = ", ".join(_SESSION_COLUMNS)
        marks = ", ".join("?" for _ in _SESSION_COLUMNS)
        async with self.saver.lock:
            await self.conn.execute(
                f"INSERT INTO sessions ({cols}) VALUES ({marks})",
                [values[c] for c in _SESSION_COLUMNS],
            )
            await self.conn.commit()
        return record

    async def update_session(self, session_id: str, **fields: Any) -> None:
        if "meta" in fields:
            fields["meta"] = json.dumps(fields["meta"])
        fields.setdefault("updated", time.time())
        sets = ", ".join(f"{k} = ?" for k in fields)
        async with self.saver.lock:
            await self.conn.execute(
                f"UPDATE sessions SET {sets} WHERE id = ?", [*fields.values(), session_id]
            )
            await self.conn.commit()

    async def get_session(self, session_id: str) -> SessionRecord:
        """A session by id or by a unique id prefix (as printed by ``sessions list``)."""
        async with self.conn.execute(
            f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions WHERE id = ? OR id LIKE ? "
            "ORDER BY id = ? DESC LIMIT 2",
            (session_id, session_id.replace("%", "").replace("_", r"\_") + "%", session_id),
        ) as cur:
            rows = list(await cur.fetchall())
        if not rows or (len(rows) > 1 and rows[0][0] != session_id):
            what = "no session" if not rows else "more than one session"
            raise SessionNotFound(
                f"{what} matches {session_id!r}",
                hint="`openmanus sessions list` shows the sessions.",
            )
        return self._live(_row_to_session(rows[0]))

    def _live(self, record: SessionRecord) -> SessionRecord:
        """A session recorded as running whose run holds no lock was interrupted: its process
        is gone (killed, crashed, the machine restarted). Say so instead of "running"."""
        if record.status == "running":
            from openmanus_tui.store.locks import is_running

            if not is_running(self.path, record.id):
                record.status = "interrupted"
        return record

    async def session_head(self, session_id: str) -> str | None:
        sql = "SELECT head FROM sessions WHERE id = ?"
        async with self.conn.execute(sql, (session_id,)) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def set_meta(self, session_id: str, key: str, value: Any) -> None:
        """Set (or with None remove) one key of a session's meta, leaving the others as they
        are in the database (a stale in-memory record must not overwrite them)."""
        if value is None:
            sql, params = "json_remove(meta, ?)", [f"$.{key}"]
        else:
            sql, params = "json_set(meta, ?, json(?))", [f"$.{key}", json.dumps(value)]
        async with self.saver.lock:
            await self.conn.execute(
                f"UPDATE sessions SET meta = {sql} WHERE id = ?", [*params, session_id]
            )
            await self.conn.commit()

    async def list_sessions(self) -> list[SessionRecord]:
        async with self.conn.execute(
            f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions ORDER BY updated DESC"
        ) as cur:
            return [self._live(_row_to_session(r)) for r in await cur.fetchall()]

    async def delete_session(self, session_id: str) -> None:
        await self.flush_events(commit=True)
        await self.saver.adelete_thread(session_id)
        async with self.saver.lock:
            await self.conn.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
            await self.conn.execute("DELETE FROM snapshots WHERE session_id = ?", (session_id,))
            await self.conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            await self.conn.commit()

    # ---- events --------------------------------------------------------------------------
    async def last_seq(self, session_id: str) -> int:
        await self.flush_events()
        async with self.conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def append_event(self, event: Event, *, commit: bool = True) -> None:
        """Store one event. With ``commit`` it is on disk when this returns. Without, it is
        queued and written in one batch right before the checkpointer's next write (see
        ``_EventAwareSaver``), so it is committed with the checkpoint that follows it: a kill
        loses only events of a step whose checkpoint was not saved either (and that step runs
        again on resume)."""
        row = (
            event.session_id,
            event.seq,
            event.run_id,
            event.checkpoint_id,
            event.type,
            getattr(event, "call_id", None),
            event.ts,
            event.to_json(),
        )
        self._queued.append(row)
        if commit:
            await self.flush_events(commit=True)

    async def flush_events(self, *, commit: bool = False) -> None:
        """Write queued events (readers call this first, so they see every event)."""
        if not self._queued and not commit:
            return
        async with self.saver.lock:
            if commit:  # insert and commit in one trip to aiosqlite's thread
                await commit_in_one_trip(self.conn, [(EVENTS_INSERT, self._take_queued())])
            else:
                await self._write_queued()

    async def _write_queued(self) -> None:
        """Insert queued events; the caller holds the checkpointer's lock."""
        if not self._queued:
            return
        await self.conn.executemany(EVENTS_INSERT, self._take_queued())

    async def events(
        self, session_id: str, *, after_seq: int = 0, types: Iterable[str] | None = None
    ) -> list[Event]:
        await self.flush_events()
        sql = "SELECT payload FROM events WHERE session_id = ? AND seq > ?"
        params: list[Any] = [session_id, after_seq]
        if types:
            kinds = list(types)
            sql += f" AND type IN ({', '.join('?' for _ in kinds)})"
            params += kinds
        async with self.conn.execute(sql + " ORDER BY seq", params) as cur:
            return [parse_event(row[0]) for row in await cur.fetchall()]

    async def checkpoint_ids(self, session_id: str) -> list[str]:
        """Checkpoints already announced by a ``checkpoint`` event."""
        await self.flush_events()
        async with self.conn.execute(
            "SELECT checkpoint_id FROM events WHERE session_id = ? AND type = 'checkpoint'",
            (session_id,),
        ) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def journal(self, session_id: str, base_checkpoint: str, call_id: str) -> list[Event]:
        """The tool_started / tool_finished events of one call at one step (the tool journal)."""
        await self.flush_events()
        async with self.conn.execute(
            "SELECT payload FROM events WHERE session_id = ? AND call_id = ? AND checkpoint_id = ?"
            " AND type IN ('tool_started', 'tool_finished') ORDER BY seq",
            (session_id, call_id, base_checkpoint),
        ) as cur:
            return [parse_event(row[0]) for row in await cur.fetchall()]

    # ---- workspace snapshots ---------------------------------------------------------------
    async def add_snapshot(self, session_id: str, checkpoint_id: str, tree: str) -> None:
        async with self.saver.lock:
            await commit_in_one_trip(self.conn, [(
                "INSERT OR REPLACE INTO snapshots (session_id, checkpoint_id, tree, ts) "
                "VALUES (?, ?, ?, ?)",
                [(session_id, checkpoint_id, tree, time.time())],
            )])

    async def nearest_snapshot(self, session_id: str, checkpoint_id: str) -> str | None:
        """The workspace tree recorded at ``checkpoint_id`` or its nearest ancestor."""
        async with self.conn.execute(
            "WITH RECURSIVE lin(id, depth) AS ("
            " SELECT ?, 0"
            " UNION ALL SELECT c.parent_checkpoint_id, lin.depth + 1 FROM checkpoints c"
            " JOIN lin ON c.checkpoint_id = lin.id"
            " WHERE c.thread_id = ? AND c.checkpoint_ns = ''"
            " AND c.parent_checkpoint_id IS NOT NULL)"
            " SELECT s.tree FROM lin JOIN snapshots s"
            " ON s.checkpoint_id = lin.id AND s.session_id = ? ORDER BY lin.depth LIMIT 1",
            (checkpoint_id, session_id, session_id),
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def snapshot_trees(self, session_id: str) -> list[str]:
        async with self.conn.execute(
            "SELECT DISTINCT tree FROM snapshots WHERE session_id = ?", (session_id,)
        ) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def vacuum(self) -> None:
        """Give deleted pages back to the file system (after a prune)."""
        await self.flush_events(commit=True)
        async with self.saver.lock:
            await self.conn.commit()
            await self.conn.execute("VACUUM")
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def size_bytes(self) -> int:
        """Database size on disk, WAL included."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total
