"""Small UI state remembered between runs (the chosen theme), in ``ui-state.json`` in the data
folder, so that switching a theme never rewrites the person's TOML file.

Which theme starts: the remembered choice, unless ``ui.theme`` (config file, environment) has
changed since that choice was made — then the configuration wins, because it is the newer
intent. Concretely the file stores the configured theme next to the choice; a start-up whose
configured theme differs from the stored one uses the configured theme (and does not forget
the choice: a later start-up with the old configuration gets it back).

Before the settings are loaded (the workbench's first frame), ``guess_startup_theme`` applies
the same rule to the configured theme as the environment and the file say it, read without
validation; the app confirms the guess once the settings are in.

The welcome's facts (the model in use, the workspace, the approval mode) are remembered the
same way, with a fingerprint of everything the settings are made of (``settings_fingerprint``):
a start whose fingerprint matches the stored one shows them in its first frame, before pydantic
has read anything; the app refreshes them once the settings are in (they are the same unless
the check of the workspace folder found something new).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from openmanus_tui.paths import (
    DEFAULT_THEME,
    ENV_PREFIX,
    config_files,
    config_path,
    probable_data_dir,
)

STATE_FILE = "ui-state.json"


def state_path(settings: Any) -> Path:
    return Path(settings.resolved_data_dir) / STATE_FILE


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_ui_state(settings: Any) -> dict[str, Any]:
    """The stored state; an unreadable or broken file counts as empty (it is only a cache of
    choices, never worth refusing to start over)."""
    return _read_state(state_path(settings))


def choose_theme(state: dict[str, Any], configured: str) -> str:
    """The remembered choice, unless the configured theme changed since it was made."""
    chosen = state.get("theme")
    if isinstance(chosen, str) and chosen and state.get("config_theme") == configured:
        return chosen
    return configured


def guess_startup_theme() -> str:
    """``choose_theme`` before the settings exist: the configured theme from the environment
    or the config file's ``[ui]`` table (unvalidated), the state from the probable data folder.
    Wrong only when the file moves the data folder or fails validation; the app corrects it."""
    import tomllib

    configured = os.environ.get(f"{ENV_PREFIX}UI__THEME")
    if not configured:
        try:
            ui = tomllib.loads(config_path().read_text(encoding="utf-8")).get("ui", {})
            configured = ui.get("theme") if isinstance(ui, dict) else None
        except (OSError, ValueError):
            configured = None
    if not isinstance(configured, str) or not configured:
        configured = DEFAULT_THEME
    return choose_theme(_read_state(probable_data_dir() / STATE_FILE), configured)


# Environment variables whose values are secrets: only whether they are set is fingerprinted.
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def settings_fingerprint(overrides: dict[str, Any] | None) -> str:
    """What the settings are built from, known without building them: the config file and the
    environment's overlay (path, size, modification time, inode), every ``OPENMANUS_*`` and
    ``OPENAI_*`` variable (secrets as set or not), the command-line overrides and the folder."""
    file: list[Any] = []
    for path in config_files():  # the config file and the OPENMANUS_ENV overlay
        try:
            st = path.stat()
            file.append([str(path), st.st_size, st.st_mtime_ns, st.st_ino])
        except OSError:
            file.append([str(path), None])
    env = sorted(
        (name, bool(value) if any(w in name for w in _SECRET_WORDS) else value)
        for name, value in os.environ.items()
        if name.startswith((ENV_PREFIX, "OPENAI_"))
    )
    data = json.dumps([file, env, overrides or {}, os.getcwd()], default=str, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def remembered_welcome(fingerprint: str) -> dict[str, Any] | None:
    """The welcome facts stored by a start with the same fingerprint, else None."""
    stored = _read_state(probable_data_dir() / STATE_FILE).get("welcome")
    if isinstance(stored, dict) and stored.get("fingerprint") == fingerprint:
        info = stored.get("info")
        return info if isinstance(info, dict) else None
    return None


def remember_welcome(settings: Any, fingerprint: str, info: dict[str, Any]) -> None:
    """Store the facts for the next start (no write when they are stored already)."""
    entry = {"fingerprint": fingerprint, "info": info}
    if load_ui_state(settings).get("welcome") == entry:
        return
    try:
        save_ui_state(settings, welcome=entry)
    except OSError:
        pass  # a read-only data folder: the next start reads the configuration first


def save_ui_state(settings: Any, **changes: Any) -> None:
    """Merge ``changes`` into the file, atomically (a crash never leaves half a file)."""
    import tempfile  # only when writing: not on the way to the first frame

    path = state_path(settings)
    data = {**load_ui_state(settings), **changes}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ui-state.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ThemeMemory:
    """Decides the start-up theme and records later switches."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.current: str | None = None

    def startup_theme(self) -> str:
        self.current = choose_theme(load_ui_state(self.settings), self.settings.ui.theme)
        return self.current

    def remember(self, name: str) -> bool:
        """Store a switch to ``name``; False when it is what is already in use (no write)."""
        if name == self.current:
            return False
        self.current = name
        try:
            save_ui_state(self.settings, theme=name, config_theme=self.settings.ui.theme)
        except OSError:
            return False  # a read-only data folder: the switch still applies to this run
        return True
