"""A per-command write budget for the workspace: how much it may grow while one command runs.

What is bounded, honestly: ``RLIMIT_FSIZE`` stops any single file at ``min(max_file_mb,
workspace_write_mb)`` (the kernel, exact). Growth across many files is measured: the
workspace's disk usage (allocated blocks, so sparse files count for what they really use) is
summed before the command, polled while it runs and summed after. When the growth passes the
budget the command is killed and told why. Between two polls a command can write more than the
budget (about ``write speed x poll interval``; the interval is 0.25 s, or longer for a workspace
that takes long to walk). Nothing written is deleted: the user's files stay theirs. Private
``/tmp`` at L3 has its own size cap (``tmp_size_mb``); other paths are not writable at L1+.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

MiB = 1024 * 1024
POLL_S = 0.25


def disk_usage(root: Path) -> int:
    """Bytes allocated to everything under ``root`` (links not followed, errors skipped)."""
    total = 0
    stack = [str(root)]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


class WorkspaceWatch:
    """Measures one command's workspace growth; ``tripped`` is set when it passes the budget."""

    def __init__(self, workspace: Path, budget_mb: int) -> None:
        self.workspace = workspace
        self.budget = budget_mb * MiB
        self.before = 0
        self.grown = 0
        self.tripped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._interval = POLL_S

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    async def _measure(self) -> int:
        t0 = time.perf_counter()
        used = await asyncio.to_thread(disk_usage, self.workspace)
        # a workspace that takes long to walk is walked less often (at most ~20% of a core)
        self._interval = max(POLL_S, 4 * (time.perf_counter() - t0))
        return used

    async def start(self) -> None:
        if self.enabled:
            self.before = await self._measure()

    def watch(self) -> None:
        """Start polling (after the command has started)."""
        if self.enabled:
            self._task = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.grown = max(self.grown, await self._measure() - self.before)
            if self.grown > self.budget:
                self.tripped.set()
                return

    async def finish(self) -> int:
        """Stop polling and return the growth in bytes (0 when disabled)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # the watch is advisory
                pass
        if not self.enabled:
            return 0
        self.grown = max(self.grown, await self._measure() - self.before)
        return self.grown

    def note(self) -> str:
        return (
            f"the workspace grew by {self.grown / MiB:.1f} MiB during this command, over the "
            f"per-command write budget of {self.budget // MiB} MiB"
        )
