"""The tool schemas are built once, not at every run (pydantic's JSON schema of every tool cost
~44 ms a run), and are built again as soon as what they come from changes: a tool registered
later, one replaced under the same name, a description edited in place."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from openmanus_tui.tools.base import ToolContext, ToolRegistry, ToolResult, ToolSpec


class NoteArgs(BaseModel):
    text: str = Field(description="What to note.")


class OtherArgs(BaseModel):
    count: int = Field(description="How many.")


async def _run(ctx: ToolContext, args: Any) -> ToolResult:
    return ToolResult("ok")


def spec(name: str, args: type[BaseModel] = NoteArgs, description: str = "Note it.") -> ToolSpec:
    return ToolSpec(name=name, description=description, args_model=args, func=_run)


def names(schemas: list[dict[str, Any]]) -> list[str]:
    return [s["function"]["name"] for s in schemas]


def test_schemas_are_built_once_and_follow_every_change(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = ToolSpec.openai_schema

    def counting(self: ToolSpec) -> dict[str, Any]:
        built.append(self.name)
        return real(self)

    monkeypatch.setattr(ToolSpec, "openai_schema", counting)
    registry = ToolRegistry([spec("note")])
    first = registry.openai_schemas()
    assert names(first) == ["note"] and built == ["note"]
    first.append({"junk": True})  # a caller's list is its own
    assert registry.openai_schemas() == [first[0]] and built == ["note"]

    registry.register(spec("count", OtherArgs, "Count."))  # registered later (an MCP server)
    assert names(registry.openai_schemas()) == ["note", "count"]
    params = registry.openai_schemas()[1]["function"]["parameters"]
    assert list(params["properties"]) == ["count"]

    registry.register(spec("note", OtherArgs, "Count instead."))  # replaced, same name
    replaced = registry.openai_schemas()[0]["function"]
    assert replaced["description"] == "Count instead." and "count" in replaced["parameters"][
        "properties"]

    tool = registry.get("count")
    assert tool is not None
    tool.description = "Count things."  # edited in place
    assert registry.openai_schemas()[1]["function"]["description"] == "Count things."
    built.clear()
    registry.openai_schemas()
    assert built == []  # nothing changed since: nothing built
