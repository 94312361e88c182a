"""The tool contract and the registry: what a tool declares, what it returns, how it is found.

A tool is a ``ToolSpec``: a name, a description, a pydantic model for its arguments, a tier
(1 atomic, 2 sandbox utility, 3 code), a risk class (read / write / execute / network), a timeout
and a retry count, and an async function ``(ToolContext, args) -> ToolResult | str``.
Tools come from this package and from the ``openmanus.tools`` entry-point group, whose entries
point at a ``ToolSpec`` or a callable returning a list of them (third-party tools install like
plugins). The registry records call counts, failures and latency for the UI.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from openmanus_tui.sandbox import Sandbox

ENTRY_POINT_GROUP = "openmanus.tools"


class Risk(StrEnum):
    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"
    NETWORK = "network"


ToolStatus = Literal["ok", "error", "denied", "timeout", "truncated", "interrupted"]


@dataclass
class ToolResult:
    """What a tool returns; ``content`` is what the model sees."""

    content: str
    status: ToolStatus = "ok"
    duration_ms: float = 0.0
    isolation: str | None = None
    truncated: bool = False
    artifacts: list[str] = field(default_factory=list)
    data: dict[str, Any] | None = None


OutputSink = Callable[[str, str], None]
"""``sink(stream, text)``: live output from a running tool ("stdout" or "stderr")."""


async def _no_human(question: str) -> str:
    return "No person is available to answer; continue with your best judgement."


@dataclass
class ToolContext:
    """What a running tool may use. Built by the runtime for each call."""

    workspace: Path
    sandbox: Sandbox | None = None
    emit_output: OutputSink = lambda stream, text: None
    ask_human: Callable[[str], Awaitable[str]] = _no_human
    session_id: str = ""
    call_id: str = ""
    network: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


ToolFunc = Callable[[ToolContext, Any], Awaitable["ToolResult | str"]]


@dataclass
class ToolSpec:
    name: str
    description: str
    args_model: type[BaseModel]
    func: ToolFunc
    tier: int = 1
    risk: Risk = Risk.READ
    timeout: float = 60.0
    retries: int = 0
    source: str = "builtin"

    def openai_schema(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }

    def validate_args(self, args: dict[str, Any]) -> BaseModel:
        return self.args_model.model_validate(args)


@dataclass
class ToolStats:
    calls: int = 0
    failures: int = 0
    total_ms: float = 0.0

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


class ToolRegistry:
    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._tools: dict[str, ToolSpec] = {}
        self.stats: dict[str, ToolStats] = {}
        self.load_errors: list[str] = []
        for spec in specs:
            self.register(spec)

    def register(self, spec: ToolSpec) -> None:
        self._tools[spec.name] = spec
        self.stats.setdefault(spec.name, ToolStats())

    def get(self, name: str) -> ToolSpec | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self):
        return iter(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def openai_schemas(self) -> list[dict[str, Any]]:
        return [spec.openai_schema() for spec in self._tools.values()]

    def record(self, name: str, duration_ms: float, ok: bool) -> None:
        stats = self.stats.setdefault(name, ToolStats())
        stats.calls += 1
        stats.total_ms += duration_ms
        if not ok:
            stats.failures += 1

    def discover_entry_points(self) -> None:
        """Load third-party tools; a broken plugin is reported in ``load_errors``, not fatal."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                found = obj() if callable(obj) and not isinstance(obj, ToolSpec) else obj
                specs = [found] if isinstance(found, ToolSpec) else list(found)
                for spec in specs:
                    if not isinstance(spec, ToolSpec):
                        raise TypeError(f"{spec!r} is not a ToolSpec")
                    spec.source = f"plugin:{ep.name}"
                    self.register(spec)
            except Exception as exc:  # a plugin must never take the app down
                self.load_errors.append(f"tool plugin {ep.name!r}: {exc}")


async def run_tool(spec: ToolSpec, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Validate and run one tool call; errors become error results, never exceptions."""
    start = time.perf_counter()
    try:
        parsed = spec.validate_args(args)
    except ValidationError as exc:
        return ToolResult(
            content=f"Error: invalid arguments for {spec.name}: {describe_validation_error(exc)}",
            status="error",
        )
    try:
        out = await spec.func(ctx, parsed)
    except Exception as exc:
        out = ToolResult(content=f"Error: {type(exc).__name__}: {exc}", status="error")
    result = out if isinstance(out, ToolResult) else ToolResult(content=str(out))
    if not result.duration_ms:
        result.duration_ms = (time.perf_counter() - start) * 1000
    return result
