"""Approval rules in the database: the ``rules`` table, its CRUD, hit counts and reach.

A rule row holds the parsed pattern (``tool`` + ``specifier``), the action, the scope with the
session or project (workspace path) it belongs to, when it was made, how often it decided a call
and when last, and Codex-style ``match`` / ``not_match`` examples that are checked on every save.

``rule_reach`` answers "which past calls would this rule have decided?" from the stored
``tool_call`` events, so a person sees a rule's reach before saving it. ``HitCounter`` listens to a
run's events and counts the calls the rules decided (the graph's approve node stays side-effect
free); ``remember_always`` turns an "always allow" decision into a stored rule.

Writes take the checkpointer's lock and commit, like every other write on the shared connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openmanus_tui import events as ev
from openmanus_tui.agent.rules import (
    ACTIONS,
    SCOPES,
    Action,
    Rule,
    RuleError,
    RulePattern,
    Scope,
    check_examples,
    explain_miss,
    suggest_pattern,
)
from openmanus_tui.store.tables import TableStore

if TYPE_CHECKING:
    from openmanus_tui.agent.approval import ApprovalPolicy, Decision
    from openmanus_tui.store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tool TEXT NOT NULL,
    specifier TEXT,
    action TEXT NOT NULL CHECK (action IN ('allow', 'ask', 'deny')),
    scope TEXT NOT NULL CHECK (scope IN ('session', 'project', 'global')),
    session_id TEXT,
    project TEXT,
    created REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    last_hit REAL,
    match TEXT NOT NULL DEFAULT '[]',
    not_match TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX IF NOT EXISTS rules_unique ON rules(
    tool, COALESCE(specifier, ''), action, scope, COALESCE(session_id, ''), COALESCE(project, '')
);
"""
_COLUMNS = (
    "id, tool, specifier, action, scope, session_id, project, created, hits, last_hit, "
    "match, not_match"
)
REACH_LIMIT = 50


def _row(row: Sequence[Any]) -> Rule:
    return Rule(
        RulePattern(row[1], row[2]),
        action=row[3],
        scope=row[4],
        id=row[0],
        session_id=row[5],
        project=row[6],
        created=row[7],
        hits=row[8],
        last_hit=row[9],
        match=json.loads(row[10] or "[]"),
        not_match=json.loads(row[11] or "[]"),
    )


def _owner(scope: str, session_id: str | None, project: str | None) -> tuple[Any, Any]:
    """The (session_id, project) a rule of ``scope`` is stored with; the other is NULL."""
    if scope not in SCOPES:
        raise RuleError(f"unknown scope {scope!r}", hint="Use session, project or global.")
    if scope == "session":
        if not session_id:
            raise RuleError("a session rule needs a session", hint="Start a session first.")
        return session_id, None
    if scope == "project":
        if not project:
            raise RuleError("a project rule needs a workspace", hint="Open a session first.")
        return None, project
    return None, None


