"""The runtime: opens the database, builds the graph and drives sessions, producing events.

``Runtime`` owns what a process has once (settings, database, tool registry, compiled graph).
``AgentSession`` drives one session's thread: ``run(text)`` starts a run, ``resume()`` continues
an interrupted or unfinished one. Approvals go to an ``approver`` coroutine (the CLI prompt, the
TUI modal); with none, the run pauses as ``awaiting_approval`` and can be resumed later, from
this process or another. Every client gets the same events through ``on_event``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from openmanus_tui import events as ev
from openmanus_tui.agent.approval import ApprovalPolicy, Decision
from openmanus_tui.agent.graph import AgentContext, build_graph
from openmanus_tui.agent.prompts import system_prompt
from openmanus_tui.agent.state import run_input
from openmanus_tui.config import Settings
from openmanus_tui.errors import ModelError, OpenManusError
from openmanus_tui.limits import check_task, check_workspace
from openmanus_tui.memory.compaction import CompactionPreview
from openmanus_tui.memory.manager import ContextView, MemoryManager
from openmanus_tui.models.factory import Endpoint, ModelInfo, make_chain, make_model
from openmanus_tui.resilience.breakers import BreakerBoard, BreakerChange
from openmanus_tui.resilience.model_cache import ModelCache
from openmanus_tui.resilience.tool_cache import ToolCache
from openmanus_tui.runtime.history import History
from openmanus_tui.runtime.sink import EventSink, Listener
from openmanus_tui.runtime.stream import StreamMapper
from openmanus_tui.runtime.tool_runner import ToolRunner
from openmanus_tui.store.db import Database, SessionRecord
from openmanus_tui.store.locks import SessionLock
from openmanus_tui.store.rules import HitCounter, RuleStore, remember_always
from openmanus_tui.tools.base import ToolContext, ToolRegistry

# An approver returns the person's decisions, or None to leave the calls pending (the run
# pauses as ``awaiting_approval``, as it does with no approver).
Approver = Callable[[ev.ApprovalRequested], Awaitable["dict[str, Decision] | None"]]
AskHuman = Callable[[str], Awaitable[str]]

STREAM_MODES = ["custom", "updates", "checkpoints"]
STRICTNESS = ["ask", "auto", "yolo"]  # approval modes, strictest first

log = logging.getLogger(__name__)


def _unfinished(snapshot: Any) -> bool:
    """Does the thread have work left? A step whose writes were stored but whose checkpoint
    was not (a kill in between) shows no ``next`` but still has its task."""
    return bool(snapshot.next) or bool(snapshot.tasks)


def new_session_id() -> str:
    # Sortable by creation time, short enough to type a prefix of.
    return time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


@dataclass
class Breakpoints:
    """Nodes a run pauses before / after (LangGraph's ``interrupt_before`` /
    ``interrupt_after``; ``"*"`` for every node). Pausing never decides a tool call: the
    approve step still asks for the calls that need a person."""

    before: list[str] | Literal["*"] = field(default_factory=list)
    after: list[str] | Literal["*"] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.before or self.after)


@dataclass
class RunOutcome:
    status: str
    reason: str = ""
    final_answer: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"


class Runtime:
    def __init__(self, settings: Settings, db: Database, registry: ToolRegistry):
        self.settings = settings
        self.db = db
        self.registry = registry
        self.graph: CompiledStateGraph = build_graph().compile(checkpointer=db.saver)
        self._research_graph: CompiledStateGraph | None = None
        self._writing_graph: CompiledStateGraph | None = None
        self.mcp: Any = None
        # Session objects still alive: closing the runtime stops their sandboxes' helper
        # processes (otherwise they end only when the garbage collector gets to them).
        self.live_sessions: weakref.WeakSet[AgentSession] = weakref.WeakSet()
        # Circuit breakers of this process's endpoints (models, MCP servers, search backends).
        self.breakers = BreakerBoard(
            failure_threshold=settings.resilience.failure_threshold,
            recovery_timeout=settings.resilience.recovery_timeout,
        )
        # Which model answered how many steps (the fallback metric), and cache hits by kind.
        self.answers: dict[str, int] = {}
        self.counters: dict[str, int] = {"fallbacks": 0, "model_cache_hits": 0,
                                          "tool_cache_hits": 0}
        # Problems found while starting (a plugin or MCP server that failed): told to the
        # person at the start of the next run, never fatal.
        self.startup_notices: list[str] = list(registry.load_errors)
        # The configuration version in force (``runtime/config_versions.py``): recorded on
        # every run's run_started event. None: not recorded (a read-only database).
        self.config_version: int | None = None
        self.settings_listeners: list[Callable[[Settings, Settings], None]] = []

    def graph_for(self, profile: str) -> CompiledStateGraph:
        """The graph a profile runs: the research graph for Research, the writing graph for
        Writing, else the ReAct agent."""
        if profile == "writing":
            if self._writing_graph is None:
                from openmanus_tui.writing.graph import build_writing_graph

                self._writing_graph = build_writing_graph().compile(checkpointer=self.db.saver)
            return self._writing_graph
        if profile != "research":
            return self.graph
        if self._research_graph is None:
            from openmanus_tui.research.graph import build_research_graph

            self._research_graph = build_research_graph().compile(checkpointer=self.db.saver)
        return self._research_graph

    @cached_property
    def sources(self) -> Any:
        """Fetching, storing, registering and scoring sources (``research/service.py``'s
        ``SourceService``, built from ``[network]`` and ``[sources]``); tests assign one wired
        to their fixture web server. ``ConfigError`` when the domain list is broken."""
        from openmanus_tui.research.service import SourceService

        return SourceService.from_settings(self.db, self.settings, breakers=self.breakers)

    @classmethod
    async def open(cls, settings: Settings, registry: ToolRegistry | None = None) -> Runtime:
        if registry is None:
            from openmanus_tui.tools.builtin import build_registry

            registry = build_registry()
        db = await Database.open(settings.db_path)
        runtime = cls(settings, db, registry)
        if db.damaged is not None:  # read-only: say so instead of failing at the first write
            from openmanus_tui.store.integrity import damaged_error

            runtime.startup_notices.append(str(damaged_error(db.path, db.damaged)))
            return runtime
        try:
            await runtime.breakers.attach(db)
            from openmanus_tui.runtime.config_versions import record_applied

            runtime.config_version = await record_applied(db, "start")
            if settings.storage.retention_days is not None:
                # The automatic policy: sessions idle for longer are pruned at start-up.
                await runtime.prune(
                    keep_last=settings.storage.keep_last or 50,
                    older_than_days=settings.storage.retention_days,
                )
            await runtime._start_mcp()
        except BaseException:
            await runtime.close()
            raise
        return runtime

    async def _start_mcp(self) -> None:
        from openmanus_tui.utilities.mcp_config import load_mcp_config, parse_mcp_config

        mcp = self.settings.mcp
        servers = load_mcp_config(mcp.config_file)  # also $OPENMANUS_MCP_CONFIG
        if mcp.servers:
            servers.update(
                parse_mcp_config({"mcpServers": mcp.servers}, source="config: mcp.servers")
            )
        if not servers:
            return
        from openmanus_tui.tools.mcp_tools import McpManager
        from openmanus_tui.tools.mcp_trust import LaunchPolicy

        self.mcp = McpManager(
            servers,
            breakers=self.breakers,
            log_dir=self.settings.resolved_data_dir / "logs",
            policy=LaunchPolicy.from_settings(self.settings),  # trust + sandbox (issue 12)
        )
        for status in await self.mcp.start():
            if status.state == "failed":
                self.startup_notices.append(
                    f"MCP server {status.name!r} failed to start: {status.error}"
                )
            elif status.state == "untrusted":
                self.startup_notices.append(f"MCP server {status.name!r} {status.error}")
            elif status.where.startswith("host"):
                self.startup_notices.append(
                    f"MCP server {status.name!r} runs on the host, outside the sandbox "
                    "(sandbox = false in its config)"
                )
        self.mcp.register(self.registry)

    def apply_settings(self, settings: Settings, version: int | None = None) -> None:
        """Replace the settings (a hot reload, ``runtime/config_reload.py``): the next run of
        every session uses them; sessions rebuild what they made from the old ones (their
        sandbox, their memory manager) when they next need it. State kept elsewhere from the
        old settings (a breaker registry, a cache) is updated by ``settings_listeners``:
        each is called with (old, new) and must not raise."""
        old, self.settings = self.settings, settings
        if version is not None:
            self.config_version = version
        for listener in list(self.settings_listeners):
            listener(old, settings)

    async def prune(self, *, keep_last: int, older_than_days: float | None = None) -> Any:
        """Retention (``store/retention.py``): keep heads and recent steps, compact the file."""
        from openmanus_tui.store.retention import prune, sweep_orphan_stores
        from openmanus_tui.store.snapshots import WorkspaceSnapshots

        snapshots_dir = self.settings.resolved_data_dir / "snapshots"

        def store_for(record: SessionRecord) -> Any:
            path = snapshots_dir / f"{record.id}.git"
            return WorkspaceSnapshots(path, Path(record.workspace)) if path.exists() else None

        stats = await prune(
            self.db, keep_last=keep_last, older_than_days=older_than_days, store_for=store_for
        )
        stats.stores_removed = await sweep_orphan_stores(self.db, snapshots_dir)
        return stats

    async def close(self) -> None:
        for session in list(self.live_sessions):
            session.close_sandbox()
        if self.mcp is not None:
            await self.mcp.aclose()
            self.mcp = None
        await self.db.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def create_session(
        self,
        *,
        title: str = "",
        model: str | None = None,
        workspace: Path | None = None,
        profile: str | None = None,
        session_id: str | None = None,
    ) -> AgentSession:
        # ``session_id``: a client's own id (the REST API's thread_id; checked there).
        session_id = session_id or new_session_id()
        _, info = make_model(self.settings, model)
        ws = (
            Path(workspace).expanduser().resolve()
            if workspace
            else self.settings.workspace_for(session_id)
        )
        ws = check_workspace(ws)  # a file or /dev/null: one-line error, no session created
        record = SessionRecord(
            id=session_id,
            title=title,
            model=info.spec,
            workspace=str(ws),
            profile=profile or self.settings.agent.profile,
            meta={"offline_reason": info.offline_reason} if info.offline_reason else {},
        )
        await self.db.create_session(record)
        return AgentSession(self, record)

    async def open_session(self, session_id: str, *, model: str | None = None) -> AgentSession:
        record = await self.db.get_session(session_id)
        return AgentSession(self, record, model_override=model)

    # ---- the session API (runtime/api.py): what every front end calls ----------------------
    async def list_sessions(self) -> list[SessionRecord]:
        from openmanus_tui.runtime import api

        return await api.list_sessions(self)

    async def get_session(self, session_id: str) -> SessionRecord:
        from openmanus_tui.runtime import api

        return await api.get_session(self, session_id)

    async def rename_session(self, session_id: str, title: str) -> SessionRecord:
        from openmanus_tui.runtime import api

        return await api.rename_session(self, session_id, title)

    async def delete_session(self, session_id: str) -> SessionRecord:
        from openmanus_tui.runtime import api

        return await api.delete_session(self, session_id)


class AgentSession:
    def __init__(
        self, runtime: Runtime, record: SessionRecord, *, model_override: str | None = None
    ):
        self.runtime = runtime
        runtime.live_sessions.add(self)
        self.record = record
        self.model_override = model_override
        # The tip of the branch this session continues from; None means the thread's newest
        # checkpoint (LangGraph's default). The database moves it with every checkpoint of the
        # branch (store/db.py SESSION_HEAD_SQL); forks and switches set it. Read it again with
        # ``current_config()`` before addressing the graph: a run moves it.
        self.head: str | None = record.head
        self._history: History | None = None
        self._sandbox: Any = None
        self._built_from: Settings = runtime.settings  # what _sandbox and memory were made of
        self._sink: EventSink | None = None
        self._seen_checkpoints: set[str] = set()
        self._lock = SessionLock(runtime.db.path, record.id)
        # The approval mode of this session's runs; None: the settings' (the workbench changes
        # those live). ``use_approval_mode`` applies the one the session was run with.
        self.approval_mode: str | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def graph(self) -> CompiledStateGraph:
        """The compiled graph of this session's profile (``Runtime.graph_for``)."""
        return self.runtime.graph_for(self.record.profile)

    @property
    def research(self) -> bool:
        return self.record.profile == "research"

    @property
    def writing(self) -> bool:
        return self.record.profile == "writing"

    def use_approval_mode(self, explicit: str | None) -> str:
        """The approval mode for a run of this session from a command line: ``explicit`` (a
        flag) when given, else the stricter of the mode the session last ran with and the
        configured one, so resuming an ``ask`` session never runs its calls unasked, and a
        stricter config or environment still applies. Returns the mode chosen."""
        configured = self.runtime.settings.approval.mode
        stored = self.record.meta.get("approval_mode")
        if explicit:
            mode = explicit
        elif stored in STRICTNESS:
            mode = min(stored, configured, key=STRICTNESS.index)
        else:
            mode = configured
        self.approval_mode = mode
        return mode

    @property
    def config(self) -> dict[str, Any]:
        # No checkpoint id: the saver reads the session's head as the thread's latest
        # checkpoint (store/db.py), so LangGraph continues the branch exactly where it stopped
        # (an interrupt's answer, a step cut short by a kill) instead of time-travelling
        # (which re-runs finished steps). A retry makes a fresh copy to continue from instead.
        return {"configurable": {"thread_id": self.record.id}}

    @property
    def history(self) -> History:
        """Branches, rewind with files, replay and compare (``runtime/history.py``)."""
        if self._history is None:
            self._history = History(self)
        return self._history

    async def current_config(self) -> dict[str, Any]:
        """``config`` with the head as the database has it now (runs and forks move it)."""
        self.head = self.record.head = await self.runtime.db.session_head(self.id)
        return self.config

    async def set_head(self, checkpoint_id: str | None) -> None:
        self.head = self.record.head = checkpoint_id
        await self.runtime.db.update_session(self.id, head=checkpoint_id)

    @cached_property
    def rules(self) -> RuleStore:
        """Approval rules (``store/rules.py``): list, add, edit, delete, hit counts."""
        return RuleStore(self.runtime.db)

    @property
    def workspace(self) -> Path:
        # A record without one (older or hand-made) must never mean the current directory.
        if not self.record.workspace:
            return self.runtime.settings.workspace_for(self.record.id)
        return Path(self.record.workspace)

    # ---- the sandbox -------------------------------------------------------------------
    def _follow_settings(self) -> None:
        """The runtime's settings were replaced (a hot reload): drop what this session built
        from the old ones, when the sections it was built from changed. Called when a run
        starts, so that a run keeps one sandbox and one memory manager from start to end."""
        current = self.runtime.settings
        old = self._built_from
        if current is old:
            return
        self._built_from = current
        if old.sandbox != current.sandbox and self._sandbox is not None:
            stale, self._sandbox = self._sandbox, None
            stale.close()  # no command of this session runs between two runs
        if old.memory != current.memory or old.model != current.model:
            self.__dict__.pop("memory", None)
        if old.resilience != current.resilience:
            # The breakers take the new limits; caches and fallbacks are read at each run.
            r = current.resilience
            self.runtime.breakers.configure(
                failure_threshold=r.failure_threshold, recovery_timeout=r.recovery_timeout
            )

    def sandbox(self) -> Any:
        if self._sandbox is None:
            from openmanus_tui.sandbox import IsolationLevel, Sandbox, SandboxLimits
            from openmanus_tui.sandbox.state_guard import program_state

            s = self.runtime.settings.sandbox
            self.workspace.mkdir(parents=True, exist_ok=True)
            self._sandbox = Sandbox(
                self.workspace,
                limits=SandboxLimits(
                    cpu_seconds=s.cpu_seconds,
                    memory_mb=s.memory_mb,
                    max_processes=s.max_processes,
                    max_file_mb=s.max_file_mb,
                    max_open_files=s.max_open_files,
                    output_cap_bytes=s.output_cap_kb * 1024,
                    memory_total_mb=s.memory_total_mb,
                    max_pids=s.max_pids,
                    workspace_write_mb=s.workspace_write_mb,
                ),
                network=s.network,
                level=None if s.level == "auto" else s.level,
                min_isolation=IsolationLevel.parse(s.min_isolation)
                if s.below_min == "refuse"
                else IsolationLevel.L0,
                state=program_state(self.runtime.settings),  # kept out of reach (issue 12)
            )
        return self._sandbox

    def close_sandbox(self) -> None:
        """Stop this session object's sandbox (its helper process). A front end that opens a
        session object per request (the REST API) calls it when the request is done; the next
        use starts a new one. Blocks briefly: call it off the event loop."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()

    def isolation(self) -> str:
        try:
            return str(self.sandbox().level)
        except OpenManusError:
            return "unavailable"

    # ---- driving ------------------------------------------------------------------------
    async def _get_sink(self) -> EventSink:
        if self._sink is None:
            db = self.runtime.db
            self._sink = EventSink(db, self.id, await db.last_seq(self.id))
            # Checkpoints announced by an earlier process must not be announced again when
            # LangGraph re-reports the one a resume starts from.
            self._seen_checkpoints.update(await db.checkpoint_ids(self.id))
        return self._sink

    def _below_min_ask(self) -> bool:
        """``sandbox.below_min = "ask"`` and the sandbox is below the minimum isolation:
        every execute call needs a person."""
        s = self.runtime.settings.sandbox
        if s.below_min != "ask":
            return False
        from openmanus_tui.sandbox import IsolationLevel, probe

        level = probe().level if s.level == "auto" else IsolationLevel.parse(s.level)
        return level < IsolationLevel.parse(s.min_isolation)

    def _agent_context(
        self,
        sink: EventSink,
        model: Any,
        info: ModelInfo,
        ask_human: AskHuman | None,
        rules: list[Any] | None = None,
        chain: list[Endpoint] | None = None,
    ) -> AgentContext:
        settings = self.runtime.settings
        registry = self.runtime.registry
        below_min_ask = self._below_min_ask()

        def make_tool_context(call_id: str) -> ToolContext:
            def output(stream: str, text: str) -> None:
                sink.emit_live(ev.ToolOutput(call_id=call_id, stream=stream, text=text))  # type: ignore[arg-type]

            ctx = ToolContext(
                workspace=self.workspace,
                emit_output=output,
                session_id=self.id,
                call_id=call_id,
                network=settings.sandbox.network,
                breakers=self.runtime.breakers,
                retry_backoff=settings.resilience.tool_retry_backoff,
                command_timeout=settings.sandbox.timeout,
                max_write_bytes=int(settings.tools.max_file_mb * 1024 * 1024),
            )
            try:
                ctx.sandbox = self.sandbox()
            except OpenManusError as exc:
                ctx.extra["sandbox_error"] = str(exc)
            if ask_human is not None:
                ctx.ask_human = ask_human
            ctx.extra["memory"] = self.memory
            try:
                ctx.extra["sources"] = self.runtime.sources
            except OpenManusError as exc:
                ctx.extra["sources_error"] = str(exc)
            return ctx

        async def on_retry(attempt: int, wait: float, error: ModelError) -> None:
            await sink.emit(ev.Retry(attempt=attempt, wait_s=round(wait, 3), error=error.message))

        async def on_fallback(failed: Endpoint, to: Endpoint, error: ModelError) -> None:
            await sink.emit(
                ev.Fallback(from_model=failed.spec, to_model=to.spec, reason=error.message)
            )

        async def on_cache_hit(label: str, key: str) -> None:
            await sink.emit(ev.CacheHit(cache="model", label=label, key=key[:16]))

        schemas = registry.openai_schemas()
        summary_chain = [Endpoint(e.spec, e.model, e.info, e.breaker) for e in (chain or [])]
        bound = [
            Endpoint(e.spec, e.model.bind_tools(schemas), e.info, e.breaker)  # type: ignore[arg-type]
            for e in (chain or [])
        ]
        return AgentContext(
            chain=bound or None,
            summary_chain=summary_chain or None,
            breakers=self.runtime.breakers,
            on_fallback=on_fallback,
            cache=ModelCache(self.runtime.db, settings.cache, settings.model.temperature)
            if settings.cache.model
            else None,
            on_cache_hit=on_cache_hit,
            session_id=self.id,
            model=model.bind_tools(schemas),
            model_info=info,
            registry=registry,
            policy=ApprovalPolicy(
                self.approval_mode or settings.approval.mode,
                registry,
                force_ask_execute=below_min_ask,
                rules=rules or [],
            ),
            system_prompt=self._system_prompt(),
            run_tools=ToolRunner(
                sink, registry, make_tool_context, self.isolation,
                result_chars=settings.limits.tool_result_chars,
                cache=ToolCache(self.runtime.db, settings.cache) if settings.cache.tools else None,
                before=self.history.before_tools,
            ),
            max_steps=settings.agent.max_steps,
            token_budget=settings.agent.token_budget,
            repeat_limit=settings.agent.repeat_limit,
            max_retries=settings.model.max_retries,
            retry_backoff=settings.model.retry_backoff,
            on_retry=on_retry,
            memory=self.memory,
            summary_model=model,
            tool_schemas=schemas,
            message_chars=settings.limits.message_chars,
        )

    def _research_context(self, model: Any, info: ModelInfo, agent: AgentContext) -> Any:
        """The research graph's context (research/graph.py): the plain model (no tools), the
        session's library, the approval policy for web access, the [research] settings."""
        from openmanus_tui.research.graph import ResearchContext
        from openmanus_tui.research.session_library import SessionLibrary
        from openmanus_tui.research.store import ResearchResults

        settings = self.runtime.settings
        results = ResearchResults(self.runtime.db)

        async def save(result: Any) -> None:
            await results.save(self.id, result, float(result.metadata.get("started_at") or 0))

        return ResearchContext(
            model=model,
            model_info=info,
            library=SessionLibrary(self.runtime.sources, self.id, self.workspace),
            web_search=not info.spec.startswith("scripted:"),  # the offline demo stays offline
            policy=agent.policy,
            max_sources=settings.research.max_research_sources,
            timeout=settings.research.research_timeout,
            cross_referencing=settings.research.enable_cross_referencing,
            save_result=save,
            **self._chain_calls(agent),
        )

    @staticmethod
    def _chain_calls(agent: AgentContext) -> dict[str, Any]:
        """The research and writing graphs' model path (``ChainCalls``): the agent's chain
        without tools, the same breakers, fallbacks, retries and events (issue 16)."""
        return {"chain": agent.summary_chain, "breakers": agent.breakers,
                "on_fallback": agent.on_fallback, "max_retries": agent.max_retries,
                "retry_backoff": agent.retry_backoff, "on_retry": agent.on_retry}

    def _writing_context(self, model: Any, agent: AgentContext, sink: EventSink) -> Any:
        """The writing graph's context (writing/graph.py): the plain model (no tools), the
        workspace the document is written to, its steps as notices, results stored under the
        session (``writing_documents``), the [writing] settings."""
        from openmanus_tui.writing.graph import WritingContext
        from openmanus_tui.writing.records import WritingRecords

        settings = self.runtime.settings
        records = WritingRecords(self.runtime.db)
        workspace = self.workspace

        async def save(generated: Any) -> None:
            await records.setup()
            output = generated.metadata.get("output") or ""
            path = str((workspace / output).resolve()) if output else ""
            generated.metadata["document_id"] = await records.add(
                generated, brief=generated.metadata.get("requirements", {}).get("brief", ""),
                path=path, fmt=generated.metadata.get("requirements", {}).get("format", "md"),
                session_id=self.id)

        async def progress(step: str) -> None:
            await sink.emit(ev.Notice(level="info", text=f"writing: {step}"))

        workspace.mkdir(parents=True, exist_ok=True)
        return WritingContext(model=model, max_rounds=settings.writing.max_revision_rounds,
                              progress=progress, output_dir=workspace, save_result=save,
                              policy=agent.policy, **self._chain_calls(agent))

    def _system_prompt(self) -> str:
        settings = self.runtime.settings
        return system_prompt(
            self.record.profile,
            isolation=self.isolation(),
            network=settings.sandbox.network,
            extra=settings.agent.system_prompt,
        )

    # ---- memory (memory/manager.py): the data of the TUI's Memory pane and /compact ---------
    @cached_property
    def memory(self) -> MemoryManager:
        """Long-term memory (``save``, ``search``, ``memories``, ``forget``), stored large
        observations (``read_observation``) and the planning behind the methods below; built
        again for the next run after a reload changed the memory or model settings."""
        settings = self.runtime.settings
        # A workspace of its own per session is no project; a chosen folder is.
        default_ws = settings.sandbox.workspace is None and Path(
            self.record.workspace
        ) == settings.workspace_for(self.id)
        return MemoryManager(
            self.runtime.db,
            settings,
            self.id,
            model=self.model_override or self.record.model,
            project=None if default_ws else self.record.workspace,
        )

    async def _memory_inputs(self) -> dict[str, Any]:
        model, info = make_model(self.runtime.settings, self.model_override or self.record.model)
        snapshot = await self.graph.aget_state(await self.current_config())
        return {
            "state": dict(snapshot.values or {}),
            "model": model,
            "system_prompt": self._system_prompt(),
            "tools": self.runtime.registry.openai_schemas(),
            "window": info.context_window,
        }

    async def context_parts(self) -> ContextView:
        """The parts of the next prompt with their token weights, pins, summaries, recalled
        memories and stored observations (``ContextView.as_dict()`` for plain data)."""
        inputs = await self._memory_inputs()
        return await self.memory.view(
            inputs["state"],
            system_prompt=inputs["system_prompt"],
            tools=inputs["tools"],
            window=inputs["window"],
        )

    async def compaction_preview(self, focus: str = "") -> CompactionPreview | None:
        """What ``compact(focus)`` would do: the turns it takes out, the proposed summary (one
        model call), tokens before and after. None when there is nothing to compact."""
        inputs = await self._memory_inputs()
        preview = await self.memory.compaction(
            inputs["state"],
            inputs["model"],
            system_prompt=inputs["system_prompt"],
            tools=inputs["tools"],
            window=inputs["window"],
            focus=focus,
        )
        self._last_preview = preview
        return preview

    async def compact(
        self, focus: str = "", preview: CompactionPreview | None = None
    ) -> CompactionPreview | None:
        """Compact now (``/compact [focus]``). A preview of the same state and focus (the last
        one, or ``preview``) is applied exactly as shown; otherwise one is made first."""
        inputs = await self._memory_inputs()
        reuse = preview or getattr(self, "_last_preview", None)
        applied = await self.memory.compaction(
            inputs["state"],
            inputs["model"],
            system_prompt=inputs["system_prompt"],
            tools=inputs["tools"],
            window=inputs["window"],
            focus=focus,
            reuse=reuse if reuse is not None and reuse.focus == focus else None,
        )
        self._last_preview = None
        if applied is None:
            return None
        sink = await self._get_sink()
        parent = (await self.history.current_checkpoint())
        config = await self.graph.aupdate_state(
            await self.current_config(), {"summaries": [applied.summary]}
        )
        await self._announce(sink, config, parent, "compact", ["summaries"])
        await sink.emit(
            ev.Memory(
                action="compacted",
                detail=f"{len(applied.turns)} turns summarised on request: "
                f"{applied.tokens_before:,} → {applied.tokens_after:,} tokens",
                data={
                    "summary_id": applied.summary["id"],
                    "turns": len(applied.turns),
                    "tokens_before": applied.tokens_before,
                    "tokens_after": applied.tokens_after,
                    "usage": applied.usage,
                    "auto": False,
                    "focus": focus,
                    "summary": applied.text,
                },
            )
        )
        return applied

    async def pins(self) -> list[str]:
        return await self.memory.pins()

    async def pin(self, item_id: str) -> None:
        """Keep a message's whole turn in every prompt, never compacted."""
        snapshot = await self.graph.aget_state(await self.current_config())
        ids = {m.id for m in (snapshot.values or {}).get("messages", [])}
        if item_id not in ids:
            raise OpenManusError(
                f"nothing to pin: no message {item_id!r} in this session",
                hint="Pin the id of a message shown in the Memory pane.",
                error_class="user",
            )
        await self.memory.set_pin(item_id, True)
        sink = await self._get_sink()
        await sink.emit(ev.Memory(action="pinned", detail=item_id, data={"item_id": item_id}))

    async def unpin(self, item_id: str) -> None:
        await self.memory.set_pin(item_id, False)
        sink = await self._get_sink()
        await sink.emit(ev.Memory(action="unpinned", detail=item_id, data={"item_id": item_id}))

    async def pending(self) -> tuple[bool, bool]:
        """(has a pending approval, has unfinished steps)."""
        snapshot = await self.graph.aget_state(await self.current_config())
        return bool(snapshot.interrupts), _unfinished(snapshot)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the session's lock (``store/locks.py``): one run, fork or switch at a time,
        across processes. Raises ``SessionBusy`` (a user error: exit 2) when another holds it.
        Nested use in one session object is a no-op."""
        if self._lock.held:
            yield
            return
        self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    async def run(
        self,
        text: str,
        *,
        approver: Approver | None = None,
        on_event: Listener | None = None,
        ask_human: AskHuman | None = None,
        research: dict[str, Any] | None = None,
        breakpoints: Breakpoints | None = None,
        writing: dict[str, Any] | None = None,
    ) -> RunOutcome:
        """Start a run with ``text``. ``research``: the research graph's options for a Research
        session (``depth``, ``reading_list``, ``allow_domains``; see research/graph.py).
        ``writing``: a Writing session's requirements, references and output file
        (``runtime.writing.session_write_options``; none: the [writing] settings).
        ``breakpoints``: nodes to pause before / after (``Breakpoints``)."""
        text = check_task(text, self.runtime.settings.limits.task_chars)  # empty / too large
        async with self.exclusive():
            sink = await self._get_sink()
            await self._cancel_dangling_calls(sink)
            if not self.record.title:
                title = " ".join(text.split())[:60]
                await self.runtime.db.update_session(self.id, title=title)
                self.record.title = title
            message = HumanMessage(content=text, id=f"user_{uuid.uuid4().hex}")
            # The task is on disk before anything says the run started: a kill before the
            # graph stores it leaves it here, and resume starts it (see resume()).
            pending = {"text": text, "message_id": message.id}
            if research:
                pending["research"] = research
            if writing:
                pending["writing"] = writing
            await self._set_pending_input(pending)
            return await self._drive(
                self._run_input(text, message, research, writing),
                approver=approver,
                on_event=on_event,
                ask_human=ask_human,
                user_input=text,
                breakpoints=breakpoints,
            )

    def _run_input(
        self, text: str, message: HumanMessage, research: dict[str, Any] | None,
        writing: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if self.writing:
            from openmanus_tui.writing.session_input import writing_session_input

            return writing_session_input(text, message, self.workspace, self.runtime.settings,
                                         writing)
        if not self.research:
            return run_input(text, message)
        from openmanus_tui.research.graph import research_input

        options = research or {}
        return research_input(
            text,
            message,
            depth=options.get("depth") or self.runtime.settings.research.depth,
            reading_list=options.get("reading_list") or [],
            allow_domains=options.get("allow_domains") or [],
        )

    async def _set_pending_input(self, value: dict[str, Any] | None) -> None:
        meta = {**self.record.meta, "pending_input": value}
        if value is None:
            meta.pop("pending_input")
        self.record.meta = meta
        await self.runtime.db.set_meta(self.id, "pending_input", value)

    async def _unstarted_input(self, snapshot: Any) -> dict[str, Any] | None:
        """The task of a run killed before the graph stored it, or None (clearing the record
        once the graph has it)."""
        pending = self.record.meta.get("pending_input")
        if not pending:
            return None
        ids = {m.id for m in (snapshot.values or {}).get("messages", [])}
        if pending.get("message_id") in ids:
            await self._set_pending_input(None)
            return None
        return pending  # type: ignore[no-any-return]

    async def resume(
        self,
        *,
        approver: Approver | None = None,
        on_event: Listener | None = None,
        ask_human: AskHuman | None = None,
        breakpoints: Breakpoints | None = None,
    ) -> RunOutcome:
        async with self.exclusive():
            snapshot = await self.graph.aget_state(await self.current_config())
            pending = await self._unstarted_input(snapshot)
            if pending is not None:
                message = HumanMessage(content=pending["text"], id=pending["message_id"])
                return await self._drive(
                    self._run_input(pending["text"], message, pending.get("research"),
                                    pending.get("writing")),
                    approver=approver,
                    on_event=on_event,
                    ask_human=ask_human,
                    user_input=pending["text"],
                    breakpoints=breakpoints,
                )
            if not _unfinished(snapshot):
                values = snapshot.values or {}
                if self.record.status in (
                    "running", "interrupted", "cancelled", "awaiting_approval"
                ):
                    # Killed after its last step was stored: the run had in fact ended.
                    status = "completed" if values.get("final_answer") is not None else "stopped"
                    await self.runtime.db.update_session(self.id, status=status)
                    self.record.status = status
                if values.get("final_answer") is not None:
                    return RunOutcome("completed", "nothing to resume", values["final_answer"])
                return RunOutcome("completed", "nothing to resume")
            await self._recheck_policy_approvals(snapshot)
            return await self._drive(
                None, approver=approver, on_event=on_event, ask_human=ask_human, user_input=None,
                breakpoints=breakpoints,
            )

    async def _recheck_policy_approvals(self, snapshot: Any) -> None:
        """Before a resume runs a step's tools: approvals the policy gave under a laxer mode
        than this run's (a run paused before ``call_tool`` in ``auto``, resumed in ``ask``)
        are taken back, so that the approve step asks the person for those calls. Only while
        no call of the step has started: a started call is never run twice (exactly once),
        and its step continues as it was decided."""
        if self.research:
            await self._recheck_web_approval(snapshot)
            return
        if self.writing or tuple(snapshot.next or ()) != ("call_tool",):
            return
        values = snapshot.values or {}
        calls = values.get("tool_calls") or []
        decisions = values.get("decisions") or {}
        policy = await self._policy()
        stale = [
            c for c in calls
            if (decisions.get(c["id"]) or {}).get("decision") == "approve"
            and (decisions.get(c["id"]) or {}).get("by") in ("policy", "rule")
            and policy.evaluate(c["name"], c["args"]).action != "allow"
        ]
        if not stale:
            return
        base = snapshot.config["configurable"]["checkpoint_id"]
        for call in calls:
            if await self.runtime.db.journal(self.id, base, call["id"]):
                return
        # Written as the model's step again with no decisions: its route leads to approve.
        written = await self.graph.aupdate_state(
            await self.current_config(), {"decisions": {}}, as_node="call_llm"
        )
        await self._announce(await self._get_sink(), written, base, "call_llm", ["approvals"])

    async def _recheck_web_approval(self, snapshot: Any) -> None:
        """The research graph's form of ``_recheck_policy_approvals``: web access the policy
        allowed under a laxer mode, the researchers not started yet (paused after
        ``approve_web``), is asked for again (``plan``'s route leads to ``approve_web``)."""
        tasks = snapshot.tasks or ()
        values = snapshot.values or {}
        if not values.get("web_allowed") or not tasks or any(
            t.name != "researcher" or t.result is not None or t.error for t in tasks
        ):
            return
        from openmanus_tui.research.graph import web_request

        call_id, args = web_request(values, self.runtime.settings.research.max_research_sources)
        if ((values.get("decisions") or {}).get(call_id) or {}).get("by") == "user":
            return
        if (await self._policy()).evaluate("web_fetch", args).action == "allow":
            return
        base = snapshot.config["configurable"]["checkpoint_id"]
        written = await self.graph.aupdate_state(
            await self.current_config(), {"web_allowed": False}, as_node="plan"
        )
        await self._announce(await self._get_sink(), written, base, "plan", ["approvals"])

    async def _policy(self) -> ApprovalPolicy:
        """The approval policy a run of this session would apply now."""
        return ApprovalPolicy(
            self.approval_mode or self.runtime.settings.approval.mode,
            self.runtime.registry,
            force_ask_execute=self._below_min_ask(),
            rules=await self.rules.applicable(self.id, str(self.workspace)),
        )

    async def _cancel_dangling_calls(self, sink: EventSink) -> None:
        """New input while calls wait (for approval, or after a crash): give each a result."""
        if self.research or self.writing:
            return  # the research and writing graphs' histories hold no tool calls to close
        snapshot = await self.graph.aget_state(await self.current_config())
        if not _unfinished(snapshot):
            return
        messages = (snapshot.values or {}).get("messages", [])
        last_ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if last_ai is None:
            return
        answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
        text = "Cancelled: the user sent a new message before this call ran."
        closing = []
        sink.checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
        for call in [*last_ai.tool_calls, *last_ai.invalid_tool_calls]:
            if call["id"] in answered:
                continue
            closing.append(
                ToolMessage(
                    content=text,
                    tool_call_id=call["id"],
                    name=call["name"] or "",
                    id=f"result_cancel_{call['id']}",
                    status="error",
                )
            )
            await sink.emit(
                ev.ToolFinished(
                    call_id=call["id"],
                    tool=call["name"] or "",
                    status="denied",
                    result=text,
                )
            )
        if closing:
            parent = sink.checkpoint_id
            written = await self.graph.aupdate_state(
                await self.current_config(),
                {"messages": closing, "tool_calls": [], "decisions": {}},
                as_node="call_tool",
            )
            await self._announce(sink, written, parent, "call_tool", ["cancelled"])

    async def _announce(
        self, sink: EventSink, written: dict[str, Any], parent: str | None, node: str,
        changed: list[str],
    ) -> None:
        """A checkpoint written outside a run (``aupdate_state``) gets its ``checkpoint``
        event too: the tree is read from events and must keep every parent link."""
        checkpoint_id = written["configurable"]["checkpoint_id"]
        sink.checkpoint_id = checkpoint_id
        self._seen_checkpoints.add(checkpoint_id)
        await sink.emit(
            ev.Checkpoint(
                checkpoint_id=checkpoint_id,
                parent_id=parent,
                source="update",
                nodes=[node],
                changed=changed,
            )
        )

    async def _drive(
        self,
        graph_input: Any,
        *,
        approver: Approver | None,
        on_event: Listener | None,
        ask_human: AskHuman | None,
        user_input: str | None,
        breakpoints: Breakpoints | None = None,
    ) -> RunOutcome:
        sink = await self._get_sink()
        if on_event is not None:
            sink.listeners.append(on_event)
        # Hits of approval rules are counted from the decisions the run reports.
        self._rule_hits = HitCounter(self.rules)
        sink.listeners.append(self._rule_hits)

        async def on_breaker(change: BreakerChange) -> None:
            await sink.emit(
                ev.Breaker(
                    name=change.name, state=change.new, previous=change.old,
                    failures=change.failures, error=change.error,
                )
            )

        def count_answers(event: Any) -> None:
            counters = self.runtime.counters
            if isinstance(event, ev.Usage) and event.model:
                answers = self.runtime.answers
                answers[event.model] = answers.get(event.model, 0) + 1
            elif isinstance(event, ev.Fallback):
                counters["fallbacks"] += 1
            elif isinstance(event, ev.CacheHit):
                counters[f"{event.cache}_cache_hits"] += 1

        self.runtime.breakers.listeners.append(on_breaker)
        sink.listeners.append(count_answers)
        try:
            return await self._drive_inner(
                sink, graph_input, approver, ask_human, user_input, breakpoints or Breakpoints()
            )
        finally:
            self.runtime.breakers.listeners.remove(on_breaker)
            sink.listeners.remove(count_answers)
            sink.listeners.remove(self._rule_hits)
            await asyncio.shield(self._rule_hits.flush(self.id))
            if on_event is not None:
                sink.listeners.remove(on_event)

    async def _drive_inner(
        self,
        sink: EventSink,
        graph_input: Any,
        approver: Approver | None,
        ask_human: AskHuman | None,
        user_input: str | None,
        breakpoints: Breakpoints,
    ) -> RunOutcome:
        graph = self.graph
        self._follow_settings()
        self.memory.reload_pins()  # cached for the run's steps; another process may change them
        chain = make_chain(self.runtime.settings, self.model_override or self.record.model)
        model, info = chain[0].model, chain[0].info
        sink.run_id = f"run_{uuid.uuid4().hex[:12]}"
        # Events of this run follow the checkpoint it starts from (its branch), not whatever
        # checkpoint this process saw last.
        start = await graph.aget_state(await self.current_config())
        sink.checkpoint_id = (start.config or {}).get("configurable", {}).get("checkpoint_id")
        await self.runtime.db.update_session(self.id, status="running")
        if self.record.meta.get("paused_at"):
            await self._set_meta("paused_at", None)
        mode = self.approval_mode or self.runtime.settings.approval.mode
        if self.record.meta.get("approval_mode") != mode:
            # Remembered for `resume` (use_approval_mode).
            self.record.meta = {**self.record.meta, "approval_mode": mode}
            await self.runtime.db.set_meta(self.id, "approval_mode", mode)
        offline = info.offline_reason or (
            self.record.meta.get("offline_reason") if info.spec == "scripted:demo" else ""
        )
        if offline:
            await sink.emit(ev.Notice(level="warning", text=offline))
        for text in self.runtime.startup_notices:
            await sink.emit(ev.Notice(level="warning", text=text))
        self.runtime.startup_notices = []
        await sink.emit(
            ev.RunStarted(
                profile=self.record.profile,
                model=info.spec,
                input=user_input,
                resumed=user_input is None,
                config_version=self.runtime.config_version,
            )
        )
        # Approval rules: this session's, its workspace's (project) and the global ones.
        rules = await self.rules.applicable(self.id, str(self.workspace))
        context: Any = self._agent_context(sink, model, info, ask_human, rules, chain)
        if self.research:
            context = self._research_context(model, info, context)
        elif self.writing:
            context = self._writing_context(model, context, sink)
        self._rule_hits.policy = context.policy
        # Research and writing nodes write to the workspace themselves, not through the
        # ToolRunner that waits for the snapshot: theirs are taken in line.
        self.history.overlap = not (self.research or self.writing)
        mapper = StreamMapper(
            sink,
            self.runtime.registry,
            self._seen_checkpoints,
            on_checkpoint=self.history.on_checkpoint,
        )
        outcome: RunOutcome
        try:
            while True:
                mapper.approval = None
                # From the branch's newest checkpoint: where the last segment stopped (an
                # interrupt), never the fork point it started from.
                await self.current_config()
                async for namespace, mode, data in graph.astream(
                    graph_input,
                    self.config,
                    context=context,
                    stream_mode=STREAM_MODES,
                    subgraphs=True,
                    durability="sync",
                    interrupt_before=breakpoints.before or None,
                    interrupt_after=breakpoints.after or None,
                ):
                    await mapper.handle(namespace, mode, data)
                    if mode == "updates" and isinstance(data, dict) and (
                        "approve" in data or "approve_web" in data
                    ):
                        context.policy.activate_deferred()  # rules from "always allow"
                if mapper.question is not None:
                    # A clarifying question (research graph): the person answers, the graph
                    # resumes with the answer; nobody to ask: paused, resumable later.
                    if ask_human is None:
                        outcome = RunOutcome(
                            "awaiting_approval",
                            f"a clarifying question waits for an answer: {mapper.question} "
                            f"(run `openmanus resume {self.id}` in a terminal)",
                        )
                        return await self._finish(sink, mapper, outcome)
                    answer = await ask_human(mapper.question)
                    mapper.question = None
                    graph_input = Command(resume=answer)
                    continue
                if mapper.approval is None:
                    break
                if approver is None:
                    outcome = RunOutcome(
                        "awaiting_approval",
                        "a tool call needs approval and nobody can answer here; "
                        f"run `openmanus resume {self.id}` in a terminal",
                    )
                    return await self._finish(sink, mapper, outcome)
                await self._rule_hits.flush(self.id)
                decisions = await approver(mapper.approval)
                if decisions is None:
                    # The approver cannot answer this one now (the REST API answered the
                    # interrupt it was resumed with; a new one waits for its client).
                    outcome = RunOutcome("awaiting_approval", "a tool call needs approval")
                    return await self._finish(sink, mapper, outcome)
                # "Always allow": store the rule now, so later calls of this run use it too.
                for text in await remember_always(
                    self.rules,
                    context.policy,
                    mapper.approval,
                    decisions,
                    session_id=self.id,
                    project=str(self.workspace),
                ):
                    await sink.emit(ev.Notice(level="warning", text=text))
                graph_input = Command(
                    resume={k: v.model_dump(exclude_none=True) for k, v in decisions.items()}
                )
            paused = await self._paused(breakpoints) if breakpoints else None
            if paused is not None:
                outcome = paused
            elif mapper.stop_reason:
                outcome = RunOutcome("stopped", mapper.stop_reason)
            else:
                outcome = RunOutcome("completed", "", mapper.final_answer)
        except OpenManusError as exc:
            await sink.emit(
                ev.Error(error_class=exc.error_class, message=exc.message, hint=exc.hint)
            )
            outcome = RunOutcome("error", exc.message)
        except asyncio.CancelledError:
            # Stopped by the person (Ctrl-C, the TUI's stop): record it, shielded from the
            # cancellation, then let it propagate. The thread resumes from its last checkpoint.
            outcome = RunOutcome(
                "cancelled", f"stopped; continue with `openmanus resume {self.id}`"
            )
            await asyncio.shield(self._finish(sink, mapper, outcome))
            raise
        return await self._finish(sink, mapper, outcome)

    async def _paused(self, breakpoints: Breakpoints) -> RunOutcome | None:
        """The graph ended its stream with work left and nothing asked: it stopped at a
        breakpoint. The run reads as stopped (resumable: ``resume`` continues with the
        node named); ``paused_at`` in the session's meta names it until the next run."""
        snapshot = await self.graph.aget_state(await self.current_config())
        if not snapshot.next or snapshot.interrupts:
            return None
        nodes = list(snapshot.next)
        await self._set_meta("paused_at", nodes)
        return RunOutcome(
            "cancelled",
            f"paused at a breakpoint before {', '.join(nodes)}; "
            f"continue with `openmanus resume {self.id}`",
        )

    async def _set_meta(self, key: str, value: Any) -> None:
        meta = {**self.record.meta, key: value}
        if value is None:
            meta.pop(key)
        self.record.meta = meta
        await self.runtime.db.set_meta(self.id, key, value)

    async def _finish(
        self, sink: EventSink, mapper: StreamMapper, outcome: RunOutcome
    ) -> RunOutcome:
        totals = mapper.totals
        try:
            await self.history.settle()  # the last step's workspace snapshot
        except Exception:
            log.exception("workspace snapshot failed")
        await sink.emit(
            ev.RunFinished(
                status=outcome.status,
                reason=outcome.reason,  # type: ignore[arg-type]
                steps=totals.get("steps", 0),
                tokens_in=totals.get("tokens_in", 0),
                tokens_out=totals.get("tokens_out", 0),
                cost=totals.get("cost", 0.0),
            )
        )
        await self.runtime.db.update_session(self.id, status=outcome.status)
        self.record.status = outcome.status
        if self.record.meta.get("pending_input"):
            snapshot = await self.graph.aget_state(await self.current_config())
            await self._unstarted_input(snapshot)
        await self.current_config()
        return outcome
