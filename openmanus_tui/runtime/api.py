"""The headless session API: what the CLI, the workbench, export and a REST API all call.

Front ends parse input, show output and ask the person; what a session *is* lives here once:

- sessions: ``list_sessions``, ``get_session``, ``rename_session``, ``delete_session``,
  ``copy_branch`` (also as ``Runtime`` methods), ``database_size``;
- a branch: ``branch_events`` (the dropped-run rule is ``store/tree.py``'s) and
  ``branch_transcript`` (``runtime/views.py``: a dead run reads ``interrupted``);
- what branch operations start from: ``user_message_at``, ``tool_calls_at``,
  ``live_replay_start``;
- ``set_session_model`` / ``set_session_profile``: what ``/model`` and ``/agent`` store;
- ``export_document`` / ``render_export``: the one export both ``openmanus export`` and the
  workbench's ``/export`` write; ``import_document`` reads one back;
- ``check_edited_args`` and ``add_usage`` (re-exported from ``runtime/views.py``);
- research sources: ``session_sources`` and ``source_excerpt`` (the Sources tab),
  ``fetch_source`` (``openmanus fetch``); deleting a session deletes its sources too.

Runs, approvals, forks, switches and compaction are ``AgentSession`` / ``History`` methods.
The value types front ends name (``Decision``, ``SessionRecord``, the tree types, ...) are
re-exported here on first use (``__getattr__``: importing this module stays cheap), so that
front ends reach the core only through ``runtime`` — the import-linter contract in
pyproject.toml checks it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from openmanus_tui.errors import OpenManusError
from openmanus_tui.runtime.views import (
    INTERRUPTED,
    BranchTranscript,
    UsageTotals,
    add_usage,
    check_edited_args,
    transcript_of,
)

if TYPE_CHECKING:
    # The lazily re-exported names (``_REEXPORTS``), spelled out for type checkers.
    from openmanus_tui import events as ev
    from openmanus_tui.agent.approval import Decision as Decision
    from openmanus_tui.agent.prompts import PROFILES as PROFILES
    from openmanus_tui.agent.prompts import resolve_profile as resolve_profile
    from openmanus_tui.agent.rules import ACTIONS as ACTIONS
    from openmanus_tui.agent.rules import SCOPES as SCOPES
    from openmanus_tui.agent.rules import Rule as Rule
    from openmanus_tui.agent.rules import RuleError as RuleError
    from openmanus_tui.agent.rules import RulePattern as RulePattern
    from openmanus_tui.agent.rules import explain_miss as explain_miss
    from openmanus_tui.agent.rules import subject as subject
    from openmanus_tui.agent.rules import suggest_pattern as suggest_pattern
    from openmanus_tui.config import Settings
    from openmanus_tui.export import ExportDoc
    from openmanus_tui.export import is_live_only as is_live_only
    from openmanus_tui.export.transcript import resilience_text as resilience_text
    from openmanus_tui.models.factory import make_model as make_model
    from openmanus_tui.research import Fetched, SourceRecord
    from openmanus_tui.research.export import render_research as render_research
    from openmanus_tui.research.export import write_research as write_research
    from openmanus_tui.research.graph import DEPTHS as DEPTHS
    from openmanus_tui.research.models import ResearchResult as ResearchResult
    from openmanus_tui.research.policy import PolicyRefusal as PolicyRefusal
    from openmanus_tui.research.verify import SUPPORT_THRESHOLD as SUPPORT_THRESHOLD
    from openmanus_tui.runtime.session import AgentSession, Runtime
    from openmanus_tui.runtime.session import Breakpoints as Breakpoints
    from openmanus_tui.sandbox import IsolationLevel as IsolationLevel
    from openmanus_tui.sandbox import Sandbox as Sandbox
    from openmanus_tui.sandbox import format_report as format_sandbox_report  # noqa: F401
    from openmanus_tui.sandbox import probe as probe_sandbox  # noqa: F401
    from openmanus_tui.sandbox.git_guard import GitGuard as GitGuard
    from openmanus_tui.sandbox.git_guard import find_git_entries as find_git_entries
    from openmanus_tui.sandbox.state_guard import (
        ensure_workspace_allowed as ensure_workspace_allowed,
    )
    from openmanus_tui.store.api_runs import ApiRun as ApiRun
    from openmanus_tui.store.api_runs import ApiRunStore as ApiRunStore
    from openmanus_tui.store.db import SessionRecord as SessionRecord
    from openmanus_tui.store.integrity import check_file as check_database  # noqa: F401
    from openmanus_tui.store.integrity import damaged_error as damaged_error
    from openmanus_tui.store.integrity import is_damage as is_damage
    from openmanus_tui.store.integrity import recover as recover_database  # noqa: F401
    from openmanus_tui.store.locks import SessionBusy as SessionBusy
    from openmanus_tui.store.locks import is_running as is_session_running  # noqa: F401
    from openmanus_tui.store.rules import Reach as Reach
    from openmanus_tui.store.rules import RuleStore as RuleStore
    from openmanus_tui.store.rules import rule_reach as rule_reach
    from openmanus_tui.store.snapshots import FileChange as FileChange
    from openmanus_tui.store.tree import KIND_STYLE as KIND_STYLE
    from openmanus_tui.store.tree import SessionTree as SessionTree
    from openmanus_tui.store.tree import TreeNode as TreeNode
    from openmanus_tui.tools.base import ToolRegistry as ToolRegistry
    from openmanus_tui.tools.base import describe_validation_error as describe_validation_error
    from openmanus_tui.tools.mcp_trust import TrustStore as TrustStore
    from openmanus_tui.tools.mcp_trust import fingerprint as mcp_fingerprint  # noqa: F401
    from openmanus_tui.utilities.mcp_config import load_mcp_config as load_mcp_config
    from openmanus_tui.utilities.mcp_config import parse_mcp_config as parse_mcp_config

__all__ = [
    "INTERRUPTED",
    "BranchTranscript",
    "UsageTotals",
    "add_usage",
    "apply_resilience_settings",
    "branch_events",
    "branch_transcript",
    "cache_stats",
    "check_edited_args",
    "check_fetch_url",
    "clear_cache",
    "copy_branch",
    "database_size",
    "delete_session",
    "describe_bounds",
    "export_document",
    "fetch_source",
    "get_session",
    "graph_nodes",
    "import_document",
    "list_sessions",
    "live_replay_start",
    "rename_session",
    "render_export",
    "research_result",
    "resilience_status",
    "session_sources",
    "session_state",
    "session_state_history",
    "session_transcript",
    "set_session_model",
    "set_session_profile",
    "set_session_workspace",
    "source_excerpt",
    "stored_breakers",
    "tool_calls_at",
    "transcript_of",
    "user_message_at",
    "verify_report_text",
]

EXPORT_FORMATS = ("md", "json", "html")

# Names front ends use from the core's lower layers, and where they live. Resolved lazily by
# ``__getattr__`` below (PEP 562): the workbench imports this module before its first frame.
_REEXPORTS: dict[str, str] = {
    "SessionRecord": "openmanus_tui.store.db",
    "Breakpoints": "openmanus_tui.runtime.session",
    "ApiRun": "openmanus_tui.store.api_runs",
    "ApiRunStore": "openmanus_tui.store.api_runs",
    "SessionBusy": "openmanus_tui.store.locks",
    "is_session_running": "openmanus_tui.store.locks",
    "KIND_STYLE": "openmanus_tui.store.tree",
    "SessionTree": "openmanus_tui.store.tree",
    "TreeNode": "openmanus_tui.store.tree",
    "FileChange": "openmanus_tui.store.snapshots",
    "Decision": "openmanus_tui.agent.approval",
    "ACTIONS": "openmanus_tui.agent.rules",
    "SCOPES": "openmanus_tui.agent.rules",
    "Rule": "openmanus_tui.agent.rules",
    "RuleError": "openmanus_tui.agent.rules",
    "RulePattern": "openmanus_tui.agent.rules",
    "explain_miss": "openmanus_tui.agent.rules",
    "subject": "openmanus_tui.agent.rules",
    "suggest_pattern": "openmanus_tui.agent.rules",
    "Reach": "openmanus_tui.store.rules",
    "RuleStore": "openmanus_tui.store.rules",
    "rule_reach": "openmanus_tui.store.rules",
    "PROFILES": "openmanus_tui.agent.prompts",
    "resolve_profile": "openmanus_tui.agent.prompts",
    "make_model": "openmanus_tui.models.factory",
    "resilience_text": "openmanus_tui.export.transcript",
    "PolicyRefusal": "openmanus_tui.research.policy",
    "DEPTHS": "openmanus_tui.research.graph",
    "ResearchResult": "openmanus_tui.research.models",
    "SUPPORT_THRESHOLD": "openmanus_tui.research.verify",
    "write_research": "openmanus_tui.research.export",
    "render_research": "openmanus_tui.research.export",
    "ToolRegistry": "openmanus_tui.tools.base",
    "describe_validation_error": "openmanus_tui.tools.base",
    "is_live_only": "openmanus_tui.export",
    "probe_sandbox": "openmanus_tui.sandbox",
    "format_sandbox_report": "openmanus_tui.sandbox",
    "IsolationLevel": "openmanus_tui.sandbox",
    "Sandbox": "openmanus_tui.sandbox",
    "GitGuard": "openmanus_tui.sandbox.git_guard",
    "find_git_entries": "openmanus_tui.sandbox.git_guard",
    "ensure_workspace_allowed": "openmanus_tui.sandbox.state_guard",
    "TrustStore": "openmanus_tui.tools.mcp_trust",
    "mcp_fingerprint": "openmanus_tui.tools.mcp_trust",
    "load_mcp_config": "openmanus_tui.utilities.mcp_config",
    "parse_mcp_config": "openmanus_tui.utilities.mcp_config",
    "damaged_error": "openmanus_tui.store.integrity",
    "is_damage": "openmanus_tui.store.integrity",
    "check_database": "openmanus_tui.store.integrity",
    "recover_database": "openmanus_tui.store.integrity",
}
_RENAMED = {
    "probe_sandbox": "probe",
    "format_sandbox_report": "format_report",
    "mcp_fingerprint": "fingerprint",
    "check_database": "check_file",
    "is_session_running": "is_running",
    "recover_database": "recover",
}


def __getattr__(name: str) -> Any:
    module = _REEXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value
    return value


# ---- sessions ---------------------------------------------------------------------------
async def list_sessions(runtime: Runtime) -> list[SessionRecord]:
    """Every session, most recently updated first."""
    return await runtime.db.list_sessions()


async def get_session(runtime: Runtime, session_id: str) -> SessionRecord:
    """A session's record by id or unique id prefix (``SessionNotFound`` otherwise)."""
    return await runtime.db.get_session(session_id)