class RuleStore(TableStore):
    """CRUD of the ``rules`` table on the shared database connection."""

    SCHEMA = SCHEMA
    # Session rules outlive a deleted session otherwise (the sessions table knows nothing
    # of rules).
    CLEANUP = (
        "DELETE FROM rules WHERE scope = 'session' "
        "AND session_id NOT IN (SELECT id FROM sessions)",
    )

    async def add(
        self,
        text: str,
        *,
        action: Action = "allow",
        scope: Scope = "session",
        session_id: str | None = None,
        project: str | None = None,
        match: Iterable[str] = (),
        not_match: Iterable[str] = (),
    ) -> Rule:
        """Store a rule (the same rule twice is stored once). Raises ``RuleError`` for a bad
        pattern, action, scope or a failing example."""
        pattern, owner, examples = self._validate(text, action, scope, session_id, project,
                                                  match, not_match)
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute(
                "INSERT OR IGNORE INTO rules (tool, specifier, action, scope, session_id, "
                "project, created, match, not_match) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pattern.tool, pattern.specifier, action, scope, *owner, time.time(),
                 *examples),
            )
            await self.db.conn.commit()
        found = await self._find(pattern, action, scope, owner)
        assert found is not None
        return found

    @staticmethod
    def _validate(
        text: str, action: str, scope: str, session_id: str | None, project: str | None,
        match: Iterable[str], not_match: Iterable[str],
    ) -> tuple[RulePattern, tuple[Any, Any], tuple[str, str]]:
        pattern = RulePattern.parse(text)
        if action not in ACTIONS:
            raise RuleError(f"unknown action {action!r}", hint="Use allow, ask or deny.")
        match, not_match = list(match), list(not_match)
        check_examples(pattern, action, match, not_match)  # type: ignore[arg-type]
        owner = _owner(scope, session_id, project)
        return pattern, owner, (json.dumps(match), json.dumps(not_match))

    async def _find(
        self, pattern: RulePattern, action: str, scope: str, owner: tuple[Any, Any]
    ) -> Rule | None:
        async with self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM rules WHERE tool = ? AND COALESCE(specifier, '') = ? "
            "AND action = ? AND scope = ? AND COALESCE(session_id, '') = ? "
            "AND COALESCE(project, '') = ?",
            (pattern.tool, pattern.specifier or "", action, scope, owner[0] or "",
             owner[1] or ""),
        ) as cur:
            row = await cur.fetchone()
        return _row(row) if row else None

    async def get(self, rule_id: int) -> Rule:
        await self.setup()
        async with self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM rules WHERE id = ?", (rule_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise RuleError(f"no rule with id {rule_id}")
        return _row(row)

    async def update(
        self,
        rule_id: int,
        *,
        text: str | None = None,
        action: Action | None = None,
        scope: Scope | None = None,
        session_id: str | None = None,
        project: str | None = None,
        match: Iterable[str] | None = None,
        not_match: Iterable[str] | None = None,
    ) -> Rule:
        """Change a rule; what is not given stays. Hit counts are kept."""
        old = await self.get(rule_id)
        new_scope = scope or old.scope
        pattern, owner, examples = self._validate(
            text if text is not None else old.text,
            action or old.action,
            new_scope,
            session_id or old.session_id,
            project or old.project,
            old.match if match is None else match,
            old.not_match if not_match is None else not_match,
        )
        try:
            async with self.db.saver.lock:
                await self.db.conn.execute(
                    "UPDATE rules SET tool = ?, specifier = ?, action = ?, scope = ?, "
                    "session_id = ?, project = ?, match = ?, not_match = ? WHERE id = ?",
                    (pattern.tool, pattern.specifier, action or old.action, new_scope, *owner,
                     *examples, rule_id),
                )
                await self.db.conn.commit()
        except Exception as exc:  # sqlite3.IntegrityError: the same rule exists already
            if "UNIQUE" not in str(exc):
                raise
            await self.db.conn.rollback()
            raise RuleError(f"the rule {pattern.text} exists already") from None
        return await self.get(rule_id)

    async def delete(self, rule_id: int) -> None:
        await self.setup()
        async with self.db.saver.lock:
            await self.db.conn.execute("DELETE FROM rules WHERE id = ?", (rule_id,))
            await self.db.conn.commit()

    async def list(self) -> list[Rule]:
        """Every rule: global first, then project, then session ones; oldest first."""
        await self.setup()
        async with self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM rules ORDER BY CASE scope WHEN 'global' THEN 0 "
            "WHEN 'project' THEN 1 ELSE 2 END, id"
        ) as cur:
            return [_row(r) for r in await cur.fetchall()]

    async def applicable(self, session_id: str, project: str | None) -> list[Rule]:
        """The rules that apply to a session: its own, its workspace's and the global ones."""
        await self.setup()
        async with self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM rules WHERE scope = 'global' "
            "OR (scope = 'session' AND session_id = ?) OR (scope = 'project' AND project = ?) "
            "ORDER BY id",
            (session_id, project or ""),
        ) as cur:
            return [_row(r) for r in await cur.fetchall()]

    async def record_hits(self, rule_ids: Iterable[int], ts: float | None = None) -> None:
        counts: dict[int, int] = {}
        for rule_id in rule_ids:
            counts[rule_id] = counts.get(rule_id, 0) + 1
        if not counts:
            return
        await self.setup()
        now = time.time() if ts is None else ts
        async with self.db.saver.lock:
            await self.db.conn.executemany(
                "UPDATE rules SET hits = hits + ?, last_hit = ? WHERE id = ?",
                [(n, now, rule_id) for rule_id, n in counts.items()],
            )
            await self.db.conn.commit()


async def _flush_queued(db: Database) -> None:
    # Events may wait in the database's queue until the next checkpoint write.
    flush = getattr(db, "flush_events", None)
    if flush is not None:
        await flush()


# ---- reach ---------------------------------------------------------------------------------
@dataclass
class PastCall:
    session_id: str
    call_id: str
    tool: str
    args: dict[str, Any]
    ts: float


@dataclass
class Reach:
    """The past calls a rule would have decided: how many, and the newest ``limit`` of them."""

    count: int = 0
    calls: list[PastCall] = field(default_factory=list)
    examined: int = 0


