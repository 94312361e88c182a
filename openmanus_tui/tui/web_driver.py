"""The workbench's driver in a browser tab (``openmanus serve --web`` runs one child per tab).

Textual's ``WebDriver`` talks to textual-serve over stdin/stdout. Three of its habits left
``openmanus`` processes behind when a tab closed or the server stopped (issue 11):

* End of input (the server went away, or closed our stdin) only ends its input thread; the app
  runs on, an orphan nobody can see.
* A quit request from the server, SIGTERM and SIGINT post ``ExitApp``, and the app's loop does
  stop, but the process then waits for the default executor: during start-up a thread is
  importing the agent stack (seconds of CPU), and exit waits for it. Further SIGTERMs post
  ``ExitApp`` again, to an app that has already stopped, so they are ignored.

``ServedDriver`` treats end of input like a quit request. Once the app is asked to go, the
process has ``EXIT_GRACE`` seconds to finish its own clean-up (the app's unmount: a run is
cancelled, the runtime and its SQLite connections closed) and, once the app has stopped,
``AFTER_STOP_GRACE`` seconds for the interpreter's own exit (atexit hooks: the sandbox's
support folder); then ``os._exit`` ends it. Neither is reached by an idle workbench; only a
busy thread (an import during start-up) or a stuck clean-up is cut short. A forced end is no
worse than a crash, which the store is built to survive (checkpoints, WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any

from textual import messages
from textual.app import App
from textual.drivers.web_driver import WebDriver

# From "go" to the process being gone at the latest: a closed tab's process is gone within
# 2 s; the app's normal shutdown takes well under 0.5 s.
EXIT_GRACE = 1.5
# From the app's stop to the process being gone at the latest (the interpreter's exit).
AFTER_STOP_GRACE = 0.5


class ServedDriver(WebDriver):
    """``WebDriver`` whose process always ends soon after its tab or its server goes."""

    def __init__(self, app: App[Any], *, debug: bool = False, mouse: bool = True,
                 size: tuple[int, int] | None = None) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._exit_timer: threading.Timer | None = None
        self._exit_deadline = float("inf")
        self._exit_lock = threading.Lock()

    def start_application_mode(self) -> None:
        super().start_application_mode()
        if sys.platform != "win32":
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.leave)  # replaces WebDriver's handler

    def run_input_thread(self) -> None:
        super().run_input_thread()
        # The loop ends at end of input, or because the app is stopping (exit_event). The
        # first means nobody can see or drive this app any more.
        if not self.exit_event.is_set():
            self.leave()

    def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
        if packet_type == "quit":  # textual-serve's request when the tab has gone
            self.leave()
        else:
            super().on_meta(packet_type, payload)

    def stop_application_mode(self) -> None:
        super().stop_application_mode()
        # The app has stopped (whatever the reason): nothing may keep the process alive now,
        # such as the default executor's thread still importing the agent stack.
        self._arm_exit_timer(AFTER_STOP_GRACE)

    def leave(self) -> None:
        """Stop the app, and the process within ``EXIT_GRACE`` seconds whatever it is doing.
        Safe from any thread, and to call more than once."""
        self._arm_exit_timer(EXIT_GRACE)
        self._app.post_message(messages.ExitApp())

    def _arm_exit_timer(self, delay: float) -> None:
        """End the process in ``delay`` seconds, unless an earlier end is already set."""
        with self._exit_lock:
            deadline = time.monotonic() + delay
            if deadline >= self._exit_deadline:
                return
            if self._exit_timer is not None:
                self._exit_timer.cancel()
            self._exit_deadline = deadline
            # A daemon thread: it must not itself keep the process alive.
            self._exit_timer = threading.Timer(delay, self._force_exit)
            self._exit_timer.daemon = True
            self._exit_timer.start()

    def _force_exit(self) -> None:
        for stream in (sys.__stderr__, sys.stderr):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        code = self._app.return_code
        os._exit(code if isinstance(code, int) else 0)
