"""Recorded replay: re-emit a branch's stored events, with no model or tool call.

Timing is the original one scaled by ``speed`` (0 means as fast as possible), gaps are capped
so a session left overnight does not replay overnight. ``pause``/``resume``/``step`` and
breakpoints (on a tool name, or on every step) let a person walk through a run; the TUI's replay
bar and ``openmanus replay`` drive the same object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from openmanus_tui import events as ev

MAX_GAP_S = 2.0


class Replayer:
    def __init__(
        self,
        events: Sequence[ev.Event],
        *,
        speed: float = 1.0,
        breakpoints: Sequence[str] = (),
        break_on_steps: bool = False,
    ) -> None:
        self.events = list(events)
        self.speed = speed
        self.breakpoints = set(breakpoints)
        self.break_on_steps = break_on_steps
        self.position = 0
        self._running = asyncio.Event()
        self._running.set()
        self._single_step = False
        self.paused_at: ev.Event | None = None

    @property
    def done(self) -> bool:
        return self.position >= len(self.events)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._single_step = False
        self._running.set()

    def step(self) -> None:
        """Emit the next event, then pause again."""
        self._single_step = True
        self._running.set()

    def jump(self, position: int) -> None:
        """Continue from event ``position`` (events before it are not re-emitted)."""
        self.position = max(0, min(position, len(self.events)))

    def _is_breakpoint(self, event: ev.Event) -> bool:
        if isinstance(event, ev.ToolCall) and event.tool in self.breakpoints:
            return True
        return self.break_on_steps and isinstance(event, ev.Checkpoint)

    async def play(self, emit: Callable[[ev.Event], None]) -> int:
        """Emit events until the end; returns how many were emitted."""
        emitted = 0
        previous_ts: float | None = None
        while not self.done:
            event = self.events[self.position]
            if self._is_breakpoint(event) and self.paused_at is not event:
                self.paused_at = event
                self.pause()
            await self._running.wait()
            if self.speed > 0 and previous_ts is not None:
                gap = min(max(event.ts - previous_ts, 0.0), MAX_GAP_S)
                await asyncio.sleep(gap / self.speed)
            previous_ts = event.ts
            emit(event)
            emitted += 1
            self.position += 1
            if self._single_step:
                self._single_step = False
                self.pause()
        return emitted
