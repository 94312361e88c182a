"""Hot reload: watch the config files and apply a valid change to a running runtime.

``ConfigReloader(runtime, overrides=..., on_result=...)`` is what a long-lived front end (the
workbench, an API server) starts once its runtime is open: ``watch()`` follows the config file
and the ``OPENMANUS_ENV`` overlay (``watchfiles``; the folders are watched, so an editor that
saves by renaming is seen too) and calls ``reload()`` after each change; ``reload()`` can also
be called directly (``/reload``-style commands, tests).

A reload loads the settings exactly as ``openmanus config validate`` does (the same overrides
from the command line, the same ``config_check.check_settings``). Invalid: nothing changes and
the result carries the same one line ``config validate`` prints. Valid:

- the new ``Settings`` object replaces the runtime's (``Runtime.apply_settings``): every
  session's next run uses it (model, approval mode, limits, network policy, sandbox bounds,
  memory; sections other engineers add later come along without code here), and sessions
  rebuild what they cached from the old one (their sandbox, their memory manager);
- what was changed while running and the files did not touch stays (``/approval`` in the
  workbench, a workspace the workbench refused): a change to the file wins, a change made by
  hand is not undone by an unrelated edit;
- settings that only take effect at start (the storage, the data folder, MCP servers) keep
  their running values and are named in ``ReloadResult.restart``;
- the configuration is recorded as a new version (``runtime/config_versions.py``), whose
  number the next run's ``run_started`` event carries.

The front end is told through ``on_result`` (a ``ReloadResult``), and updates what it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from openmanus_tui.errors import OpenManusError
from openmanus_tui.paths import config_files

if TYPE_CHECKING:
    from openmanus_tui.config import Settings
    from openmanus_tui.runtime.session import Runtime

# Settings read once, when the runtime opens: a reload names them instead of applying them.
RESTART_ONLY = ("storage.", "data_dir", "mcp.")
# How long the watcher waits for a burst of writes to end (watchfiles: ``step`` is the quiet
# time that ends a burst, ``debounce`` the longest burst), in milliseconds.
QUIET_MS = 100
LONGEST_BURST_MS = 400

OnResult = Callable[["ReloadResult"], Awaitable[None] | None]


@dataclass
class ReloadResult:
    applied: bool
    error: str | None = None  # the one line `config validate` prints
    hint: str = ""
    changed: list[str] = field(default_factory=list)  # "section.key" applied
    restart: list[str] = field(default_factory=list)  # changed, applies at the next start
    version: int | None = None


def settings_fields(settings: Any) -> dict[str, Any]:
    """``{"section.key": value}`` for every setting, ``{"name": value}`` for the top-level
    ones that are not sections (``data_dir``)."""
    out: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            for key in type(value).model_fields:
                out[f"{name}.{key}"] = getattr(value, key)
        else:
            out[name] = value
    return out


def _set(settings: Any, key: str, value: Any) -> None:
    section, _, name = key.partition(".")
    if name:
        setattr(getattr(settings, section), name, value)
    else:
        setattr(settings, section, value)


def merge_running(
    current: Settings, before: Settings, after: Settings
) -> tuple[list[str], list[str]]:
    """Turn ``after`` (the newly loaded settings) into what the runtime should run with, in
    place: values changed while running (``current`` differs from ``before``, what was loaded
    last) stay unless the files changed them too, and start-only settings keep ``current``'s.
    Returns (the keys that change, the start-only keys the files changed)."""
    cur, old, new = settings_fields(current), settings_fields(before), settings_fields(after)
    restart: list[str] = []
    for key, value in cur.items():
        file_changed = new.get(key) != old.get(key)
        if key.startswith(RESTART_ONLY):
            if new.get(key) != value:
                if file_changed:
                    restart.append(key)
                _set(after, key, value)
        elif value != old.get(key) and not file_changed:
            _set(after, key, value)  # changed while running; the files left it alone
    merged = settings_fields(after)
    changed = [k for k in merged if merged[k] != cur.get(k)]
    return changed, restart


class ConfigReloader:
    """Watches the configuration of one runtime and applies valid changes to it."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        overrides: dict[str, Any] | None = None,
        on_result: OnResult | None = None,
    ) -> None:
        self.runtime = runtime
        self.overrides = overrides
        self.on_result = on_result
        self._loaded: Settings | None = None  # the settings as the files said, last time
        self._stop: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        # Set once the files are watched: a change made after it is seen.
        self.watching = asyncio.Event()

    def paths(self) -> list[Path]:
        """The files watched: the config file and the ``OPENMANUS_ENV`` overlay."""
        return [Path(os.path.abspath(p)) for p in config_files()]

    async def _load(self) -> Settings:
        from openmanus_tui.config import load_settings
        from openmanus_tui.config_check import check_settings

        settings = await asyncio.to_thread(load_settings, self.overrides)
        await asyncio.to_thread(check_settings, settings)  # what `config validate` checks
        return settings

    async def start(self) -> None:
        """Take the files' settings as they are now as the baseline (what the runtime was
        opened with); the first ``reload`` compares with it."""
        if self._loaded is not None:
            return
        try:
            self._loaded = await self._load()
        except OpenManusError:
            self._loaded = self.runtime.settings.model_copy(deep=True)

    async def reload(self) -> ReloadResult:
        """Load the files again and apply them when they are valid (see the module doc)."""
        from openmanus_tui.config_snapshot import take_snapshot
        from openmanus_tui.runtime.config_versions import record_snapshot

        async with self._lock:
            await self.start()
            assert self._loaded is not None
            try:
                loaded = await self._load()
                snapshot = await asyncio.to_thread(take_snapshot)
            except OpenManusError as exc:
                result = ReloadResult(applied=False, error=exc.message, hint=exc.hint)
            else:
                new = loaded.model_copy(deep=True)
                changed, restart = merge_running(self.runtime.settings, self._loaded, new)
                self._loaded = loaded
                version = await record_snapshot(self.runtime.db, snapshot, "reload")
                if changed:
                    self.runtime.apply_settings(new, version)
                elif version is not None:
                    self.runtime.config_version = version
                result = ReloadResult(
                    applied=bool(changed), changed=changed, restart=restart, version=version
                )
        await self._tell(result)
        return result

    async def _tell(self, result: ReloadResult) -> None:
        if self.on_result is None:
            return
        outcome = self.on_result(result)
        if asyncio.iscoroutine(outcome):
            await outcome

    async def watch(self) -> None:
        """Reload after every change to a watched file, until ``stop()`` (or cancellation)."""
        import watchfiles

        await self.start()
        watched = {p.parent: set() for p in self.paths()}  # type: dict[Path, set[str]]
        for p in self.paths():
            watched[p.parent].add(p.name)
        for folder in watched:
            # The config folder may not exist yet (no file written so far): made, so that a
            # file created later is seen too.
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True)
        folders = [d for d in watched if d.is_dir()]
        if not folders:
            return

        def interesting(_change: Any, path: str) -> bool:
            p = Path(path)
            return p.name in watched.get(p.parent, ())

        self._stop = asyncio.Event()
        changes = watchfiles.awatch(
            *folders,
            watch_filter=interesting,
            step=QUIET_MS,
            debounce=LONGEST_BURST_MS,
            stop_event=self._stop,
            recursive=False,
        )
        # awatch's first step makes the inotify watches, before it first gives the loop
        # away: whoever waits for ``watching`` runs after that.
        self.watching.set()
        async for _changes in changes:
            # A failure to record or tell (a database error) must not end the watching.
            with contextlib.suppress(Exception):
                await self.reload()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
