"""Our own tables beside LangGraph's, on the process's one shared connection: each store
creates its table on first use (a database from an older version gains it then), once per
store object, under the checkpointer's lock so it never interleaves with its transactions."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from openmanus_tui.store.db import Database


class TableStore:
    """A store of one or a few tables. ``SCHEMA`` creates them (``IF NOT EXISTS``);
    ``CLEANUP`` statements run right after, e.g. to drop the rows of sessions deleted by a
    front end that did not know the table yet."""

    SCHEMA: ClassVar[str]
    CLEANUP: ClassVar[tuple[str, ...]] = ()

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ready = False

    async def setup(self) -> None:
        if self._ready:
            return
        async with self.db.saver.lock:
            await self.db.conn.executescript(self.SCHEMA)
            for statement in self.CLEANUP:
                await self.db.conn.execute(statement)
            await self.db.conn.commit()
        self._ready = True
