"""``openmanus serve --web``: textual-serve, with each tab's workbench process kept on a leash.

textual-serve (1.1) starts one child per browser tab through ``/bin/sh -c`` and, when the tab
goes, sends it a quit request and waits for its output to end, however long that takes. When
the server is stopped it first waits up to 60 s for open tabs, and then kills only the shell:
the ``openmanus`` process under it ran on as an orphan (issue 11). Here:

* each child is started directly (no shell) in a session of its own, so the child and
  anything it started can be signalled as one process group, and a Ctrl+C in the server's
  terminal reaches the server only, which then stops its children itself;
* each child runs ``ServedDriver`` (``tui/web_driver.py``): it leaves when its input ends or
  it is told to quit or gets SIGTERM, within a bounded time;
* stopping a tab's app is bounded: quit request and end of input, then SIGTERM to the group,
  then SIGKILL; and the server's shutdown stops every child before it closes the tabs.

Only ``cli/serve.py`` imports this module (it is a front end: the core never imports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
from typing import Any

from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger("openmanus.serve")

DRIVER = "openmanus_tui.tui.web_driver:ServedDriver"
# How long a child has to leave after the quit request (its own driver ends it within 1.5 s),
# then after SIGTERM, before the next step.
QUIT_GRACE = 2.5
TERM_GRACE = 2.0


class WorkbenchService(AppService):
    """One tab's workbench process."""

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        super().__init__(shlex.join(argv), **kwargs)
        self.argv = argv
        self._stopping: asyncio.Task[None] | None = None
        self._drawn = False  # the child has sent output: its driver runs (and handles quit)

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width=width, height=height)
        environment["TEXTUAL_DRIVER"] = DRIVER
        return environment

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,  # its own process group; away from the terminal's Ctrl+C
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def on_data(self, payload: bytes) -> None:
        self._drawn = True
        await super().on_data(payload)

    async def stop(self) -> None:
        """Stop the app and wait (a bounded time) until its process group is gone. Safe to
        call more than once and from several tasks; a cancelled caller does not cut it short."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(Exception):
                await self._download_manager.cancel_app_downloads(
                    app_service_id=self.app_service_id
                )
            await self.send_meta({"type": "quit"})
            # End of input too: a child that cannot read the request yet sees it end.
            with contextlib.suppress(Exception):
                self.stdin.close()
            if not self._drawn:
                # Still importing Textual, before its driver reads input (a second or more
                # on a busy machine): it has opened nothing yet, SIGTERM's default ends it now.
                _signal_group(process.pid, signal.SIGTERM)
            if not await _exited(process, QUIT_GRACE):
                log.warning("workbench pid %s ignored quit; sending SIGTERM", process.pid)
                _signal_group(process.pid, signal.SIGTERM)
                if not await _exited(process, TERM_GRACE):
                    log.warning("workbench pid %s ignored SIGTERM; killing it", process.pid)
                    _signal_group(process.pid, signal.SIGKILL)
                    await _exited(process, TERM_GRACE)
        if process is not None:
            # Whatever the child started in its group (MCP servers, say) goes with it.
            _signal_group(process.pid, signal.SIGKILL)
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, TERM_GRACE)  # reads the last output
            self._task = None

    def kill_now(self) -> None:
        """Last resort when no event loop is left to stop it properly."""
        if self._process is not None:
            _signal_group(self._process.pid, signal.SIGKILL)


async def _exited(process: asyncio.subprocess.Process, timeout: float) -> bool:
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        return False
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class WorkbenchServer(Server):
    """textual-serve's server with ``WorkbenchService`` children and a shutdown that stops
    them all (tabs still open included) before it returns."""

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        super().__init__(shlex.join(argv), **kwargs)
        self.argv = argv
        self._services: set[WorkbenchService] = set()
        self._sockets: set[web.WebSocketResponse] = set()

    def serve(self, debug: bool = False) -> None:
        try:
            super().serve(debug=debug)
        finally:
            for service in list(self._services):
                service.kill_now()

    async def on_shutdown(self, app: web.Application) -> None:
        # Without this, aiohttp waits up to 60 s for each open tab to close by itself.
        await asyncio.gather(*(s.stop() for s in list(self._services)),
                             return_exceptions=True)
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopped")
              for ws in list(self._sockets)),
            return_exceptions=True,
        )

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's handler, with our service and its bookkeeping."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: WorkbenchService | None = None
        try:
            await websocket.prepare(request)
            self._sockets.add(websocket)
            service = WorkbenchService(
                self.argv,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            self._services.add(service)
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:
            log.exception(error)
        finally:
            if service is not None:
                await service.stop()
                self._services.discard(service)
            self._sockets.discard(websocket)
        return websocket