async def rename_session(runtime: Runtime, session_id: str, title: str) -> SessionRecord:
    """Give a session a new title (whitespace folded); an empty title is refused."""
    title = " ".join(title.split())
    if not title:
        raise OpenManusError("a session title cannot be empty", error_class="user")
    record = await runtime.db.get_session(session_id)
    await runtime.db.update_session(record.id, title=title)
    record.title = title
    return record


async def delete_session(runtime: Runtime, session_id: str) -> SessionRecord:
    """Delete a session, its checkpoints, events and snapshots; returns what was deleted."""
    from openmanus_tui.memory.manager import delete_pins
    from openmanus_tui.memory.observations import ObservationStore
    from openmanus_tui.research.store import ResearchResults
    from openmanus_tui.store.api_runs import ApiRunStore
    from openmanus_tui.store.retention import remove_store
    from openmanus_tui.writing.records import WritingRecords

    record = await runtime.db.get_session(session_id)
    await runtime.db.delete_session(record.id)
    await ApiRunStore(runtime.db).delete_for_session(record.id)  # the REST API's runs
    if runtime.db.damaged is None:
        records = WritingRecords(runtime.db)  # documents written from the session
        await records.setup()
        await records.delete_session(record.id)
    await ResearchResults(runtime.db).delete_session(record.id)
    await delete_pins(runtime.db, record.id)
    if runtime.db.damaged is None:  # large results, stored once
        await ObservationStore(runtime.db).delete_session(record.id)
    remove_store(runtime.settings.resolved_data_dir / "snapshots", record.id)
    await _forget_cached(runtime, record.id)
    await _delete_sources(runtime, record.id)
    return record


