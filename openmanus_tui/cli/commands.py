"""The list of ``openmanus`` commands: one line per command module of this package, in the
order ``openmanus --help`` lists them. Adding a command: add its module, then its line here."""

from __future__ import annotations

import importlib
from types import ModuleType

COMMANDS: list[str] = [
    "run",
    "research",
    "resume",
    "sessions",
    "fork",
    "switch",
    "replay",
    "diff",
    "export",
    "import_",  # `import` is a Python keyword
    "config",
    "secrets",
    "db",
    "cache",
    "mcp",
    "git",
    "doctor",
    "fetch",
    "serve",
    "write",
    "cite",
]


def command_modules() -> list[ModuleType]:
    """The command modules, imported (each must stay cheap to import: see ``common.py``)."""
    return [importlib.import_module(f"openmanus_tui.cli.{name}") for name in COMMANDS]
