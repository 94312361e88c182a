"""The export document (session record, events, branch lineage) and its JSON form, both ways.

``from_json`` also reads the two JSONL streams the CLI prints, ``openmanus run --json`` and
``openmanus sessions show ID --json``, so a headless run can be imported without a database.
Bad input is one clear line naming where it went wrong, never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from pydantic import ValidationError

from openmanus_tui import events as ev
from openmanus_tui.errors import OpenManusError
from openmanus_tui.events import Event, parse_event
from openmanus_tui.export.lineage import branches_from_events
from openmanus_tui.export.redact import redact
from openmanus_tui.store.db import SessionRecord

EXPORT_VERSION = 1
FORMAT = "openmanus-tui/session-export"

# Printed by ``run --json`` while a run is live but never stored: token deltas, and output lines
# (``tool_finished`` carries the whole result).
LIVE_ONLY = frozenset({"thought_delta", "tool_output"})

_SESSION_FIELDS = list(SessionRecord.__dataclass_fields__)


@dataclass
class ExportDoc:
    session: dict[str, Any]
    events: list[Event]
    branches: list[dict[str, Any]] = field(default_factory=list)
    exported_at: float = field(default_factory=time.time)
    version: int = EXPORT_VERSION

    def record(self) -> SessionRecord:
        """The session as a ``SessionRecord`` (unknown keys dropped, missing ones defaulted)."""
        known = {k: v for k, v in self.session.items() if k in _SESSION_FIELDS}
        return SessionRecord(**known)


def _bad(message: str, hint: str = "") -> OpenManusError:
    return OpenManusError(message, hint=hint, error_class="user")


def is_live_only(event: Event) -> bool:
    return event.ephemeral or event.type in LIVE_ONLY


def prepare_export(
    record: SessionRecord | Mapping[str, Any],
    events: Iterable[Event],
    branches: Iterable[Mapping[str, Any]] = (),
    secrets: Iterable[str] = (),
) -> ExportDoc:
    """The document to write: live-only events dropped, secrets and credentials redacted."""
    session = asdict(record) if is_dataclass(record) else dict(record)  # type: ignore[arg-type]
    doc = ExportDoc(
        session=session,
        events=[e for e in events if not is_live_only(e)],
        branches=[dict(b) for b in branches],
    )
    return redact(doc, secrets)


# ---- writing -----------------------------------------------------------------------------
def to_json(doc: ExportDoc) -> str:
    data = {
        "format": FORMAT,
        "version": doc.version,
        "exported_at": doc.exported_at,
        "session": doc.session,
        "branches": doc.branches,
        "events": [e.model_dump(mode="json") for e in doc.events],
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


# ---- reading -----------------------------------------------------------------------------
def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """The first problem of an event that does not fit the schema, in a few words."""
    err = exc.errors()[0]
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        kind = data.get("type")
        return f"unknown event type {kind!r}" if kind is not None else 'no "type" field'
    loc = ".".join(str(p) for p in err["loc"][1:]) or "event"
    return f"not a valid {data.get('type')} event: {loc}: {err['msg'].lower()}"


def _event(data: Any, where: str) -> Event:
    if not isinstance(data, dict):
        raise _bad(f"{where}: expected a JSON object (one event), got {type(data).__name__}")
    if "type" not in data:
        raise _bad(f'{where}: not an event (no "type" field)')
    try:
        return parse_event(data)
    except ValidationError as exc:
        raise _bad(f"{where}: {_describe(exc, data)}") from None


def _from_document(data: dict[str, Any], source: str) -> ExportDoc:
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _bad(f"{source}: no format version; not an OpenManus export")
    if version > EXPORT_VERSION:
        raise _bad(
            f"{source}: export format version {version} is newer than this program reads "
            f"(up to {EXPORT_VERSION})",
            hint="Upgrade openmanus-tui to import it.",
        )
    session = data.get("session")
    if not isinstance(session, dict) or not isinstance(session.get("id"), str) or not session["id"]:
        raise _bad(f'{source}: "session" must be an object with an "id"')
    raw_events = data.get("events")
    if not isinstance(raw_events, list):
        raise _bad(f'{source}: "events" must be a list')
    events = []
    for i, item in enumerate(raw_events):
        seq = f" (seq {item.get('seq')})" if isinstance(item, dict) and "seq" in item else ""
        events.append(_event(item, f"{source}: events[{i}]{seq}"))
    branches = data.get("branches", [])
    if not isinstance(branches, list):
        raise _bad(f'{source}: "branches" must be a list')
    for i, b in enumerate(branches):
        ok = (
            isinstance(b, dict)
            and isinstance(b.get("head"), str)
            and isinstance(b.get("checkpoints"), list)
            and all(isinstance(c, str) for c in b["checkpoints"])
            and isinstance(b.get("label", ""), str)
        )
        if not ok:
            raise _bad(
                f'{source}: branches[{i}] must have "head" (text), "checkpoints" (list of ids) '
                'and "label" (text)'
            )
    exported_at = data.get("exported_at", 0.0)
    if not isinstance(exported_at, int | float) or isinstance(exported_at, bool):
        raise _bad(f'{source}: "exported_at" must be a number')
    return ExportDoc(
        session=session,
        events=events,
        branches=branches,
        exported_at=exported_at,
        version=version,
    )


def _session_from_events(events: list[Event], dropped: int) -> dict[str, Any]:
    """A session record for a bare event stream, from what the events say."""
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    finishes = [e for e in events if isinstance(e, ev.RunFinished)]
    task = next((s.input for s in starts if s.input), "")
    # The last run finished only if its run_finished is the newest of its kind.
    last_run = events[-1].run_id
    last_finish = finishes[-1] if finishes and finishes[-1].run_id == last_run else None
    record = SessionRecord(
        id=events[0].session_id,
        title=" ".join(task.split())[:80],
        created=events[0].ts,
        updated=events[-1].ts,
        model=starts[-1].model if starts else "",
        profile=starts[-1].profile if starts else "manus",
        status=last_finish.status if last_finish else "incomplete",
        meta={"import": {"format": "jsonl", "dropped_live_events": dropped}},
    )
    return asdict(record)


def _from_lines(text: str, source: str) -> ExportDoc:
    events: list[Event] = []
    dropped = 0
    seqs: dict[int, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source} line {lineno}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno})",
                hint="Expected one event per line, as printed by `openmanus run --json`.",
            ) from None
        event = _event(data, where)
        if is_live_only(event):
            dropped += 1
            continue
        if events and event.session_id != events[0].session_id:
            raise _bad(
                f"{where}: event of session {event.session_id!r} in a stream of session "
                f"{events[0].session_id!r}",
                hint="Import one session at a time.",
            )
        if event.seq in seqs:
            raise _bad(f"{where}: seq {event.seq} repeats the event on line {seqs[event.seq]}")
        seqs[event.seq] = lineno
        events.append(event)
    if not events:
        raise _bad(f"{source}: no stored events found (only live output lines)")
    if not events[0].session_id:
        raise _bad(f"{source} line 1: the events carry no session_id")
    return ExportDoc(
        session=_session_from_events(events, dropped),
        events=events,
        branches=branches_from_events(events),
    )


def from_json(text: str | bytes, *, source: str = "input") -> ExportDoc:
    """Read a JSON export, or a JSONL event stream (``run --json`` / ``sessions show --json``).

    ``source`` names the input in error messages (e.g. the file name).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(f"{source}: not UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _bad(f"{source}: empty; expected a JSON export or JSON lines of events")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        first = next(line for line in text.splitlines() if line.strip())
        try:
            json.loads(first)
        except json.JSONDecodeError:
            # Not JSON lines either: report where the single document broke.
            raise _bad(
                f"{source} line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        return _from_lines(text, source)
    if isinstance(whole, dict) and "type" in whole and "events" not in whole:
        return _from_lines(text, source)  # a stream of exactly one event
    if isinstance(whole, dict) and ("events" in whole or whole.get("format") == FORMAT):
        return _from_document(whole, source)
    raise _bad(
        f"{source} line 1: neither an OpenManus export nor JSON lines of events",
        hint="Use a file written by `openmanus export --format json` or `openmanus run --json`.",
    )
