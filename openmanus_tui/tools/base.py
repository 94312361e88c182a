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
DEFAULT_RETRY_BACKOFF = 0.5  # seconds; resilience.tool_retry_backoff in a runtime


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
    # The failure may pass (a timeout, a dropped connection, HTTP 5xx): a read-only tool with
    # ``retries`` is run again (``run_tool``).
    transient: bool = False
    # Answered from the tool-result cache (``resilience/tool_cache.py``): nothing was fetched.
    cached: bool = False


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
    # Issue 16: the runtime's circuit breakers (``resilience.breakers.BreakerBoard``; None
    # outside a runtime), the first wait of a read-only tool's retries (doubles, with jitter),
    # the default command timeout (``sandbox.timeout``), file_write's cap (``tools.max_file_mb``).
    breakers: Any = None
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
    command_timeout: float | None = None
    max_write_bytes: int | None = None


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
    # Extra attempts after a transient failure; honoured only for ``read_only`` tools.
    retries: int = 0
    source: str = "builtin"
    # No side effects (search, fetch, read): safe to run again and to answer from a cache.
    # Tools that write, execute or post are never retried, whatever ``retries`` says.
    read_only: bool = False
    # Which calls of a read-only network tool may come from the cache (None: every call);
    # e.g. a search of the workspace may not, its files change.
    cacheable: Callable[[dict[str, Any]], bool] | None = None

    @property
    def retry_limit(self) -> int:
        return self.retries if self.read_only and self.risk in (Risk.READ, Risk.NETWORK) else 0

    @property
    def cache_eligible(self) -> bool:
        return self.read_only and self.risk == Risk.NETWORK

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
    cache_hits: int = 0
    retries: int = 0

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.calls if self.calls else 0.0

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
        # openai_schemas() built every run's schemas again (pydantic's model_json_schema, ~44 ms
        # for the built-in tools): kept with what they were built from, checked at each use.
        self._schemas: tuple[tuple[Any, ...], list[dict[str, Any]]] | None = None
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
        """The tools' function schemas, in registration order. A tool registered (or replaced)
        since the last call, or a spec whose name, description or arguments were changed in
        place, is seen at once: the cache key covers them."""
        key = tuple(
            (id(spec), spec.name, spec.description, spec.args_model)
            for spec in self._tools.values()
        )
        if self._schemas is None or self._schemas[0] != key:
            self._schemas = (key, [spec.openai_schema() for spec in self._tools.values()])
        # A new list each time; the schemas themselves are shared and must not be edited.
        return list(self._schemas[1])

    def record(
        self, name: str, duration_ms: float, ok: bool, *, cached: bool = False, retries: int = 0
    ) -> None:
        stats = self.stats.setdefault(name, ToolStats())
        stats.calls += 1
        stats.total_ms += duration_ms
        stats.cache_hits += int(cached)
        stats.retries += retries
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


def _transient_exception(exc: BaseException) -> bool:
    import httpx

    return isinstance(
        exc, TimeoutError | ConnectionError | httpx.TimeoutException | httpx.TransportError
    )


async def run_tool(spec: ToolSpec, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Validate and run one tool call; errors become error results, never exceptions.

    A read-only tool whose result is a transient failure is run again up to ``spec.retries``
    times, waiting ``ctx.retry_backoff`` seconds and doubling, with full jitter (tenacity);
    ``data["retries"]`` then says how many it took."""
    start = time.perf_counter()
    try:
        parsed = spec.validate_args(args)
    except ValidationError as exc:
        return ToolResult(
            content=f"Error: invalid arguments for {spec.name}: {describe_validation_error(exc)}",
            status="error",
        )

    async def once() -> ToolResult:
        try:
            out = await spec.func(ctx, parsed)
        except Exception as exc:
            out = ToolResult(
                content=f"Error: {type(exc).__name__}: {exc}",
                status="error",
                transient=_transient_exception(exc),
            )
        return out if isinstance(out, ToolResult) else ToolResult(content=str(out))

    if spec.retry_limit:
        from tenacity import (
            AsyncRetrying,
            retry_if_result,
            stop_after_attempt,
            wait_random_exponential,
        )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(spec.retry_limit + 1),
            wait=wait_random_exponential(multiplier=ctx.retry_backoff, max=30),
            retry=retry_if_result(lambda r: r.transient),
            retry_error_callback=lambda state: state.outcome.result(),  # the last result
        )
        result = await retrying(once)
        tries = retrying.statistics.get("attempt_number", 1) - 1
        if tries:
            result.data = {**(result.data or {}), "retries": tries}
    else:
        result = await once()
    if not result.duration_ms:
        result.duration_ms = (time.perf_counter() - start) * 1000
    return result