async def _forget_cached(runtime: Runtime, session_id: str) -> None:
    """Cached model replies and tool results hold the session's messages: they go too."""
    from openmanus_tui.resilience.model_cache import TABLE as MODEL_TABLE
    from openmanus_tui.resilience.tool_cache import TABLE as TOOL_TABLE
    from openmanus_tui.resilience.ttl_table import TtlTable

    for table in (MODEL_TABLE, TOOL_TABLE):
        await TtlTable(runtime.db, table, ttl=1, max_bytes=1).forget_session(session_id)


async def _delete_sources(runtime: Runtime, session_id: str) -> None:
    """The session's sources, and the stored page texts no other session's sources use."""
    from openmanus_tui.research.documents import DocumentStore
    from openmanus_tui.research.registry import SourceRegistry

    await SourceRegistry(runtime.db).delete_session(session_id)
    await DocumentStore(runtime.db).prune_unreferenced()


async def copy_branch(session: AgentSession, head: str | None = None) -> AgentSession:
    """Save the branch ending at ``head`` (an id or its start or end; None: the current one)
    as a new session of its own."""
    history = session.history
    head = await history.resolve(head) if head else (await history.tree()).current
    if head is None:
        raise OpenManusError("the session has no steps to copy", error_class="user")
    return await history.save_as_new_session(head)


