"""The transcript model: a session's events folded into display blocks and per-call records.

This is plain Python (no textual) so that the whole history of a session lives here, while the
stream widget mounts only a bounded window of it. ``Transcript.apply(event)`` returns the keys of
the blocks it created or changed so the view can update just those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from openmanus_tui.termsafe import safe_event

if TYPE_CHECKING:  # the workbench's first frame comes before pydantic is imported
    from openmanus_tui import events as ev

# What the stream says when a run ends with work left (the workbench resumes it in place).
RESUME_NOTICES = {
    "cancelled": "Run stopped. Resume it with the banner above or /resume.",
    "awaiting_approval": "Run waiting for an approval. Resume it with the banner above or "
                         "/resume.",
}

BlockKind = Literal["user", "thought", "action", "observation", "answer", "error", "notice"]


@dataclass
class Block:
    key: str
    kind: BlockKind
    text: str = ""
    # action / observation blocks point at their call; thought blocks at their model message.
    call_id: str | None = None
    message_id: str | None = None
    hint: str = ""
    level: str = "info"
    streaming: bool = False
    # answer blocks of a research report: the report's citation number → the source registry's
    citations: dict[int, int] = field(default_factory=dict)


@dataclass
class CallRecord:
    """Everything known about one tool call, for its blocks and the inspector."""

    call_id: str
    tool: str
    message_id: str = ""
    args: dict[str, Any] | None = None
    raw_args: str = ""
    tier: int | None = None
    risk: str | None = None
    invalid: str | None = None
    approval: str = ""  # "", "waiting", or the decision ("approve", "edit", "deny", ...)
    approval_by: str = ""
    approval_reason: str = ""
    args_ran: dict[str, Any] | None = None
    status: str = "pending"  # pending, running, ok, error, denied, timeout, ...
    result: str = ""
    output: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    isolation: str | None = None
    started_ts: float | None = None
    finished_ts: float | None = None
    checkpoint_id: str | None = None
    checkpoint_after: str | None = None
    state_changed: list[str] = field(default_factory=list)
    injection: list[str] = field(default_factory=list)  # patterns the detector flagged
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished_checkpoint(self) -> str | None:
        """The checkpoint the call's result was produced after."""
        for item in reversed(self.events):
            if item.get("type") == "tool_finished":
                return item.get("checkpoint_id")
        return None


@dataclass
class Totals:
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    context_tokens: int = 0
    context_window: int = 0


