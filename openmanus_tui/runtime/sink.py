"""Where every event goes: numbered, stamped, stored (unless ephemeral), then handed to listeners.

The sink knows the session, the current run and the newest checkpoint, so producers only fill
in what the event is about. Listeners are plain callables (the CLI prints, the TUI posts a
message); a failing listener is dropped from that event, never allowed to break the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from openmanus_tui.events import Event
from openmanus_tui.store.db import Database

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]

# Events committed at once. The others are inserted without a commit and become durable with
# the next one: at the latest the ``checkpoint`` event closing their step, so a kill loses only
# events of a step that had not finished (and is run again on resume). Committing every event
# cost about 1 ms per step (bench/step_overhead.py).
DURABLE = frozenset(
    {
        "run_started",
        "checkpoint",
        "tool_started",
        "tool_finished",
        "approval_requested",
        "approval_decided",
        "final_answer",
        "error",
        "run_finished",
        "notice",
    }
)


class EventSink:
    def __init__(self, db: Database, session_id: str, last_seq: int) -> None:
        self.db = db
        self.session_id = session_id
        self.seq = last_seq
        self.run_id = ""
        self.checkpoint_id: str | None = None
        self.listeners: list[Listener] = []
        # Checkpoints announced by this process: no tool journal entry can predate them.
        self.fresh_checkpoints: set[str] = set()

    def _stamp(self, event: Event) -> Event:
        event.session_id = self.session_id
        event.run_id = event.run_id or self.run_id
        if event.checkpoint_id is None:
            event.checkpoint_id = self.checkpoint_id
        return event

    async def emit(self, event: Event) -> Event:
        self._stamp(event)
        if not event.ephemeral:
            self.seq += 1
            event.seq = self.seq
            await self.db.append_event(event, commit=event.type in DURABLE)
            if event.type == "checkpoint":
                self.fresh_checkpoints.add(event.checkpoint_id or "")
        else:
            event.seq = self.seq
        self._notify(event)
        return event

    def emit_live(self, event: Event) -> None:
        """Hand an ephemeral event (token, output line) to listeners without storing it."""
        self._stamp(event)
        event.seq = self.seq
        self._notify(event)

    def _notify(self, event: Event) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", event.type)
