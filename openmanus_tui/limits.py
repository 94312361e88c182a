"""Input limits: the task, the model's messages and tool results have a size, checked in one place.

Defaults (``[limits]`` in the config file, ``OPENMANUS_LIMITS__*`` in the environment):

- ``task_chars`` = 1,000,000: a longer task is refused with a one-line error (exit 2); an empty
  or whitespace-only task is refused too. Longer material belongs in a file in the workspace.
- ``message_chars`` = 1,000,000: a model reply longer than this is cut, with a marker saying so,
  before it is stored; messages already stored longer than this (sessions from before the limit)
  are cut the same way in the prompt, so such a session resumes.
- ``tool_result_chars`` = 1,000,000: a tool result (built-in, web, MCP) longer than this is cut
  before it is stored or shown to the model, and marked ``truncated``.

Text is also made storable here: lone surrogates (which UTF-8 cannot encode, and which a model or
an MCP server can send as ``\\ud800`` in JSON) become U+FFFD.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from openmanus_tui.errors import OpenManusError

DEFAULT_TASK_CHARS = 1_000_000
DEFAULT_MESSAGE_CHARS = 1_000_000
DEFAULT_TOOL_RESULT_CHARS = 1_000_000

_SURROGATE = re.compile("[\ud800-\udfff]")


class InputError(OpenManusError):
    """A task or other input the user gave cannot be used (empty, too large, unreadable)."""

    error_class = "user"


def scrub(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, so it can be encoded as UTF-8."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def scrub_value(value: Any) -> Any:
    """:func:`scrub` applied to every string inside a JSON-like value (keys too)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub_value(k): scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


def check_task(text: str, limit: int = DEFAULT_TASK_CHARS) -> str:
    """The task to run, or :class:`InputError` when it is empty or over ``limit`` characters."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(
            "the task is empty",
            hint='say what the agent should do: openmanus run "…", --task-file FILE, or - (stdin)',
        )
    if len(text) > limit:
        raise InputError(
            f"the task has {len(text):,} characters, over the limit of {limit:,}",
            hint="put the material in a file in the workspace and refer to it, "
            "or raise limits.task_chars",
        )
    return scrub(text)


def read_task(task: str | None, task_file: str | None, limit: int = DEFAULT_TASK_CHARS) -> str:
    """The task given as an argument, ``-`` (standard input) or ``--task-file FILE``.

    Reads at most a little over ``limit`` characters, so a huge file or pipe is refused
    without being loaded whole.
    """
    import sys

    if task is not None and task_file is not None:
        raise InputError("give the task as an argument or with --task-file, not both")
    if task_file is None and task != "-":
        if task is None:
            raise InputError(
                "no task given",
                hint='openmanus run "…", openmanus run --task-file FILE, or … | openmanus run -',
            )
        return task
    try:
        if task_file is not None:
            with open(task_file, encoding="utf-8", errors="strict") as f:
                text = f.read(limit + 1)
            where = task_file
        else:
            text, where = sys.stdin.read(limit + 1), "standard input"
    except FileNotFoundError:
        raise InputError(f"--task-file: {task_file}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"--task-file: {task_file} is a directory") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"the task in {task_file or 'standard input'} is not UTF-8 text "
                         f"(byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"cannot read the task from {task_file}: {exc.strerror}") from None
    if len(text) > limit:
        raise InputError(
            f"the task in {where} is over the limit of {limit:,} characters",
            hint="put the material in a file in the workspace and refer to it, "
            "or raise limits.task_chars",
        )
    return text


def cut(text: str, limit: int, what: str, setting: str) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters with a marker saying what was left out."""
    if len(text) <= limit:
        return text, False
    marker = (
        f"\n[… {len(text) - limit:,} more characters cut: the {what} had {len(text):,}, "
        f"over {setting} = {limit:,}]"
    )
    return text[:limit] + marker, True


def check_workspace(path: Path) -> Path:
    """``path`` resolved, if it is a directory or can be created as one; else :class:`InputError`.

    Checked before a session is created, so a bad ``--workspace`` (a file, ``/dev/null``, a
    folder under a file, a read-only place) leaves no session behind.
    """
    try:
        ws = Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise InputError(f"workspace {path}: {exc}") from None
    if ws.exists():
        if not ws.is_dir():
            kind = "a file" if ws.is_file() else "not a directory"
            raise InputError(
                f"workspace {path} is {kind}", hint="--workspace must name a directory"
            )
        if not os.access(ws, os.R_OK | os.W_OK | os.X_OK):
            raise InputError(f"workspace {path} is not writable by this user")
        return ws
    parent = ws.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"workspace {path} cannot be created: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"workspace {path} cannot be created: {parent} is not writable")
    return ws
