"""Terminal rendering for the headless CLI: the event stream, approval prompts, transcripts.

With ``--json`` every event (token deltas included) is one JSON object per line on stdout and
prompts go to stderr, so the output can be piped into ``jq`` or saved and imported.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from openmanus_tui import events as ev
from openmanus_tui.runtime.api import Decision
from openmanus_tui.runtime.views import check_edited_args
from openmanus_tui.terminal_input import in_daemon_thread, read_line

if TYPE_CHECKING:
    from openmanus_tui.runtime.api import SessionRecord, ToolRegistry
    from openmanus_tui.runtime.views import BranchTranscript

RESULT_LINES = 12
STATUS_STYLE = {
    "ok": "green",
    "error": "red",
    "denied": "yellow",
    "timeout": "red",
    "truncated": "yellow",
    "interrupted": "yellow",
}


def _excerpt(text: str, lines: int = RESULT_LINES) -> str:
    rows = text.splitlines()
    if len(rows) <= lines:
        return text
    return "\n".join(rows[:lines]) + f"\n… ({len(rows) - lines} more lines)"


class Renderer:
    """A listener for ``on_event`` that prints the run as it happens."""

    def __init__(self, *, json_lines: bool = False) -> None:
        self.json_lines = json_lines
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False)
        self._streaming = False
        self._last_thought = ""

    @property
    def ui(self) -> Console:
        """Where people-facing text goes: stderr when stdout carries JSON."""
        return self.err if self.json_lines else self.out

    def note(self, text: str, style: str = "yellow") -> None:
        self._end_stream()
        self.ui.print(Text(text, style=style))

    def _end_stream(self) -> None:
        if self._streaming:
            self.out.file.write("\n")
            self.out.file.flush()
            self._streaming = False

    def __call__(self, event: ev.Event) -> None:
        if self.json_lines:
            sys.stdout.write(event.to_json() + "\n")
            sys.stdout.flush()
            return
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)

    def _on_thought_delta(self, event: ev.ThoughtDelta) -> None:
        self.out.file.write(event.text)
        self.out.file.flush()
        self._streaming = True

    def _on_thought(self, event: ev.Thought) -> None:
        self._last_thought = event.text
        if not self._streaming:  # a resumed run has no deltas for a stored thought
            self.out.print(Text(event.text, style="italic"))
        self._end_stream()

    def _on_notice(self, event: ev.Notice) -> None:
        self.note(f"ⓘ {event.text}", "yellow" if event.level == "warning" else "cyan")

    def _on_run_started(self, event: ev.RunStarted) -> None:
        what = "Resuming" if event.resumed else "Running"
        config = f", config version {event.config_version}" if event.config_version else ""
        self.out.print(
            Text(f"{what} with {event.model} (session {event.session_id}{config})", style="dim")
        )

    def _on_tool_call(self, event: ev.ToolCall) -> None:
        self._end_stream()
        args = (
            json.dumps(event.args, ensure_ascii=False) if event.args is not None else event.raw_args
        )
        line = Text("→ ", style="bold cyan")
        line.append(event.tool, style="bold")
        line.append(f"({args})")
        if event.risk:
            line.append(f"  [{event.risk}]", style="dim")
        if event.invalid:
            line.append(f"  invalid: {event.invalid}", style="red")
        self.out.print(line)

    def _on_approval_decided(self, event: ev.ApprovalDecided) -> None:
        if event.by == "user":
            return  # the person just typed it
        if event.decision == "deny":
            self.out.print(Text(f"  ✗ {event.tool} denied: {event.reason}", style="yellow"))

    def _on_tool_started(self, event: ev.ToolStarted) -> None:
        iso = f" in sandbox {event.isolation}" if event.isolation else ""
        self.out.print(Text(f"  … running {event.tool}{iso}", style="dim"))

    def _on_tool_output(self, event: ev.ToolOutput) -> None:
        self.out.print(
            Text(f"  │ {event.text}", style="red dim" if event.stream == "stderr" else "dim")
        )

    def _on_tool_finished(self, event: ev.ToolFinished) -> None:
        style = STATUS_STYLE.get(event.status, "white")
        mark = "✓" if event.status == "ok" else "✗"
        head = Text(f"  {mark} {event.tool} {event.status}", style=style)
        head.append(f"  {event.duration_ms:.0f} ms", style="dim")
        if event.artifacts:
            head.append(f"  artifacts: {', '.join(event.artifacts)}", style="cyan")
        self.out.print(head)
        if event.result.strip():
            self.out.print(Text(_excerpt(event.result.rstrip()), style="dim"), soft_wrap=False)

    def _on_injection_flagged(self, event: ev.InjectionFlagged) -> None:
        self._end_stream()
        line = Text(f"  ⚠ possible prompt injection in {event.tool} output: ", style="bold red")
        line.append(", ".join(event.patterns), style="red")
        self.out.print(line)
        if event.excerpt:
            self.out.print(Text(f"    “{event.excerpt}”", style="red dim"))

    def _on_retry(self, event: ev.Retry) -> None:
        self.note(
            f"! model call failed ({event.error}); retry {event.attempt} in {event.wait_s:.1f} s"
        )

    def _on_breaker(self, event: ev.Breaker) -> None:
        from openmanus_tui.runtime.api import resilience_text

        self.note(f"⚡ {resilience_text(event)}", "cyan" if event.state == "closed" else "yellow")

    def _on_fallback(self, event: ev.Fallback) -> None:
        from openmanus_tui.runtime.api import resilience_text

        self.note(f"⚡ {resilience_text(event)}")

    def _on_cache_hit(self, event: ev.CacheHit) -> None:
        if event.cache == "model":
            self.note(f"ⓘ answered from the model cache ({event.label}): no request", "dim")

    def _on_research_step(self, event: ev.ResearchStep) -> None:
        self._end_stream()
        warn = event.stage == "verify" and event.data.get("removed")
        self.note(f"research · {event.stage}: {event.text}", "yellow" if warn else "cyan")

    def _on_clarification(self, event: ev.Clarification) -> None:
        self._end_stream()
        if event.answer is None:
            self.note(f"? {event.question}", "yellow")
        else:
            self.note(f"? {event.question} → {event.answer}", "cyan")

    def _on_final_answer(self, event: ev.FinalAnswer) -> None:
        self._end_stream()
        if event.text and event.text == self._last_thought:
            # Already streamed above as the model wrote it; do not print it twice.
            self.out.rule("[green]✓ answer above[/green]", style="green")
            return
        self.out.print(
            Panel(
                Markdown(event.text or "(empty answer)", hyperlinks=False),
                title="Answer",
                border_style="green",
            ),
            # The console soft-wraps plain lines; a panel's lines would be cut at its border.
            soft_wrap=False,
        )

    def _on_error(self, event: ev.Error) -> None:
        self._end_stream()
        self.err.print(Text(f"Error ({event.error_class}): {event.message}", style="bold red"))
        if event.hint:
            self.err.print(Text(f"  {event.hint}", style="red"))

    def summary(self, session_id: str, outcome: Any) -> None:
        self._end_stream()
        if outcome.status == "completed":
            return
        text = {
            "stopped": f"Stopped: {outcome.reason}",
            "awaiting_approval": f"Paused: {outcome.reason}",
            "error": "The run failed; the session is intact. "
            f"Retry with: openmanus resume {session_id}",
        }.get(outcome.status, f"{outcome.status}: {outcome.reason}")
        self.note(text, "yellow")


def _read_line(prompt: str) -> str:
    # Cancellable with the run (Ctrl+C): see terminal_input.py.
    return read_line(prompt)


def terminal_approver(renderer: Renderer, registry: ToolRegistry, interactive: bool):
    """Ask on the terminal; with no terminal, deny and say why (the model gets the reason)."""

    async def approve(request: ev.ApprovalRequested) -> dict[str, Decision]:
        if not interactive:
            reason = (
                "no terminal was available to ask for approval; run interactively, or choose "
                "--approval auto/yolo"
            )
            for call in request.calls:
                renderer.note(f"✗ {call.tool} denied: {reason}")
            return {c.call_id: Decision(decision="deny", reason=reason) for c in request.calls}
        return {
            c.call_id: await in_daemon_thread(_ask_one, renderer, registry, c)
            for c in request.calls
        }

    return approve


def _ask_one(renderer: Renderer, registry: ToolRegistry, call: ev.ApprovalCall) -> Decision:
    renderer._end_stream()
    err = renderer.err
    err.print(
        Panel(
            Text(json.dumps(call.args, indent=2, ensure_ascii=False)),
            title=f"Approve {call.tool}? [{call.risk}]",
            subtitle=call.reason,
            border_style="yellow",
        )
    )
    while True:
        # No default answer: an Enter typed ahead never approves anything.
        answer = _read_line("approve / always / edit / deny > ").lower()
        if answer in ("a", "approve", "y", "yes"):
            return Decision(decision="approve")
        if answer == "always":
            decision = _ask_rule(err, call)
            if decision is not None:
                return decision
            continue
        if answer in ("d", "deny", "n", "no"):
            reason = _read_line("reason for the model (optional) > ")
            return Decision(decision="deny", reason=reason or "denied by the user")
        if answer in ("e", "edit"):
            text = _read_line("new arguments as one line of JSON > ")
            spec = registry.get(call.tool)
            args, error = check_edited_args(text, call.tool, spec.args_model if spec else None)
            if args is None:
                err.print(Text(error, style="red"))
                continue
            return Decision(decision="edit", args=args)
        err.print(Text("type approve, always, edit or deny", style="dim"))


def _ask_rule(err: Console, call: ev.ApprovalCall) -> Decision | None:
    """An "always allow" rule typed at the terminal: the suggested pattern is the default,
    and a pattern that would not cover this very call is refused with the reason."""
    from openmanus_tui.runtime.api import RuleError, RulePattern, explain_miss, suggest_pattern

    suggested = suggest_pattern(call.tool, call.args)
    text = _read_line(f"rule to always allow [{suggested}] > ") or suggested
    try:
        pattern = RulePattern.parse(text)
    except RuleError as exc:
        err.print(Text(f"not a rule: {exc}", style="red"))
        return None
    miss = explain_miss(pattern, call.tool, call.args)
    if miss:
        err.print(Text(f"that rule would not allow this call: {miss}", style="red"))
        return None
    scope = _read_line("scope: session / project / global [session] > ").lower() or "session"
    if scope not in ("session", "project", "global"):
        err.print(Text("scope must be session, project or global", style="red"))
        return None
    return Decision(decision="always", rule=pattern.text, scope=scope)  # type: ignore[arg-type]


def terminal_ask_human(renderer: Renderer):
    async def ask(question: str) -> str:
        renderer._end_stream()
        renderer.err.print(Panel(Text(question), title="The agent asks", border_style="cyan"))
        return await in_daemon_thread(_read_line, "your answer > ")

    return ask


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def print_sessions(records: list[SessionRecord]) -> None:
    console = Console(highlight=False)
    if not records:
        console.print('No sessions yet. Start one with: openmanus run "your task"')
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "updated", "status", "model", "title"):
        table.add_column(col)
    for r in records:
        table.add_row(r.id, _when(r.updated), r.status, r.model, r.title or "untitled")
    console.print(table)


def print_transcript(record: SessionRecord, branch: BranchTranscript) -> None:
    """A branch's transcript (``runtime.api.branch_transcript``), read as the workbench
    reads it: a run cut off reads interrupted, and so do its calls without a result."""
    renderer = Renderer()
    console = renderer.out
    console.print(Text(f"{record.title or 'untitled'}", style="bold"))
    status = branch.state if branch.interrupted else record.status
    console.print(
        Text(
            f"session {record.id} · {record.model} · {status} · "
            f"workspace {record.workspace}",
            style="dim",
        )
    )
    tools: dict[str, str] = {}
    for event in branch.events:
        if isinstance(event, ev.ToolStarted):
            tools[event.call_id] = event.tool
        if isinstance(event, ev.RunStarted) and event.input:
            console.print(Text(f"\n› {event.input}", style="bold magenta"))
        elif isinstance(event, ev.Thought):
            console.print(Text(event.text, style="italic"))
        elif isinstance(event, ev.RunFinished) and event.status != "completed":
            console.print(Text(f"[{event.status}] {event.reason}", style="yellow"))
        elif not isinstance(event, ev.RunStarted):
            renderer(event)
    for call_id in branch.interrupted_calls:
        console.print(Text(f"  ⊘ {tools.get(call_id, call_id)} interrupted: no result was recorded",
                           style="yellow"))
    t = branch.totals
    if t.tokens_in or t.tokens_out:
        console.print(Text(f"\n{t.tokens_in:,} tokens in · {t.tokens_out:,} tokens out · "
                           f"cost ${t.cost:.4f}", style="dim"))
    if branch.interrupted:
        console.print(Text(
            f"[interrupted] the run ended before it finished; continue with: "
            f"openmanus resume {record.id}", style="yellow"))
