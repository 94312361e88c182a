"""The transcript the Markdown and HTML exports both render: runs, their entries, tool steps.

Events are grouped once here, so the two formats cannot drift apart: each run holds the user's
message, the model's thoughts, one ``ToolStep`` per call (call, approval request, decisions,
start, output, result), errors, the final answer and its totals.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from openmanus_tui import events as ev

EntryKind = Literal[
    "user", "thought", "tool", "usage", "final", "error", "notice", "retry", "memory", "injection",
    "resilience",
]


@dataclass
class ToolStep:
    call_id: str
    tool: str
    call: ev.ToolCall | None = None
    request: ev.ApprovalCall | None = None
    decisions: list[ev.ApprovalDecided] = field(default_factory=list)
    started: ev.ToolStarted | None = None
    output: list[ev.ToolOutput] = field(default_factory=list)
    finished: ev.ToolFinished | None = None
    # The call was made in an earlier run (e.g. a run that paused for approval).
    continued: bool = False

    @property
    def args(self) -> dict[str, Any] | None:
        if self.call is not None and self.call.args is not None:
            return self.call.args
        if self.request is not None:
            return self.request.args
        return self.started.args if self.started is not None else None

    @property
    def args_text(self) -> str:
        """The arguments as indented JSON, or the raw text the model sent if it was not JSON."""
        if self.args is not None:
            return json.dumps(self.args, indent=2, ensure_ascii=False)
        return self.call.raw_args if self.call is not None else ""

    @property
    def ran_with(self) -> dict[str, Any] | None:
        """The arguments it ran with, when they differ from the call's (an edit)."""
        if self.started is not None and self.args is not None and self.started.args != self.args:
            return self.started.args
        return None


@dataclass
class Entry:
    kind: EntryKind
    event: ev.Event | None = None
    step: ToolStep | None = None


@dataclass
class RunView:
    run_id: str
    started: ev.RunStarted | None = None
    finished: ev.RunFinished | None = None
    entries: list[Entry] = field(default_factory=list)
    usage: list[ev.Usage] = field(default_factory=list)
    first_ts: float = 0.0
    last_ts: float = 0.0
    steps_by_call: dict[str, ToolStep] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.finished.status if self.finished else "unfinished"

    # What this run's model calls used, from their own usage events. Not ``run_finished``'s
    # figures: those are the branch's running totals (the graph state's counters), so summing
    # them over runs counted every earlier run again.
    @property
    def tokens_in(self) -> int:
        return sum(u.tokens_in for u in self.usage)

    @property
    def tokens_out(self) -> int:
        return sum(u.tokens_out for u in self.usage)

    @property
    def cost(self) -> float:
        return sum(u.cost for u in self.usage)

    @property
    def steps(self) -> int:
        """Model calls (what ``max_steps`` counts)."""
        return self.finished.steps if self.finished else len(self.usage)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.last_ts - self.first_ts)

    @property
    def tool_steps(self) -> list[ToolStep]:
        return [e.step for e in self.entries if e.step is not None]


@dataclass
class Totals:
    runs: int = 0
    steps: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    tool_calls: int = 0


def build_runs(events: list[ev.Event]) -> list[RunView]:
    runs: list[RunView] = []
    run: RunView | None = None
    for event in events:
        if (
            run is None
            or event.run_id != run.run_id
            or (isinstance(event, ev.RunStarted) and run.started is not None)
        ):
            run = RunView(run_id=event.run_id, first_ts=event.ts)
            runs.append(run)
        run.last_ts = event.ts
        _add(run, runs, event)
    return runs


def _step(run: RunView, runs: list[RunView], call_id: str, tool: str) -> ToolStep:
    step = run.steps_by_call.get(call_id)
    if step is None:
        earlier = any(call_id in r.steps_by_call for r in runs if r is not run)
        step = ToolStep(call_id=call_id, tool=tool, continued=earlier)
        run.steps_by_call[call_id] = step
        run.entries.append(Entry("tool", step=step))
    return step


