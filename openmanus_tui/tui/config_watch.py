"""The workbench's side of hot reload: start the runtime's ``ConfigReloader`` once the runtime
is open, and show what a reload did.

Applied: the app takes the runtime's new settings (the status line's approval mode, the
welcome, the keymap, a changed ``ui.theme``) and says which settings changed. Refused: the same
one line ``openmanus config validate`` prints, as an error toast; nothing changes. The logic
(loading, validating, merging with changes made while running, versions) is the core's
(``runtime/config_reload.py``); this module only shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from openmanus_tui.runtime.config_reload import ConfigReloader, ReloadResult

SHOWN_KEYS = 6  # more changed settings are counted, not named


def start_config_watch(app: Any) -> ConfigReloader:
    """Watch the config files for ``app`` (its runtime must be open); ``stop_config_watch``
    ends it. A plain task, not a Textual worker: it runs as long as the app, and waiting for
    the app's workers to complete (tests, screenshots) must not wait for it."""
    reloader = ConfigReloader(
        app.runtime, overrides=app._overrides, on_result=lambda r: show_reload(app, r)
    )

    async def watch() -> None:
        try:
            await reloader.watch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no inotify (a watch limit reached): say so, keep running
            app.notify(f"Config file changes are not followed: {exc}", severity="warning")

    app._config_watch_task = asyncio.create_task(watch(), name="config-watch")
    return reloader


async def stop_config_watch(app: Any) -> None:
    task = getattr(app, "_config_watch_task", None)
    if app.config_reloader is not None:
        app.config_reloader.stop()
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def show_reload(app: Any, result: ReloadResult) -> None:
    if result.error is not None:
        app.notify(result.error + (f"\n{result.hint}" if result.hint else ""),
                   title="Configuration change refused: the running configuration stays",
                   severity="error", timeout=15)
        return
    if result.restart:
        app.notify(f"{_names(result.restart)}: applies at the next start",
                   severity="warning", timeout=10)
    if not result.applied:
        return
    old = app.settings
    app.settings = app.runtime.settings
    new = app.settings
    if app.session is None:
        app._status_from_settings()  # the model and profile a new session will get
    if new.ui.keymap != old.ui.keymap:
        app.set_keymap(new.ui.keymap)
    if new.ui.theme != old.ui.theme and new.ui.theme in app.available_themes:
        app.theme = new.ui.theme
    app._refresh_welcome()
    app.refresh_status(keep_state=app.status.state == "awaiting approval")
    version = f" (version {result.version})" if result.version is not None else ""
    app.notify(f"{_names(result.changed)}", title=f"Configuration reloaded{version}",
               timeout=6)
