"""Reading answers at the terminal without holding the process hostage.

A blocking read run through ``asyncio.to_thread`` lives in the loop's default executor, which
``asyncio.run`` joins at exit: after Ctrl+C at an approval prompt the process printed
"Interrupted" and then sat in that read until a line was typed, and the line was taken as an
answer. Here the read runs in a daemon thread (never joined) and reads file descriptor 0
directly (no ``sys.stdin`` buffer lock that the interpreter's shutdown would wait for), so
cancelling the awaiting coroutine ends the wait at once and the process can exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def read_line(prompt: str) -> str:
    """Print ``prompt`` to stderr and read one line from standard input (EOFError at its end)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    data = bytearray()
    while True:
        chunk = os.read(0, 1)
        if not chunk:
            if not data:
                raise EOFError
            break
        if chunk == b"\n":
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()


async def in_daemon_thread(func: Callable[..., T], *args: object) -> T:
    """``await func(*args)`` run in a daemon thread; cancelling the await abandons the call."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if future.done():
            return  # cancelled meanwhile
        if ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            future.set_exception(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            outcome: tuple[bool, object] = (True, func(*args))
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(deliver, *outcome)

    threading.Thread(target=work, name="terminal-input", daemon=True).start()
    return await future
