"""Request bodies, validated by pydantic (FastAPI turns a mismatch into a 422).

Fields the SDK sends that we do not act on (``webhook``, ``feedback_keys``...) are accepted
and ignored; unknown top-level fields are ignored too, as the SDK grows new ones.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StreamMode = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "events", "debug",
    "checkpoints", "tasks",
]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ThreadCreate(_Body):
    thread_id: str | None = Field(None, max_length=64)
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None


class ThreadPatch(_Body):
    metadata: dict[str, Any] | None = None


class ThreadSearch(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    ids: list[str] | None = Field(None, max_length=1000)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: str | None = None
    sort_order: Literal["asc", "desc"] | None = None


class CheckpointRef(_Body):
    checkpoint_id: str | None = None
    checkpoint_ns: str | None = None
    thread_id: str | None = None


class HistoryRequest(_Body):
    limit: int = Field(10, ge=1, le=1000)
    before: str | CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None


class StateUpdate(_Body):
    values: dict[str, Any] | list[dict[str, Any]] | None = None
    as_node: str | None = None
    checkpoint_id: str | None = None
    checkpoint: CheckpointRef | None = None


class AssistantSearch(_Body):
    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class RunCommand(_Body):
    resume: Any = None
    update: Any = None
    goto: Any = None


class RunConfig(_Body):
    configurable: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] | None = None
    recursion_limit: int | None = None


class RunCreate(_Body):
    assistant_id: str = Field(min_length=1, max_length=200)
    input: Any = None
    command: RunCommand | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    stream_subgraphs: bool | None = None
    config: RunConfig | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    interrupt_before: Any = None
    interrupt_after: Any = None
    multitask_strategy: MultitaskStrategy = "reject"
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    checkpoint_id: str | None = None
    checkpoint: CheckpointRef | None = None

    def modes(self) -> list[str]:
        raw = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(dict.fromkeys(raw)) or ["values"]

    def configurable(self) -> dict[str, Any]:
        merged = dict(self.context or {})
        if self.config is not None:
            merged.update(self.config.configurable)
        return merged