async def database_size(runtime: Runtime) -> int:
    """The database's size on disk in bytes, write-ahead log included."""
    return await runtime.db.size_bytes()


# ---- a branch's events and transcript ----------------------------------------------------
async def branch_events(session: AgentSession, head: str | None = None) -> list[ev.Event]:
    """The stored events of the branch ending at ``head`` (an id, or None: the current
    branch), in order. A session with one branch shows every stored event (also those of a
    run that failed before its first checkpoint), without building the tree."""
    history = session.history
    if head is None and not history.emptied and await history.head_count() <= 1:
        return await session.runtime.db.events(session.id)
    return await history.recorded(head)


async def branch_transcript(
    session: AgentSession, head: str | None = None, *, live: bool = False
) -> BranchTranscript:
    """What every front end shows for a branch: its events and how to read them (see
    ``runtime/views.py``). ``live``: a run of this session is going on in this process."""
    return transcript_of(await branch_events(session, head), live=live, head=head)


async def session_transcript(session: AgentSession) -> BranchTranscript:
    """Every stored event of every branch, in the order they happened (the raw record)."""
    return transcript_of(await session.runtime.db.events(session.id))


# ---- what branch operations start from ---------------------------------------------------
async def user_message_at(session: AgentSession, checkpoint_id: str) -> str:
    """The user message of the run that ``checkpoint_id`` belongs to (full text; "" when
    the branch has none up to there)."""
    events = await session.history.recorded(checkpoint_id)
    inputs = [e.input for e in events if e.type == "run_started" and e.input]  # type: ignore[attr-defined]
    return inputs[-1] if inputs else ""