def _add(run: RunView, runs: list[RunView], event: ev.Event) -> None:
    if isinstance(event, ev.RunStarted):
        run.started = event
        if event.input:
            run.entries.append(Entry("user", event))
    elif isinstance(event, ev.RunFinished):
        run.finished = event
    elif isinstance(event, ev.Thought):
        run.entries.append(Entry("thought", event))
    elif isinstance(event, ev.ToolCall):
        _step(run, runs, event.call_id, event.tool).call = event
    elif isinstance(event, ev.ApprovalRequested):
        for call in event.calls:
            _step(run, runs, call.call_id, call.tool).request = call
    elif isinstance(event, ev.ApprovalDecided):
        _step(run, runs, event.call_id, event.tool).decisions.append(event)
    elif isinstance(event, ev.ToolStarted):
        _step(run, runs, event.call_id, event.tool).started = event
    elif isinstance(event, ev.ToolOutput):
        _step(run, runs, event.call_id, "").output.append(event)
    elif isinstance(event, ev.ToolFinished):
        _step(run, runs, event.call_id, event.tool).finished = event
    elif isinstance(event, ev.Usage):
        run.usage.append(event)
        # Read as "what this model call cost": after its text, before the tool calls it made.
        at = next(
            (
                i
                for i, x in enumerate(run.entries)
                if x.step is not None
                and x.step.call is not None
                and event.message_id
                and x.step.call.message_id == event.message_id
            ),
            len(run.entries),
        )
        run.entries.insert(at, Entry("usage", event))
    elif isinstance(event, ev.FinalAnswer):
        # The answer usually is the model's last message, already an entry: show it once.
        thoughts = [x for x in run.entries if isinstance(x.event, ev.Thought)]
        if thoughts and getattr(thoughts[-1].event, "text", None) == event.text:
            run.entries.remove(thoughts[-1])
        run.entries.append(Entry("final", event))
    elif isinstance(event, ev.Error):
        run.entries.append(Entry("error", event))
    elif isinstance(event, ev.Notice):
        run.entries.append(Entry("notice", event))
    elif isinstance(event, ev.Retry):
        run.entries.append(Entry("retry", event))
    elif isinstance(event, ev.Memory):
        run.entries.append(Entry("memory", event))
    elif isinstance(event, ev.InjectionFlagged):
        run.entries.append(Entry("injection", event))
    elif isinstance(event, ev.Breaker | ev.Fallback):
        run.entries.append(Entry("resilience", event))
    # Checkpoints and token deltas are not part of the transcript (lineage covers checkpoints).


def totals(runs: list[RunView]) -> Totals:
    t = Totals(runs=sum(1 for r in runs if r.started is not None or r.finished is not None))
    for r in runs:
        t.steps += r.steps
        t.tokens_in += r.tokens_in
        t.tokens_out += r.tokens_out
        t.cost += r.cost
        t.tool_calls += len(r.tool_steps)
    return t


