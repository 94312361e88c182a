"""Side-panel panes that cost nothing until someone looks at them.

The Memory and Tools tabs start hidden, and what they show is not free to compute (the memory
pane asks the session for the next prompt, which loads the tokenizer and reads the store).
A ``DeferredPane`` builds its widgets the first time it is shown and refreshes its data only
while shown: a refresh asked for while hidden just marks the pane stale, and it catches up when
its tab is next opened. This keeps both the first frame and opening a long session cheap.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events
from textual.containers import Vertical
from textual.widget import Widget


class DeferredPane(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown = False
        self._stale = True
        self._building: asyncio.Future[None] | None = None

    def build(self) -> list[Widget]:
        """The pane's widgets (subclasses)."""
        raise NotImplementedError

    def after_build(self) -> None:
        """Set-up that needs the built widgets (subclasses may override)."""

    def update_data(self) -> None:
        """Refresh what the pane shows; only called once built and while shown (subclasses)."""
        raise NotImplementedError

    @property
    def built(self) -> bool:
        return self._building is not None and self._building.done()

    async def ensure_built(self) -> None:
        """Mount the widgets once; concurrent callers all wait for the same mount."""
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
        await asyncio.shield(self._building)

    async def _build(self) -> None:
        await self.mount_all(self.build())
        self.after_build()

    def request_update(self) -> None:
        """Refresh now if the pane is on screen, else when it is next shown."""
        if self.shown and self.built:
            self._stale = False
            self.update_data()
        else:
            self._stale = True

    async def on_show(self, event: events.Show) -> None:
        self.shown = True
        await self.ensure_built()
        if self._stale:
            self._stale = False
            self.update_data()

    def on_hide(self, event: events.Hide) -> None:
        self.shown = False
