"""What the workbench tests share: building the app from settings overrides, waiting for a
condition while the app runs, typing into the prompt as a person would, and the notifications
the app raised."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from textual import events
from textual.keys import _character_to_key

from openmanus_tui.config import load_settings
from openmanus_tui.tui.app import OpenManusApp


def make_app(**overrides: object) -> OpenManusApp:
    """The app with its settings loaded from the test's config plus ``overrides``."""
    return OpenManusApp(load_settings(overrides or None), blink=False)  # type: ignore[arg-type]


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting for the app"
        await pilot.pause(0.02)


async def type_text(pilot: Any, text: str) -> None:
    """Type ``text`` into the focused widget: one key event per character, the same events as
    ``pilot.press`` sends, queued at once the way a fast typist's keys arrive; the app handles
    them in order, and we wait for it once. ``pilot.press`` waits for the process to look idle
    after every key (at least two 20 ms polls, up to two seconds under load), which made typing
    the slowest part of the workbench tests."""
    driver = pilot.app._driver
    for char in text:
        driver.send_message(events.Key(_character_to_key(char), char))
    await pilot.pause()


async def send(pilot: Any, text: str, *, close_menu: bool = False) -> None:
    """Click the prompt, type ``text`` and press Enter (``close_menu``: Escape first, which
    closes the slash-command completion menu)."""
    await pilot.click("#prompt")
    await type_text(pilot, text)
    if close_menu and text.startswith("/"):
        await pilot.press("escape")
    await pilot.press("enter")


def screen_text(app: Any) -> str:
    """The active screen as plain text, one line per terminal row (what a person reads)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def notices(app: Any) -> list[SimpleNamespace]:
    """Every notification ``app`` raised (``message``, ``severity``), in order, whether its
    toast is still up or not (recorded by conftest's ``record_notices``). ``app._notifications``
    drops one once its toast times out (5 s), and a loaded machine can take that long between
    the notify and a test's assertion."""
    return list(app.__dict__.get("_test_notices", []))
