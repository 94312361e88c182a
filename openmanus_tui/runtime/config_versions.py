"""Configuration versions: record what was applied, list, compare, roll back.

Every configuration a process applies is recorded (``record_applied``): when a runtime opens
(``start``), after each hot reload (``reload``, ``runtime/config_reload.py``) and after a
rollback (``rollback N``). The runtime keeps the number of the version in force
(``Runtime.config_version``), and each run's ``run_started`` event carries it.

``rollback`` writes a version's files back over the current ones (each current file is copied
to ``config-backups/`` in the data folder first, never next to the config, which may sit in a
workspace), putting plain-text secrets the history masked back from the current files.
A workbench or API server that is running picks the change up like any other edit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openmanus_tui.config_snapshot import (
    ConfigSnapshot,
    files_diff,
    restore_text,
    settings_changes,
    take_snapshot,
)
from openmanus_tui.errors import ConfigError, OpenManusError
from openmanus_tui.paths import config_env, config_files
from openmanus_tui.store.config_versions import ConfigVersion, ConfigVersions

if TYPE_CHECKING:
    from openmanus_tui.config import Settings
    from openmanus_tui.store.db import Database

BACKUP_FOLDER = "config-backups"

__all__ = [
    "ConfigVersion",
    "RollbackResult",
    "config_database",
    "describe_diff",
    "get_version",
    "list_versions",
    "record_applied",
    "record_snapshot",
    "rollback",
]


async def record_snapshot(db: Database, snapshot: ConfigSnapshot, source: str) -> int | None:
    """Store ``snapshot`` as applied now; its version number (None on a read-only file)."""
    if db.damaged is not None:
        return None
    return await ConfigVersions(db).record(source, snapshot.hash, snapshot.content())


async def record_applied(db: Database, source: str) -> int | None:
    """Record the configuration the files hold now; None when they cannot be read as a
    valid configuration (the caller's settings came from elsewhere, or the file changed
    since: the next reload records it) or the database is read-only."""
    if db.damaged is not None:
        return None
    try:
        snapshot = await asyncio.to_thread(take_snapshot)
    except OpenManusError:
        return None
    return await record_snapshot(db, snapshot, source)


@contextlib.asynccontextmanager
async def config_database(settings: Settings) -> AsyncIterator[Database]:
    """The database alone (no runtime, no MCP servers), for the ``config`` commands."""
    from openmanus_tui.store.db import Database

    db = await Database.open(settings.db_path)
    try:
        yield db
    finally:
        await db.close()


async def list_versions(db: Database) -> list[ConfigVersion]:
    return await ConfigVersions(db).list()


async def get_version(db: Database, version: int) -> ConfigVersion:
    found = await ConfigVersions(db).get(version)
    if found is None:
        raise ConfigError(
            f"no configuration version {version}", hint="`openmanus config history` lists them."
        )
    return found


def describe_diff(a: ConfigVersion, b: ConfigVersion) -> str:
    """The settings that differ between two versions (``key: old → new``), then the
    unified diff of their files (secrets masked in both)."""
    changes = settings_changes(a.content.get("settings", {}), b.content.get("settings", {}))
    files = files_diff(
        a.content.get("files", {}), b.content.get("files", {}), f"version {a.id}", f"version {b.id}"
    )
    if not changes and not files:
        return f"versions {a.id} and {b.id} are the same configuration\n"
    out = [f"settings ({len(changes)} changed):\n", *(f"  {line}\n" for line in changes)]
    if files:
        out += ["\n", files]
    return "".join(out)


@dataclass
class RollbackResult:
    version: int
    written: list[Path] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)
    new_version: int | None = None


def _backup(path: Path, folder: Path, stamp: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.name}.{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{path.name}.{stamp}-{n}"
    # 0600: the current file may hold a plain-text key.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(path.read_bytes())
    return target


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(f".{path.name}.{os.getpid()}.rollback")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)  # one rename: a watcher never reads half a file


async def rollback(db: Database, settings: Settings, version: int) -> RollbackResult:
    """Write version ``version``'s files back (current ones backed up first) and record the
    result as a new version. Refused, changing nothing, when the version was read from
    other files or another ``OPENMANUS_ENV``, or a masked secret has nowhere to come from."""
    from openmanus_tui.config import load_settings

    target = await get_version(db, version)
    stored: dict[str, Any] = target.content.get("files", {})
    env = target.content.get("env")
    if env != config_env():
        raise ConfigError(
            f"version {version} was applied with OPENMANUS_ENV={env or '(unset)'}, "
            f"not {config_env() or '(unset)'}: set it the same to roll back"
        )
    current = [str(p) for p in config_files()]
    if sorted(stored) != sorted(current):
        raise ConfigError(
            f"version {version} was read from {', '.join(sorted(stored))}, "
            f"the configuration now is {', '.join(current)}"
        )
    plan: list[tuple[Path, str | None]] = []
    for name, text in stored.items():
        path = Path(name)
        now = path.read_text(encoding="utf-8") if path.exists() else None
        plan.append((path, restore_text(text, now, name, version) if text is not None else None))
    result = RollbackResult(version)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = settings.resolved_data_dir / BACKUP_FOLDER
    for path, text in plan:
        if path.exists():
            result.backups.append(_backup(path, folder, stamp))
        if text is None:
            if path.exists():
                path.unlink()  # absent in that version (backed up above)
        else:
            _write(path, text)
        result.written.append(path)
    try:
        await asyncio.to_thread(load_settings)  # the restored files must load as they did
    except ConfigError as exc:
        raise ConfigError(
            f"version {version} was written back but does not load now: {exc.message}",
            hint=f"The previous files are in {folder}.",
        ) from None
    result.new_version = await record_applied(db, f"rollback {version}")
    return result