async def rule_reach(
    db: Database,
    rule: str | RulePattern,
    *,
    action: Action = "allow",
    scope: Scope = "global",
    session_id: str | None = None,
    project: str | None = None,
    exclude_call: str | None = None,
    limit: int = REACH_LIMIT,
) -> Reach:
    """The stored ``tool_call`` events that ``rule`` would have decided, newest first. The scope
    narrows the history looked at: one session, the sessions of one workspace, or all."""
    pattern = rule if isinstance(rule, RulePattern) else RulePattern.parse(rule)
    sql = (
        "SELECT e.session_id, e.call_id, e.ts, e.payload FROM events e "
        "JOIN sessions s ON s.id = e.session_id WHERE e.type = 'tool_call' "
        "AND json_extract(e.payload, '$.invalid') IS NULL"
    )
    params: list[Any] = []
    if pattern.tool.startswith("mcp__") and pattern.tool.count("__") == 1:
        sql += " AND json_extract(e.payload, '$.tool') GLOB ?"
        params.append(pattern.tool + "__*")
    else:  # SQLite's GLOB has fnmatch's *, ? and [...]
        sql += " AND json_extract(e.payload, '$.tool') GLOB ?"
        params.append(pattern.tool)
    if scope == "session":
        sql += " AND e.session_id = ?"
        params.append(session_id or "")
    elif scope == "project":
        sql += " AND s.workspace = ?"
        params.append(project or "")
    if exclude_call:
        sql += " AND e.call_id IS NOT ?"
        params.append(exclude_call)
    await _flush_queued(db)
    reach = Reach()
    async with db.conn.execute(sql + " ORDER BY e.ts DESC, e.seq DESC", params) as cur:
        async for session, call_id, ts, payload in cur:
            reach.examined += 1
            data = json.loads(payload)
            args = data.get("args") or {}
            if pattern.matches(data.get("tool", ""), args, action):
                reach.count += 1
                if len(reach.calls) < limit:
                    reach.calls.append(PastCall(session, call_id, data.get("tool", ""), args, ts))
    return reach


# ---- the runtime's side ----------------------------------------------------------------------
class HitCounter:
    """An event listener that notes the calls stored rules decided; ``flush`` writes the hits.

    Rule ids are found by asking the run's policy again with the call's arguments, from the
    ``tool_call`` event (seen live, or looked up when the call came from an earlier process).
    """

    def __init__(self, store: RuleStore) -> None:
        self.store = store
        self.policy: ApprovalPolicy | None = None
        self._args: dict[str, dict[str, Any]] = {}
        self._pending: list[tuple[str, str, dict[str, Any] | None]] = []

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.ToolCall):
            self._args[event.call_id] = event.args or {}
        elif isinstance(event, ev.ApprovalDecided) and event.by == "rule":
            self._pending.append((event.call_id, event.tool, self._args.get(event.call_id)))
        elif isinstance(event, ev.ApprovalRequested):
            for call in event.calls:
                if call.rule:  # an ask rule made this call ask
                    self._pending.append((call.call_id, call.tool, call.args))

    async def flush(self, session_id: str) -> None:
        pending, self._pending = self._pending, []
        if self.policy is None or not pending:
            return
        ids: list[int] = []
        for call_id, tool, args in pending:
            if args is None:
                args = await self._stored_args(session_id, call_id)
            ids += self.policy.deciding_rules(tool, args)
        await self.store.record_hits(ids)

    async def _stored_args(self, session_id: str, call_id: str) -> dict[str, Any]:
        await _flush_queued(self.store.db)
        async with self.store.db.conn.execute(
            "SELECT payload FROM events WHERE session_id = ? AND call_id = ? "
            "AND type = 'tool_call' ORDER BY seq DESC LIMIT 1",
            (session_id, call_id),
        ) as cur:
            row = await cur.fetchone()
        return (json.loads(row[0]).get("args") or {}) if row else {}


async def remember_always(
    store: RuleStore,
    policy: ApprovalPolicy,
    request: ev.ApprovalRequested,
    decisions: dict[str, Decision],
    *,
    session_id: str,
    project: str | None,
) -> list[str]:
    """Store the rule of every ``always`` decision and add it to the running policy (deferred:
    the runtime activates it when the approve step is done). A rule that
    cannot be saved (bad pattern, or it would not cover its own call) turns the decision into a
    plain approval; the returned notices say why."""
    notices: list[str] = []
    calls = {c.call_id: c for c in request.calls}
    for call_id, decision in decisions.items():
        call = calls.get(call_id)
        if decision.decision != "always" or call is None:
            continue
        text = decision.rule or suggest_pattern(call.tool, call.args)
        scope = decision.scope or "session"
        try:
            pattern = RulePattern.parse(text)
            miss = explain_miss(pattern, call.tool, call.args, policy.rules)
            if miss is not None:
                raise RuleError(f"{pattern.text} does not cover this call: {miss}")
            rule = await store.add(text, action="allow", scope=scope, session_id=session_id,
                                   project=project)
        except RuleError as exc:
            notices.append(f"Approved once; the rule was not saved: {exc.message}")
            decisions[call_id] = decision.model_copy(
                update={"decision": "approve", "rule": None, "scope": None}
            )
            continue
        policy.add_rule(rule, deferred=True)  # active once the resumed step has passed
        decisions[call_id] = decision.model_copy(update={"rule": rule.text, "scope": rule.scope})
    return notices
