"""The ``openmanus`` command's entry point and its process-wide settings: the cycle collector's
tuning, made before anything heavy is imported, then the command line (``cli.main``).

Only a process started here is tuned (tests and embedding programs keep Python's defaults):
``configure_process`` raises the collector's first threshold for start-up; the workbench holds
the collector until its first frame (``hold_collector``, ``after_first_frame``) and calls
``settle_after_startup`` once its runtime is open.
"""

from __future__ import annotations

import gc

# Start-up creates about a million objects that live as long as the process (Textual, Rich, the
# parsed CSS, the widgets, then the agent stack). With CPython's default first threshold (700
# net allocations) the collector runs about 160 times before the first frame and frees almost
# nothing; at 50 000 it runs a handful of times, and the first frame comes 70-100 ms sooner
# (bench/startup.py).
STARTUP_THRESHOLD = 50_000
# Once started: young collections of at most this many objects take a few milliseconds each,
# so that none is a visible pause.
SETTLED_THRESHOLD = 10_000

_configured = False


def configure_process() -> None:
    global _configured
    _configured = True
    _, second, third = gc.get_threshold()
    gc.set_threshold(STARTUP_THRESHOLD, second, third)


def hold_collector() -> None:
    """The workbench, from the start of its app to its first frame: no collection at all.
    At STARTUP_THRESHOLD one still came in the middle of composing the first screen, and it
    walked everything imported so far to free a few hundred objects (10-15 ms of a ~280 ms
    first frame, bench/startup.py). ``after_first_frame`` turns it back on."""
    if _configured:
        gc.disable()


def after_first_frame() -> None:
    """What is alive at the first frame (the imports, the app, its widgets) lives as long as
    the process: out of the collector's sight (``gc.freeze``), then collections as before
    ``hold_collector`` (STARTUP_THRESHOLD until ``settle_after_startup``)."""
    if _configured and not gc.isenabled():
        gc.freeze()
        gc.enable()


def settle_after_startup() -> None:
    """Everything alive now (imports, the app, the runtime) lives as long as the process: move
    it out of the collector's sight (``gc.freeze``). Without this every full collection walks
    it all again — about 150 ms, once a second while a run streams (bench/tui_stream.py)."""
    if not _configured:
        return
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(SETTLED_THRESHOLD, second, third)


def main(argv: list[str] | None = None) -> int:
    configure_process()
    from openmanus_tui.cli import main as cli_main

    return cli_main(argv)
