"""Conventions shared by the sandbox utilities (``manus-*`` commands).

Exit codes: 0 success, 2 the invocation is wrong (bad flags, missing input file, bad JSON,
unknown server, invalid config), 1 the work itself failed. Every failure prints exactly one
line on stderr, ``<prog>: error: <message>``; no traceback unless ``OPENMANUS_DEBUG`` is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

EXIT_CODES_HELP = "Exit status: 0 ok, 1 the operation failed, 2 usage error (bad arguments/input)."


class UsageError(Exception):
    """The invocation is wrong; exits with status 2."""


class Failure(Exception):
    """The work failed for a reason outside the caller's arguments; exits with status 1."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line (argparse prints usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


Body = Callable[[Sequence[str] | None], int]


def run_main(prog: str, body: Body, argv: Sequence[str] | None) -> int:
    """Run ``body`` and turn the errors it raises into the exit-code convention above."""
    try:
        return body(argv)
    except UsageError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Failure as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A bug rather than a user mistake; the traceback is available on request.
        if os.environ.get("OPENMANUS_DEBUG"):
            raise
        print(f"{prog}: error: unexpected {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
