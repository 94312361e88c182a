"""A test tool with a visible side effect: ``tally`` appends its tag to the file named by
``$TALLY_FILE`` (outside the workspace, so a branch switch's file restore cannot undo a line).
Tests count its lines to check that a call ran exactly once per approval. ``LAUNCHER`` runs the
``openmanus`` command with the tool registered, for tests that need a real process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from openmanus_tui.tools.base import Risk, ToolContext, ToolRegistry, ToolResult, ToolSpec


class TallyArgs(BaseModel):
    tag: str = Field(description="What to append.")


async def _tally(ctx: ToolContext, args: TallyArgs) -> ToolResult:
    with open(os.environ["TALLY_FILE"], "a", encoding="utf-8") as f:
        f.write(args.tag + "\n")
    return ToolResult(f"tallied {args.tag}")


TALLY = ToolSpec(
    name="tally",
    description="Append a tag to the tally file.",
    args_model=TallyArgs,
    func=_tally,
    risk=Risk.EXECUTE,  # asks in every mode but yolo
)


def registry_with_tally(build: Callable[..., ToolRegistry] | None = None) -> ToolRegistry:
    if build is None:
        from openmanus_tui.tools.builtin import build_registry as build

    registry = build(plugins=False)
    registry.register(TALLY)
    return registry


def tallies(path: Path | None = None) -> list[str]:
    path = path or Path(os.environ["TALLY_FILE"])
    return path.read_text(encoding="utf-8").split() if path.exists() else []


# ``python -c LAUNCHER args...`` is ``openmanus args...`` with ``tally`` registered.
LAUNCHER = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import openmanus_tui.tools.builtin as builtin
from tally_tool import registry_with_tally
_build = builtin.build_registry
builtin.build_registry = lambda plugins=True: registry_with_tally(_build)
from openmanus_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""