# ---- shared wording ------------------------------------------------------------------------
def when(ts: float) -> str:
    """UTC, so an export reads the same wherever it is opened."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def money(cost: float) -> str:
    return f"${cost:.4f}"


def run_totals_text(run: RunView) -> str:
    reason = run.finished.reason if run.finished else ""
    parts = [
        f"status {run.status}" + (f" ({reason})" if reason else ""),
        plural(run.steps, "step"),
        f"{run.tokens_in:,} tokens in",
        f"{run.tokens_out:,} tokens out",
        f"cost {money(run.cost)}",
        plural(len(run.tool_steps), "tool call"),
        f"took {duration(run.duration_s)}",
    ]
    return " · ".join(parts)


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def session_totals_text(t: Totals) -> str:
    return (
        f"{plural(t.runs, 'run')} · {plural(t.steps, 'step')} · {t.tokens_in:,} tokens in · "
        f"{t.tokens_out:,} tokens out · cost {money(t.cost)} · {plural(t.tool_calls, 'tool call')}"
    )


def decision_text(d: ev.ApprovalDecided) -> str:
    verb = {"approve": "approved", "edit": "edited", "deny": "denied", "always": "always allowed"}
    who = {"user": "the user", "policy": "the approval policy", "rule": "a stored rule"}
    text = f"{verb[d.decision]} by {who.get(d.by, d.by)}"
    if d.rule:
        text += f" (rule {d.rule})"
    if d.scope:
        text += f", scope {d.scope}"
    return text


def result_head(f: ev.ToolFinished) -> str:
    parts = [f.status, duration(f.duration_ms / 1000)]
    if f.isolation:
        parts.append(f"isolation {f.isolation}")
    if f.truncated:
        parts.append("output truncated by the tool")
    if f.replayed:
        parts.append("replayed from the record")
    return " · ".join(parts)


def usage_text(u: ev.Usage) -> str:
    text = (
        f"model call: {u.tokens_in:,} tokens in · {u.tokens_out:,} out"
        f" · {duration(u.latency_ms / 1000)}"
    )
    if u.cost:
        text += f" · {money(u.cost)}"
    if u.retries:
        text += f" · {u.retries} retries"
    if u.cached:
        text += " · from the model cache (no request, free)"
    elif u.fallback and u.model:
        text += f" · answered by the fallback {u.model}"
    if u.context_window:
        text += f" · context {u.context_tokens:,}/{u.context_window:,}"
    return text


def resilience_text(e: ev.Breaker | ev.Fallback) -> str:
    """A breaker's change or a step's fallback, in one line."""
    if isinstance(e, ev.Fallback):
        return f"fell back from {e.from_model} to {e.to_model}: {e.reason}"
    word = {"open": "opened", "half_open": "half-open (probing)", "closed": "closed"}[e.state]
    why = f" after {e.failures} failures: {e.error}" if e.state == "open" and e.error else ""
    return f"circuit breaker {e.name} {word}{why}"


def fold(text: str, max_lines: int, max_chars: int) -> tuple[str, int, int]:
    """The head of ``text`` within the limits, and the lines and characters left out
    (``text`` itself and zeros when it fits)."""
    body = text.rstrip("\n")
    lines = body.splitlines()
    head = "\n".join(lines[:max_lines])[:max_chars]
    if len(head) >= len(body):
        return text, 0, 0
    whole_lines = head.count("\n") + (1 if body[len(head) : len(head) + 1] == "\n" else 0)
    return head, len(lines) - whole_lines, len(body) - len(head)


def header_rows(
    session: dict[str, Any], runs: list[RunView], exported_at: float, version: int
) -> list[tuple[str, str, bool]]:
    """(label, value, value is an identifier or path) rows describing the session."""
    s = session
    rows: list[tuple[str, str, bool]] = [
        ("Session", str(s.get("id", "")), True),
        ("Model", str(s.get("model", "")), False),
        ("Profile", str(s.get("profile", "")), False),
        ("Status", str(s.get("status", "")), False),
    ]
    for key in ("created", "updated"):
        if isinstance(s.get(key), int | float):
            rows.append((key.capitalize(), when(s[key]), False))
    if s.get("workspace"):
        rows.append(("Workspace", str(s["workspace"]), True))
    if s.get("parent_session"):
        rows.append(("Copied from session", str(s["parent_session"]), True))
        if s.get("parent_checkpoint"):
            rows.append(("at checkpoint", str(s["parent_checkpoint"]), True))
    rows.append(("Totals", session_totals_text(totals(runs)), False))
    rows.append(("Exported", f"{when(exported_at)} (format version {version})", False))
    return rows


@dataclass
class BranchView:
    label: str
    head: str
    checkpoints: list[str]
    fork_after: str | None = None  # the last checkpoint shared with a branch listed earlier
    fork_of: str | None = None  # that branch's label


def lineage(branches: list[dict[str, Any]]) -> list[BranchView]:
    views: list[BranchView] = []
    first_seen: dict[str, str] = {}
    for b in branches:
        ids = [str(c) for c in b.get("checkpoints", [])]
        view = BranchView(str(b.get("label", "")) or "branch", str(b.get("head", "")), ids)
        for cid in reversed(ids[:-1]):
            if cid in first_seen:
                view.fork_after, view.fork_of = cid, first_seen[cid]
                break
        for cid in ids:
            first_seen.setdefault(cid, view.label)
        views.append(view)
    return views
