"""A test tool with a visible side effect: ``tally`` appends its tag to the file named by
``$TALLY_FILE`` (outside the workspace, so a branch switch's file restore cannot undo a line).
Tests count its lines to check that a call ran exactly once per approval. ``LAUNCHER`` runs the
``openmanus`` command with the tool registered, for tests that need a real process.

What the tests of approvals around it share: ``open_ask_runtime`` (approval mode ``ask``, the
tool registered), ``approve_all``, ``tally_script`` and ``task_responder`` for the loopback
model; the ``tally_server`` fixture (``conftest.py``) points the test at that model and at a
fresh tally file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from openmanus_tui.tools.base import Risk, ToolContext, ToolRegistry, ToolResult, ToolSpec

if TYPE_CHECKING:
    from openai_server import Reply, Responder

    from openmanus_tui import events as ev
    from openmanus_tui.agent.approval import Decision
    from openmanus_tui.runtime.session import Runtime


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


async def open_ask_runtime() -> Runtime:
    """A runtime with the test's settings in approval mode ``ask`` and ``tally`` registered."""
    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime.session import Runtime

    return await Runtime.open(
        load_settings({"approval": {"mode": "ask"}}), registry=registry_with_tally()
    )


async def approve_all(request: ev.ApprovalRequested) -> dict[str, Decision]:
    from openmanus_tui.agent.approval import Decision

    return {c.call_id: Decision(decision="approve") for c in request.calls}


def tally_script(tag: str) -> list[Reply]:
    """The model's turns for the task "count TAG": tally TAG1, then TAG2, then "done TAG"."""
    from openai_server import Reply, ToolCallSpec

    return [
        Reply(text=f"First {tag}.", tool_calls=[ToolCallSpec("tally", {"tag": f"{tag}1"})]),
        Reply(text=f"Second {tag}.", tool_calls=[ToolCallSpec("tally", {"tag": f"{tag}2"})]),
        Reply(text=f"done {tag}"),
    ]


def task_responder(scripts: dict[str, list[Reply]]) -> Responder:
    """A responder that plays ``scripts[the last user message]``, one reply per model turn
    since that message (the last reply again past the end)."""
    from openai_server import assistant_turns_since_user

    def respond(body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        user = [m["content"] for m in messages if m["role"] == "user"][-1]
        script = scripts[user]
        return script[min(assistant_turns_since_user(messages), len(script) - 1)]

    return respond


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
