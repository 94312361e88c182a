"""The program's own state stays out of the sandbox's reach (escape 1 of issue 12).

State is everything that decides what the next ``openmanus`` run does on the host: the config
file and folder, the data folder (database, snapshot store, logs, MCP trust store), the cache
folder and an MCP config file. A sandboxed command that can write any of it can start a command
on the host the next time (an MCP stdio server) or rewrite the approval rules.

Per case:

* **The workspace is one of these folders, inside one (other than the per-session workspaces
  under the data folder), or above one** (``--workspace ~`` or ``/``): refused, one line, exit 2.
  A read-only bind would not be enough: a command that can write the *parent* of a protected
  folder can rename the folder away and put its own in its place, and SQLite writes ``-wal``,
  ``-shm`` and ``-journal`` files next to the database that no bind made in advance can cover.
  The database counts as a folder for this reason.
* **A state file inside the workspace** (a project-local config file named by ``--config`` /
  ``OPENMANUS_CONFIG``, or an MCP config file): allowed, and **masked** (an empty read-only file
  is mounted over it, so it is neither readable - it may hold an API key - nor writable) with
  every folder between it and the workspace **pinned** (bound onto itself: a mount point cannot
  be renamed, so the file cannot be moved away and replaced). This needs a mount namespace:
  as root (every level) or at L3; otherwise such a workspace is refused as well.

The host-side file tools refuse every state path inside the workspace (``denied_paths``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openmanus_tui.errors import SandboxError

WORKSPACES_FOLDER = "workspaces"  # per-session workspaces under the data folder


@dataclass(frozen=True)
class StateItem:
    path: Path  # absolute, symlinks resolved
    label: str
    folder: bool  # a folder (or the database): never inside a workspace


class WorkspaceRefused(SandboxError):
    """The workspace would put the program's own state in the sandbox's reach."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint=hint, error_class="user")


def _resolve(path: Path | str) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def program_state(settings: Any | None = None) -> list[StateItem]:
    """Where this process keeps its state (from ``settings``, else the environment)."""
    import platformdirs

    from openmanus_tui import paths

    if settings is None:
        settings = _settings_or_none()
    items: list[StateItem] = []
    config_file = paths.config_path()
    default_config_dir = Path(platformdirs.user_config_dir(paths.APP_NAME))
    items.append(StateItem(_resolve(default_config_dir), "config folder", True))
    if _resolve(config_file).parent != _resolve(default_config_dir):
        items.append(StateItem(_resolve(config_file), "config file", False))
    overlay = paths.overlay_path()  # OPENMANUS_ENV's config.<env>.toml, next to the file
    if overlay is not None and _resolve(overlay).parent != _resolve(default_config_dir):
        items.append(StateItem(_resolve(overlay), "config overlay file", False))
    data_dir = settings.resolved_data_dir if settings is not None else paths.probable_data_dir()
    items.append(StateItem(_resolve(data_dir), "data folder", True))
    items.append(StateItem(_resolve(paths.default_data_dir()), "data folder", True))
    items.append(
        StateItem(_resolve(platformdirs.user_cache_dir(paths.APP_NAME)), "cache folder", True)
    )
    if settings is not None:
        try:
            items.append(StateItem(_resolve(settings.db_path), "database", True))
        except Exception:  # an unsupported storage.url is reported elsewhere
            pass
        if settings.mcp.config_file:
            items.append(StateItem(_resolve(settings.mcp.config_file), "MCP config file", False))
    mcp_env = os.environ.get("OPENMANUS_MCP_CONFIG")
    if mcp_env:
        items.append(StateItem(_resolve(mcp_env), "MCP config file", False))
    seen: set[Path] = set()
    unique = []
    for item in items:
        if item.path not in seen:
            seen.add(item.path)
            unique.append(item)
    return unique


_cache: dict[tuple[str | None, ...], Any] = {}


def _settings_or_none() -> Any | None:
    """The settings as ``openmanus`` would load them now (cached per environment)."""
    from openmanus_tui import paths

    key = tuple(
        os.environ.get(k)
        for k in ("OPENMANUS_CONFIG", "OPENMANUS_ENV", "OPENMANUS_DATA_DIR",
                  "OPENMANUS_STORAGE__PATH", "HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
    )
    try:
        stamp = str(paths.config_path().stat().st_mtime_ns)
    except OSError:
        stamp = ""
    key = (*key, stamp)
    if key not in _cache:
        try:
            from openmanus_tui.config import load_settings

            _cache[key] = load_settings()
        except Exception:  # a broken config file: judge by the environment alone
            _cache[key] = None
    return _cache[key]


def _within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def check_workspace(
    workspace: Path, items: list[StateItem], *, can_mask: bool = True
) -> list[StateItem]:
    """Refuse a workspace that would expose state; returns the state files to mask inside it."""
    ws = _resolve(workspace)
    to_mask: list[StateItem] = []
    hint = "choose a project folder that does not contain openmanus's own files"
    for item in items:
        if item.folder:
            if _within(item.path, ws):
                what = "is" if item.path == ws else "contains"
                raise WorkspaceRefused(
                    f"workspace {ws} {what} openmanus's {item.label} ({item.path}); "
                    "a sandboxed command could change what the next run does on the host",
                    hint=hint,
                )
            if _within(ws, item.path) and not (
                item.label == "data folder" and _within(ws, item.path / WORKSPACES_FOLDER)
            ):
                raise WorkspaceRefused(
                    f"workspace {ws} is inside openmanus's {item.label} ({item.path})", hint=hint
                )
        elif _within(item.path, ws):
            if item.path == ws:
                raise WorkspaceRefused(f"workspace {ws} is openmanus's {item.label}", hint=hint)
            if not can_mask:
                raise WorkspaceRefused(
                    f"workspace {ws} contains openmanus's {item.label} ({item.path}), which "
                    "this isolation level cannot hide from commands (it needs root or L3)",
                    hint="move the file out of the workspace, or use L3",
                )
            to_mask.append(item)
    return to_mask


def mask_plan(workspace: Path, to_mask: list[StateItem]) -> list[tuple[str, str]]:
    """``(relative path, how)`` protections: pins for the folders between, then the masks."""
    ws = _resolve(workspace)
    pins: list[str] = []
    masks: list[str] = []
    for item in to_mask:
        rel = item.path.relative_to(ws)
        for i in range(1, len(rel.parts)):
            parent = "/".join(rel.parts[:i])
            if parent not in pins:
                pins.append(parent)
        masks.append(str(rel))
    pins.sort(key=lambda p: p.count("/"))
    return [(p, "pin") for p in pins] + [(m, "mask") for m in masks]


def denied_paths(workspace: Path | str) -> list[Path]:
    """State paths at or below ``workspace``: the host-side file tools refuse them."""
    ws = _resolve(workspace)
    items = program_state()
    out = [item.path for item in items if _within(item.path, ws)]
    for item in items:
        if item.folder and _within(ws, item.path) and not (
            item.label == "data folder" and _within(ws, item.path / WORKSPACES_FOLDER)
        ):
            out.append(ws)  # the workspace is inside the state: all of it is off limits
    return out


def ensure_workspace_allowed(workspace: Path | str | None, settings: Any | None = None) -> None:
    """For the command line: refuse a configured workspace before a run starts (exit 2)."""
    if workspace is None:
        return
    check_workspace(Path(workspace), program_state(settings), can_mask=True)