async def tool_calls_at(session: AgentSession, checkpoint_id: str) -> list[dict[str, Any]]:
    """The tool calls of the model reply at ``checkpoint_id`` (``id``, ``name``, ``args``):
    what "edit arguments" offers to change. Empty when the step made none."""
    from langchain_core.messages import AIMessage

    state = await session.graph.aget_state(session.history.at(checkpoint_id))
    messages = (state.values or {}).get("messages", [])
    reply = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    return [dict(c) for c in reply.tool_calls] if reply is not None else []


async def live_replay_start(session: AgentSession, head: str | None = None) -> str:
    """The step a live replay of the branch ending at ``head`` (None: the current one)
    re-executes from: its first model step."""
    tree = await session.history.tree()
    head = (await session.history.resolve(head)) if head else tree.current
    line = tree.lineage(head) if head else []
    first = next((c for c in line if tree.nodes[c].node == "call_llm"), None)
    if first is None:
        raise OpenManusError(
            "nothing to replay live: the branch has no model step", error_class="user"
        )
    return first


# ---- export ------------------------------------------------------------------------------
async def export_document(session: AgentSession, branch: str | None = None) -> ExportDoc:
    """The export of a session (every branch) or of one branch (``branch``: its head, an id
    or its start or end), secrets from the settings and the environment redacted."""
    from openmanus_tui import export

    runtime = session.runtime
    history = session.history
    tree = await history.tree()
    head = await history.resolve(branch) if branch else None
    events = await history.recorded(head) if head else await runtime.db.events(session.id)
    branches = [
        {"head": h, "checkpoints": tree.lineage(h), "label": tree.nodes[h].label}
        for h in tree.heads
        if head is None or h == head
    ]
    secrets = [*export.secrets_from_settings(runtime.settings), *export.secrets_from_environ()]
    return export.prepare_export(session.record, events, branches, secrets)


def render_export(doc: ExportDoc, fmt: str) -> str:
    """``doc`` as Markdown (``md``), JSON or HTML, ending with a newline."""
    from openmanus_tui import export

    writers = {"md": export.to_markdown, "json": export.to_json, "html": export.to_html}
    if fmt not in EXPORT_FORMATS:
        raise OpenManusError(
            f"unknown export format {fmt!r}; use md, json or html", error_class="user"
        )
    text = writers[fmt](doc)
    return text if text.endswith("\n") else text + "\n"


# ---- a session's settings ----------------------------------------------------------------
async def set_session_model(session: AgentSession, spec: str) -> AgentSession:
    """Store ``spec`` (as typed) as the session's model; returns the session reopened with
    it, which the next run uses."""
    await session.runtime.db.update_session(session.id, model=spec)
    return await session.runtime.open_session(session.id, model=spec)


async def set_session_profile(session: AgentSession, profile: str) -> None:
    """Store the agent profile the session's next run uses."""
    await session.runtime.db.update_session(session.id, profile=profile)
    session.record.profile = profile


async def import_document(
    runtime: Runtime, text: str | bytes, *, source: str = "input"
) -> tuple[AgentSession, int]:
    """A new session from a JSON export or a ``run --json`` / ``sessions show --json``
    stream; returns it and how many events it holds."""
    from openmanus_tui.export import from_json
    from openmanus_tui.runtime.importer import import_session

    doc = from_json(text, source=source)
    return await import_session(runtime, doc), len(doc.events)


# ---- state as LangGraph shows it (the REST API's threads) --------------------------------
def graph_nodes(runtime: Runtime, profile: str) -> list[str]:
    """The node names of the graph a profile runs (what a breakpoint may name)."""
    return [n for n in runtime.graph_for(profile).nodes if not n.startswith("__")]


async def session_state(session: AgentSession, checkpoint_id: str | None = None) -> Any:
    """LangGraph's ``StateSnapshot`` of the session's current step, or of ``checkpoint_id``
    (``OpenManusError`` when the session has no such checkpoint), read with the graph of the
    session's profile (its ``next`` and tasks name that graph's nodes)."""
    graph = session.graph
    if checkpoint_id is None:
        return await graph.aget_state(await session.current_config())
    snapshot = await graph.aget_state(session.history.at(checkpoint_id))
    if snapshot.created_at is None:  # LangGraph's empty state for a checkpoint it lacks
        raise OpenManusError(f"no checkpoint {checkpoint_id!r} in this session", error_class="user")
    return snapshot


