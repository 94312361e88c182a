"""Circuit breakers per endpoint: model endpoints, MCP servers, search and fetch backends.

Built on purgatory (MIT; async-native; states closed → open after ``failure_threshold``
failures in a row → half-open once ``recovery_timeout`` seconds have passed, where the next call
is a probe: success closes the breaker, a failure opens it again). purgatory lets every call
through while half-open; here only one probe runs at a time and the others are refused as if
the breaker were still open. A ``BreakerBoard`` belongs
to one ``Runtime``; ``call(name, fn)`` runs ``fn`` through the breaker called ``name`` and
raises ``CircuitOpen`` without calling it while the breaker is open.

State changes reach the board's async listeners (the running session turns them into
``breaker`` events) and are written to the ``breaker_states`` table, so that ``openmanus
doctor`` in another process shows them and a new run does not knock on an endpoint that another
run has just found dead. Which failures count is the caller's choice (``counts``): a model's
bad key is no sign of a dead endpoint, and a cancelled call is no failure at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain import model as _purgatory_model
from purgatory.domain.model import Context, OpenedState

from openmanus_tui.errors import CircuitOpen

if TYPE_CHECKING:
    from openmanus_tui.store.db import Database

T = TypeVar("T")
BreakerStateName = Literal["closed", "open", "half_open"]

_STATE_NAMES: dict[str, BreakerStateName] = {
    "closed": "closed",
    "opened": "open",
    "half-opened": "half_open",
}
_PURGATORY_NAMES = {v: k for k, v in _STATE_NAMES.items()}

SCHEMA = """
CREATE TABLE IF NOT EXISTS breaker_states (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    opened_at REAL,
    changed_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT ''
);
"""


@dataclass
class BreakerState:
    """One breaker as people see it."""

    name: str
    state: BreakerStateName
    failures: int = 0
    opened_at: float | None = None
    changed_at: float = 0.0
    last_error: str = ""
    threshold: int = 5
    recovery_timeout: float = 60.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self, at: float | None = None) -> str:
        if self.state == "open" and self.opened_at is not None:
            wait = self.opened_at + self.recovery_timeout - (at or now())
            probe = f"probe in {wait:.0f} s" if wait > 0 else "probe on the next call"
            return f"{self.name}: OPEN ({probe}; {self.last_error or 'repeated failures'})"
        if self.state == "half_open":
            return f"{self.name}: half-open (the next call is a probe)"
        tail = f", {self.failures} failure(s) in a row" if self.failures else ""
        return f"{self.name}: closed{tail}"


@dataclass
class BreakerChange:
    """A breaker moved from one state to another."""

    name: str
    old: BreakerStateName
    new: BreakerStateName
    failures: int
    error: str = ""


Listener = Callable[[BreakerChange], Awaitable[None]]


def _counts_by_default(exc: BaseException) -> bool:
    return not isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | GeneratorExit)


def now() -> float:
    """purgatory's clock (its module's ``time.time``), so that our times agree with its own
    (tests drive it through that module)."""
    return float(_purgatory_model.time.time())


class BreakerBoard:
    def __init__(self, *, failure_threshold: int = 5, recovery_timeout: float = 60.0) -> None:
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=failure_threshold, default_ttl=recovery_timeout
        )
        self._factory.add_listener(self._hook)
        self._changes: list[tuple[str, str]] = []  # (name, purgatory state), in order
        self._known: dict[str, BreakerStateName] = {}
        self._last_error: dict[str, str] = {}
        self._failures: dict[str, int] = {}  # in a row, as purgatory counted them
        self._probing: set[str] = set()  # breakers whose half-open probe is under way
        self._changed_at: dict[str, float] = {}
        self.listeners: list[Listener] = []
        self._db: Database | None = None

    # ---- configuration ----------------------------------------------------------------
    def configure(self, *, failure_threshold: int, recovery_timeout: float) -> None:
        """New limits, applied to existing breakers too (a configuration reload)."""
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self._factory.default_threshold = failure_threshold
        self._factory.default_ttl = recovery_timeout
        for context in self._contexts().values():
            context.threshold = failure_threshold
            context.ttl = recovery_timeout

    async def attach(self, db: Database) -> None:
        """Persist changes in ``db`` and start from the states stored there (open breakers
        found by another process stay open until their probe)."""
        self._db = db
        async with db.saver.lock:
            await db.conn.executescript(SCHEMA)
            await db.conn.commit()
        async with db.conn.execute(
            "SELECT name, state, failures, opened_at, changed_at, last_error FROM breaker_states"
        ) as cur:
            rows = await cur.fetchall()
        for name, state, failures, opened_at, changed_at, last_error in rows:
            if state not in _PURGATORY_NAMES or state == "closed":
                continue
            context = Context(
                name,
                self.failure_threshold,
                self.recovery_timeout,
                state=_PURGATORY_NAMES[state],
                failure_count=failures,
                opened_at=opened_at,
            )
            await self._factory.uow.contexts.register(context)
            self._known[name] = state
            self._changed_at[name] = changed_at
            self._last_error[name] = last_error

    # ---- calling through a breaker ----------------------------------------------------
    async def call(
        self,
        name: str,
        fn: Callable[[], Awaitable[T]],
        *,
        counts: Callable[[BaseException], bool] = _counts_by_default,
        describe: Callable[[BaseException], str] = str,
    ) -> T:
        """``await fn()`` through the breaker ``name``; ``CircuitOpen`` while it is open.
        An exception for which ``counts`` is false passes through without counting."""
        breaker = await self._factory.get_breaker(
            name, exclude=[(BaseException, lambda exc: not counts(exc))]
        )
        context = breaker.context
        due = context.state == "half-opened" or (
            context.state == "opened"
            and (context.opened_at or 0) + context.ttl < now()
        )
        if due:
            # One probe at a time: the others wait for its verdict as if still open.
            if name in self._probing:
                raise CircuitOpen(name, 0.0)
            self._probing.add(name)
        try:
            try:
                async with breaker:
                    return await fn()
            except OpenedState as exc:
                opened = exc.opened_at or now()
                raise CircuitOpen(name, opened + breaker.context.ttl - now()) from None
            except BaseException as exc:
                if counts(exc):
                    self._last_error[name] = describe(exc)[:300]
                raise
        finally:
            if due:
                self._probing.discard(name)
            await self._dispatch()

    async def forget_if_healthy(self, name: str) -> None:
        """Drop the breaker ``name`` when it is closed with no failure counted: for families of
        breakers without bound (one per web host), only the hosts that are failing or have
        failed lately stay in memory, in ``states()`` (metrics labels) and in the database."""
        context = self._contexts().get(name)
        if (context is None or context.state != "closed" or context.failure_count
                or name in self._probing):
            return
        self._contexts().pop(name, None)
        recorded = self._known.pop(name, None) is not None
        for table in (self._last_error, self._failures, self._changed_at):
            table.pop(name, None)
        db = self._db
        if recorded and db is not None and db.damaged is None:
            with contextlib.suppress(Exception):  # the record is only for people to read
                async with db.saver.lock:
                    await db.conn.execute(
                        "DELETE FROM breaker_states WHERE name = ? AND state = 'closed'", (name,)
                    )
                    await db.conn.commit()

    def is_open(self, name: str) -> bool:
        context = self._contexts().get(name)
        return context is not None and context.state == "opened"

    def states(self) -> list[BreakerState]:
        """Every breaker this process has used, by name."""
        out = []
        for name, context in sorted(self._contexts().items()):
            out.append(
                BreakerState(
                    name=name,
                    state=_STATE_NAMES.get(context.state, "closed"),
                    failures=context.failure_count or self._failures.get(name, 0),
                    opened_at=context.opened_at,
                    changed_at=self._changed_at.get(name, 0.0),
                    last_error=self._last_error.get(name, ""),
                    threshold=context.threshold,
                    recovery_timeout=context.ttl,
                )
            )
        return out

    # ---- state changes ------------------------------------------------------------------
    def _contexts(self) -> dict[str, Context]:
        return self._factory.uow.contexts.breakers  # type: ignore[attr-defined,no-any-return]

    def _hook(self, name: str, kind: str, event: Any) -> None:
        # purgatory calls this synchronously from inside the breaker; the async listeners
        # run in ``_dispatch`` once the call is over.
        if kind == "state_changed":
            self._changes.append((name, event.state))
        elif kind == "failed":
            self._failures[name] = event.failure_count
        elif kind == "recovered":
            self._failures[name] = 0

    async def _dispatch(self) -> None:
        while self._changes:
            name, raw = self._changes.pop(0)
            new = _STATE_NAMES.get(raw, "closed")
            old = self._known.get(name, "closed")
            self._known[name] = new
            self._changed_at[name] = now()
            context = self._contexts().get(name)
            # A failed probe is one failure; otherwise the run of failures that opened it.
            failures = 1 if old == "half_open" and new == "open" else self._failures.get(name, 0)
            error = self._last_error.get(name, "") if new == "open" else ""
            change = BreakerChange(name, old, new, failures, error)
            await self._persist(change, context)
            for listener in list(self.listeners):
                with contextlib.suppress(Exception):  # a listener never breaks a call
                    await listener(change)

    async def _persist(self, change: BreakerChange, context: Context | None) -> None:
        db = self._db
        if db is None or db.damaged is not None:
            return
        with contextlib.suppress(Exception):  # the breaker works without its record
            async with db.saver.lock:
                await db.conn.execute(
                    "INSERT OR REPLACE INTO breaker_states "
                    "(name, state, failures, opened_at, changed_at, last_error) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        change.name,
                        change.new,
                        change.failures,
                        context.opened_at if context is not None else None,
                        now(),
                        change.error,
                    ),
                )
                await db.conn.commit()


def stored_states(db_path: Path, *, recovery_timeout: float = 60.0) -> list[BreakerState]:
    """The breakers recorded in the database file (read-only; for ``openmanus doctor``)."""
    if not db_path.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute(
            "SELECT name, state, failures, opened_at, changed_at, last_error "
            "FROM breaker_states ORDER BY name"
        ).fetchall()
    except sqlite3.Error:  # no table yet: nothing was ever recorded
        return []
    finally:
        conn.close()
    return [
        BreakerState(
            name=r[0], state=r[1], failures=r[2], opened_at=r[3], changed_at=r[4],
            last_error=r[5], recovery_timeout=recovery_timeout,
        )
        for r in rows
    ]