class Transcript:
    """A session's display state, built from stored events and then from live ones."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.by_key: dict[str, Block] = {}
        self.calls: dict[str, CallRecord] = {}
        self.usage: dict[str, ev.Usage] = {}  # by model message id
        self.retries: dict[str, list[ev.Retry]] = {}  # by the message id they preceded
        self._pending_retries: list[ev.Retry] = []
        self._citations: dict[int, int] = {}  # the last research report's, for its answer
        self.totals = Totals()
        self.run_state = "idle"
        self.run_started_ts: float | None = None
        self.last_run_seconds = 0.0  # how long the last finished run took
        self.model = ""
        self.profile = ""
        self.isolation: str | None = None
        self.last_checkpoint: str | None = None
        self._seq = 0
        # Finished calls by the checkpoint their result came at, until the next checkpoint
        # names it as parent (scanning every call per checkpoint made long sessions quadratic).
        self._awaiting_checkpoint: dict[str, list[CallRecord]] = {}

    # ---- building -------------------------------------------------------------------------
    def _add(self, kind: BlockKind, key: str | None = None, **data: Any) -> Block:
        self._seq += 1
        block = Block(key=key or f"{kind}:{self._seq}", kind=kind, **data)
        self.blocks.append(block)
        self.by_key[block.key] = block
        return block

    def _remove(self, key: str) -> None:
        block = self.by_key.pop(key, None)
        if block is not None:
            self.blocks.remove(block)

    def _call(self, call_id: str, tool: str = "") -> CallRecord:
        rec = self.calls.get(call_id)
        if rec is None:
            rec = self.calls[call_id] = CallRecord(call_id=call_id, tool=tool)
        return rec

    def apply(self, event: ev.Event) -> list[str]:
        """Fold one event in; return the keys of blocks created or changed ('-key' = removed).

        Every event on its way to the stream comes here, live or stored (opening a session,
        a branch, a replay): model and tool text shows control sequences as visible escapes."""
        event = safe_event(event)
        if event.checkpoint_id:
            self.last_checkpoint = event.checkpoint_id
        handler = getattr(self, f"_on_{event.type}", None)
        return handler(event) if handler else []

    def _on_run_started(self, e: ev.RunStarted) -> list[str]:
        self.run_state = "running"
        self.run_started_ts = e.ts
        self.model, self.profile = e.model, e.profile
        if e.input:
            return [self._add("user", text=e.input).key]
        return []

    def mark_interrupted(self) -> list[str]:
        """The run ended without finishing (the process was killed, or it was stopped):
        nothing is streaming or running any more. Returns the keys of the blocks changed."""
        if self.run_state in ("running", "idle"):
            self.run_state = "interrupted"
        changed = []
        for block in self.blocks:
            if block.streaming:
                block.streaming = False
                changed.append(block.key)
        for rec in self.calls.values():
            if rec.status == "running":
                rec.status = "interrupted"
                if f"observation:{rec.call_id}" in self.by_key:
                    changed.append(f"observation:{rec.call_id}")
        return changed

    def _on_run_finished(self, e: ev.RunFinished) -> list[str]:
        self.run_state = e.status
        if self.run_started_ts is not None and e.ts:
            self.last_run_seconds = max(0.0, e.ts - self.run_started_ts)
        changed = []
        for key in [b.key for b in self.blocks if b.streaming]:
            self.by_key[key].streaming = False
            changed.append(key)
        if e.status != "completed":
            changed += self.mark_interrupted()
        if e.status in RESUME_NOTICES:
            # The runtime's reason names the CLI command; here the banner and /resume do it.
            changed.append(self._add("notice", text=RESUME_NOTICES[e.status],
                                     level="warning").key)
        elif e.status not in ("completed",) and e.reason:
            level = "warning" if e.status != "error" else "error"
            changed.append(self._add("notice", text=f"Run {e.status}: {e.reason}", level=level).key)
        return changed

    def _on_thought_delta(self, e: ev.ThoughtDelta) -> list[str]:
        key = f"thought:{e.message_id}"
        block = self.by_key.get(key)
        if block is None:
            block = self._add("thought", key=key, message_id=e.message_id, streaming=True)
        block.text += e.text
        return [key]

    def _on_thought(self, e: ev.Thought) -> list[str]:
        key = f"thought:{e.message_id}"
        block = self.by_key.get(key) or self._add("thought", key=key, message_id=e.message_id)
        block.text = e.text
        block.streaming = False
        return [key]

    def _on_tool_call(self, e: ev.ToolCall) -> list[str]:
        rec = self._call(e.call_id, e.tool)
        rec.tool, rec.args, rec.raw_args = e.tool, e.args, e.raw_args
        rec.tier, rec.risk, rec.invalid = e.tier, e.risk, e.invalid
        rec.message_id = e.message_id
        rec.checkpoint_id = e.checkpoint_id
        rec.events.append(e.model_dump())
        key = f"action:{e.call_id}"
        if key not in self.by_key:
            self._add("action", key=key, call_id=e.call_id)
        return [key]

    def _on_approval_requested(self, e: ev.ApprovalRequested) -> list[str]:
        keys = []
        for call in e.calls:
            rec = self._call(call.call_id, call.tool)
            rec.approval = "waiting"
            rec.approval_reason = call.reason
            keys.append(f"action:{call.call_id}")
        return [k for k in keys if k in self.by_key]

    def _on_approval_decided(self, e: ev.ApprovalDecided) -> list[str]:
        rec = self._call(e.call_id, e.tool)
        rec.approval, rec.approval_by, rec.approval_reason = e.decision, e.by, e.reason
        if e.args is not None:
            rec.args_ran = e.args
        rec.events.append(e.model_dump())
        key = f"action:{e.call_id}"
        return [key] if key in self.by_key else []

    def _obs(self, call_id: str) -> str:
        key = f"observation:{call_id}"
        if key not in self.by_key:
            self._add("observation", key=key, call_id=call_id)
        return key

    def _on_tool_started(self, e: ev.ToolStarted) -> list[str]:
        rec = self._call(e.call_id, e.tool)
        rec.status, rec.args_ran, rec.isolation = "running", e.args, e.isolation
        rec.started_ts = e.ts
        if e.isolation:
            self.isolation = e.isolation
        rec.events.append(e.model_dump())
        return [self._obs(e.call_id)]

    def _on_tool_output(self, e: ev.ToolOutput) -> list[str]:
        rec = self._call(e.call_id)
        rec.output.extend(e.text.splitlines() or [""])
        return [self._obs(e.call_id)]

    def _on_tool_finished(self, e: ev.ToolFinished) -> list[str]:
        rec = self._call(e.call_id, e.tool)
        rec.status, rec.result, rec.duration_ms = e.status, e.result, e.duration_ms
        rec.finished_ts = e.ts
        rec.isolation = e.isolation or rec.isolation
        rec.events.append(e.model_dump())
        if e.checkpoint_id:
            self._awaiting_checkpoint.setdefault(e.checkpoint_id, []).append(rec)
        keys = [self._obs(e.call_id)]
        if f"action:{e.call_id}" in self.by_key:
            keys.append(f"action:{e.call_id}")
        return keys

    def _on_checkpoint(self, e: ev.Checkpoint) -> list[str]:
        # The checkpoint written after a call's step tells which state keys that step changed.
        if e.parent_id is None:
            return []
        for rec in self._awaiting_checkpoint.pop(e.parent_id, []):
            if (rec.checkpoint_after is None and rec.finished_ts is not None
                    and rec.finished_checkpoint == e.parent_id):
                rec.checkpoint_after = e.checkpoint_id
                rec.state_changed = list(e.changed)
        return []

    def _on_usage(self, e: ev.Usage) -> list[str]:
        self.usage[e.message_id] = e
        if self._pending_retries:
            self.retries[e.message_id] = self._pending_retries
            self._pending_retries = []
        from openmanus_tui.runtime.views import add_usage

        t = self.totals
        add_usage(t, e)  # the core's totals rule (runtime/views.py)
        t.context_tokens, t.context_window = e.context_tokens, e.context_window or t.context_window
        return []

    def _on_retry(self, e: ev.Retry) -> list[str]:
        self._pending_retries.append(e)
        text = f"Model call failed ({e.error}); retry {e.attempt} in {e.wait_s:g}s"
        return [self._add("notice", text=text, level="warning").key]

    def _on_final_answer(self, e: ev.FinalAnswer) -> list[str]:
        changed: list[str] = []
        # The model's last message is both a thought and the answer, and a ``terminate`` call
        # carries the answer again: show it once, as the answer. Only this run's closing
        # blocks are looked at (back to the last thought or user message).
        for block in reversed(list(self.blocks)):
            if block.kind == "user":
                break
            rec = self.calls.get(block.call_id or "")
            if block.kind in ("action", "observation") and rec is not None \
                    and rec.tool == "terminate":
                self._remove(block.key)
                changed.append(f"-{block.key}")
            elif block.kind == "thought":
                if block.text.strip() == e.text.strip():
                    self._remove(block.key)
                    changed.append(f"-{block.key}")
                break
            elif block.kind != "notice":
                break
        changed.append(self._add("answer", text=e.text, citations=self._citations).key)
        self._citations = {}
        return changed

    def _on_error(self, e: ev.Error) -> list[str]:
        return [self._add("error", text=e.message, hint=e.hint, level=e.error_class).key]

    def _on_notice(self, e: ev.Notice) -> list[str]:
        return [self._add("notice", text=e.text, level=e.level).key]

    def _on_breaker(self, e: ev.Breaker) -> list[str]:
        if e.state == "open":
            why = f" after {e.failures} failures ({e.error})" if e.error else ""
            text = f"⚡ Circuit breaker {e.name} opened{why}: not called until its probe"
        elif e.state == "half_open":
            text = f"⚡ Circuit breaker {e.name}: probing"
        else:
            text = f"Circuit breaker {e.name} closed: the endpoint answers again"
        level = "info" if e.state == "closed" else "warning"
        return [self._add("notice", text=text, level=level).key]

    def _on_fallback(self, e: ev.Fallback) -> list[str]:
        text = f"{e.from_model} failed ({e.reason}); the step goes to {e.to_model}"
        return [self._add("notice", text=text, level="warning").key]

    def _on_research_step(self, e: ev.ResearchStep) -> list[str]:
        # The research graph's progress (research/graph.py); the report itself, with its
        # citation check and contradiction list, is the answer block.
        level = "warning" if e.stage == "verify" and e.data.get("removed") else "info"
        if e.stage == "verify" and isinstance(e.data.get("sources"), dict):
            # The report (the next answer) cites by its own numbers: keep the map to the registry.
            self._citations = {int(k): int(v) for k, v in e.data["sources"].items()
                               if str(k).isdigit() and isinstance(v, int)}
        return [self._add("notice", text=f"research · {e.stage}: {e.text}", level=level).key]

    def _on_clarification(self, e: ev.Clarification) -> list[str]:
        text = f"Question: {e.question}" + (f"\nAnswer: {e.answer}" if e.answer else "")
        return [self._add("notice", text=text, level="warning" if e.answer is None else "info").key]

    def _on_injection_flagged(self, e: ev.InjectionFlagged) -> list[str]:
        rec = self.calls.get(e.call_id)
        if rec is not None:
            rec.injection = list(e.patterns)
        text = f"⚠ Possible prompt injection in {e.tool} output: {', '.join(e.patterns)}"
        if e.excerpt:
            text += f"\n“{e.excerpt}”"
        return [self._add("notice", text=text, level="warning").key]