async def session_state_history(
    session: AgentSession, *, limit: int, before: str | None = None
) -> list[Any]:
    """``StateSnapshot`` s of every checkpoint of the session (all branches), newest first."""
    graph = session.graph
    config = {"configurable": {"thread_id": session.id, "checkpoint_ns": ""}}
    before_config = session.history.at(before) if before else None
    return [s async for s in graph.aget_state_history(config, before=before_config, limit=limit)]


async def set_session_workspace(session: AgentSession, workspace: str) -> None:
    """Give a session that has not run yet another workspace, checked as ``--workspace`` is
    (a file, or openmanus's own state, is refused with one line)."""
    from pathlib import Path

    from openmanus_tui.limits import check_workspace
    from openmanus_tui.sandbox.state_guard import ensure_workspace_allowed

    path = Path(workspace).expanduser().resolve()
    if str(path) == session.record.workspace:
        return
    if session.record.status != "new":
        raise OpenManusError(
            "a session's workspace is fixed once it has run", error_class="user"
        )
    ensure_workspace_allowed(path, session.runtime.settings)
    path = check_workspace(path)
    await session.runtime.db.update_session(session.id, workspace=str(path))
    session.record.workspace = str(path)


# ---- doctor ----------------------------------------------------------------------------
def describe_bounds(settings: Any) -> str:
    """The per-command resource bounds in force (sandbox/cgroup.py, sandbox/diskwatch.py)."""
    from openmanus_tui.sandbox import cgroup

    s = settings.sandbox
    text = "  bounds:      " + cgroup.describe(
        cgroup.support(),
        memory_mb=s.memory_total_mb,
        max_pids=s.max_pids,
        max_processes=s.max_processes,
    )
    write = (
        f"{s.workspace_write_mb} MiB per command (checked while it runs; "
        f"one file at most {min(s.max_file_mb, s.workspace_write_mb)} MiB)"
        if s.workspace_write_mb
        else "unbounded"
    )
    return f"{text}\n  workspace writes: {write}"


# ---- resilience (issue 16): breakers, fallbacks, caches ----------------------------------
def resilience_status(runtime: Runtime) -> dict[str, Any]:
    """What ``/health``, ``/metrics``, the status line and ``doctor`` show: every circuit
    breaker this process has used (name, state, failures in a row, opened_at, last error,
    threshold, recovery timeout), how many steps each model answered, and this process's
    counts of fallbacks and cache hits (``fallbacks``, ``model_cache_hits``,
    ``tool_cache_hits``)."""
    return {
        "breakers": [state.as_dict() for state in runtime.breakers.states()],
        "answers": dict(runtime.answers),
        **runtime.counters,
    }


def apply_resilience_settings(runtime: Runtime) -> None:
    """After a configuration reload: the breakers take the new ``resilience`` limits (the
    caches and fallbacks are read from ``runtime.settings`` at each run anyway)."""
    r = runtime.settings.resilience
    runtime.breakers.configure(
        failure_threshold=r.failure_threshold, recovery_timeout=r.recovery_timeout
    )


def stored_breakers(settings: Settings) -> list[Any]:
    """The breaker states recorded in the database file, for a process that runs nothing
    (``openmanus doctor``): ``BreakerState`` objects with ``describe()``."""
    from openmanus_tui.resilience.breakers import stored_states

    return stored_states(settings.db_path, recovery_timeout=settings.resilience.recovery_timeout)


