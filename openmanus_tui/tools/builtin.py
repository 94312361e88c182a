"""The small built-in tools (``terminate``, ``ask_human``) and the default registry.

The default registry holds every tier-1 tool the agent is given: the file tools, ``shell_exec``
and ``code_exec`` (which run in the sandbox), ``search_info``, ``web_fetch``, the memory tools
(``memory_save``, ``memory_search``, ``observation_read``), ``ask_human`` and ``terminate``,
plus any tools installed through the ``openmanus.tools`` entry-point group.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from openmanus_tui.tools.base import Risk, ToolContext, ToolRegistry, ToolResult, ToolSpec


class TerminateArgs(BaseModel):
    answer: str = Field(description="The final answer for the user.")


class AskHumanArgs(BaseModel):
    question: str = Field(description="One clear question for the user.")


async def _terminate(ctx: ToolContext, args: TerminateArgs) -> ToolResult:
    return ToolResult("The run ended here.")


async def _ask_human(ctx: ToolContext, args: AskHumanArgs) -> ToolResult:
    answer = await ctx.ask_human(args.question)
    return ToolResult(answer)


TERMINATE = ToolSpec(
    name="terminate",
    description="Finish the task and give the final answer to the user.",
    args_model=TerminateArgs,
    func=_terminate,
    risk=Risk.READ,
)

ASK_HUMAN = ToolSpec(
    name="ask_human",
    description="Ask the user a question and wait for the answer (use sparingly).",
    args_model=AskHumanArgs,
    func=_ask_human,
    risk=Risk.READ,
    timeout=3600,
)


def build_registry(*, plugins: bool = True) -> ToolRegistry:
    from openmanus_tui.tools.exec_tools import exec_tools
    from openmanus_tui.tools.file_tools import file_tools
    from openmanus_tui.tools.memory_tools import memory_tools
    from openmanus_tui.tools.search import search_tools
    from openmanus_tui.tools.web_fetch import web_tools

    tools = [*file_tools(), *exec_tools(), *search_tools(), *web_tools(), *memory_tools()]
    registry = ToolRegistry([*tools, ASK_HUMAN, TERMINATE])
    if plugins:
        registry.discover_entry_points()
    return registry