async def cache_stats(runtime: Runtime) -> dict[str, Any]:
    """Entries, size, hits and misses (by model or tool) of the model and tool caches."""
    from openmanus_tui.resilience.model_cache import ModelCache
    from openmanus_tui.resilience.tool_cache import ToolCache

    settings = runtime.settings
    model = ModelCache(runtime.db, settings.cache, settings.model.temperature)
    tool = ToolCache(runtime.db, settings.cache)
    why = ""
    if not settings.cache.model:
        why = "cache.model = false"
    elif not model.enabled:
        why = (f"model.temperature is {settings.model.temperature:g}: only temperature 0 is "
               "cached unless cache.model_any_temperature = true")
    return {
        "model": {**(await model.stats()).as_dict(), "enabled": model.enabled, "off_why": why},
        "tool": {**(await tool.stats()).as_dict(), "enabled": tool.enabled,
                 "off_why": "" if tool.enabled else "cache.tools = false"},
    }


async def clear_cache(runtime: Runtime, which: str = "all") -> dict[str, int]:
    """Empty the model cache, the tool cache or both; returns the entries removed."""
    from openmanus_tui.resilience.model_cache import ModelCache
    from openmanus_tui.resilience.tool_cache import ToolCache

    settings = runtime.settings
    removed: dict[str, int] = {}
    if which in ("all", "model"):
        removed["model"] = await ModelCache(
            runtime.db, settings.cache, settings.model.temperature
        ).table.clear()
    if which in ("all", "tool"):
        removed["tool"] = await ToolCache(runtime.db, settings.cache).table.clear()
    return removed


# ---- research sources (research/): the Sources tab and ``openmanus fetch`` -----------------
async def session_sources(session: AgentSession) -> list[SourceRecord]:
    """The session's sources by number (``research/registry.py``)."""
    return await session.runtime.sources.sources(session.id)


async def source_excerpt(session: AgentSession, number: int, chars: int = 1500) -> str | None:
    """The start of source ``number``'s stored text, or its search snippets when it was never
    fetched; None when the session has no such source."""
    service = session.runtime.sources
    record = await service.registry.get(session.id, number)
    if record is None:
        return None
    text = await service.text(record)
    if text is None:
        return "\n\n".join(s.get("snippet", "") for s in record.snippets) or ""
    return text if len(text) <= chars else text[:chars].rstrip() + " …"


def check_fetch_url(settings: Any, url: str) -> None:
    """Refuse ``url`` (``PolicyRefusal``, one line) when the ``[network]`` policy would, before
    anything is opened or resolved; the fetch checks it again, DNS answers included."""
    from openmanus_tui.research.policy import NetworkPolicy

    NetworkPolicy.from_settings(settings.network).check_url(url)


async def fetch_source(
    runtime: Runtime, url: str, session_id: str | None = None, *, refresh: bool = False
) -> Fetched:
    """Fetch ``url`` through the network policy and score it (registered in ``session_id``'s
    sources when given; ``refresh``: not from the cache). Raises ``PolicyRefusal``,
    ``FetchError`` or ``ExtractError`` (``OpenManusError``s with one-line messages)."""
    if session_id:
        session_id = (await runtime.db.get_session(session_id)).id
    return await runtime.sources.fetch(url, session_id=session_id, refresh=refresh)


# ---- the research graph (issue 13) ----------------------------------------------------------
async def research_result(runtime: Runtime, session_id: str) -> Any:
    """The newest ``ResearchResult`` of a session (None when it has none)."""
    from openmanus_tui.research.store import ResearchResults

    return await ResearchResults(runtime.db).latest(session_id)


async def verify_report_text(
    runtime: Runtime, report: str, *, base_dir: Any, session_id: str | None = None
) -> Any:
    """Check a report's citations (``research/verify.py``) against a session's sources or,
    without one, the entries of its reference list fetched through the network policy
    (``research/report_sources.py``). Returns a ``Verification``."""
    from pathlib import Path

    from openmanus_tui.research.report_sources import report_sources
    from openmanus_tui.research.verify import verify_report

    if session_id:
        session_id = (await runtime.db.get_session(session_id)).id
    sources = await report_sources(
        report, runtime.sources, session_id=session_id, base_dir=Path(base_dir)
    )
    return verify_report(report, sources)
