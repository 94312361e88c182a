"""The Markdown export: a readable transcript of a session, its totals and its branch lineage.

Text the model or a tool produced goes into fenced blocks whose fence is longer than any run
of backticks inside, so nothing in a transcript can break out of its block.
"""

from __future__ import annotations

import json
import re

from openmanus_tui import events as ev
from openmanus_tui.export.document import ExportDoc
from openmanus_tui.export.transcript import (
    RunView,
    ToolStep,
    build_runs,
    decision_text,
    fold,
    header_rows,
    lineage,
    plural,
    resilience_text,
    result_head,
    run_totals_text,
    usage_text,
    when,
)

RESULT_LINES = 40
RESULT_CHARS = 4000

_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def inline(text: str) -> str:
    """One line of plain text that Markdown shows as typed."""
    return _INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def fence(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.rstrip("\n").splitlines())


def code(text: str) -> str:
    """Inline code that survives backticks inside."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _header(doc: ExportDoc) -> list[str]:
    rows = header_rows(doc.session, build_runs(doc.events), doc.exported_at, doc.version)
    title = inline(str(doc.session.get("title") or "untitled session"))
    out = [f"# {title}", "", "| | |", "|---|---|"]
    out += [f"| {k} | {code(v) if is_code else inline(v)} |" for k, v, is_code in rows]
    return [*out, ""]


def _result(step: ToolStep) -> list[str]:
    f = step.finished
    if f is None:
        return ["**Result:** none recorded (the run ended before the tool finished)", ""]
    out = [f"**Result:** {result_head(f)}"]
    if f.artifacts:
        out[0] += " · artifacts: " + ", ".join(code(a) for a in f.artifacts)
    out.append("")
    text = f.result or "".join(o.text + "\n" for o in step.output)
    if text.strip():
        shown, lines, chars = fold(text, RESULT_LINES, RESULT_CHARS)
        out += [fence(shown, "text"), ""]
        if lines or chars:
            out += [
                f"_… {lines} more lines ({chars:,} characters) not shown here; the HTML and JSON "
                "exports hold the whole output._",
                "",
            ]
    return out


def _tool(step: ToolStep) -> list[str]:
    head = f"### Tool call: {code(step.tool or '?')}"
    meta = [f"call {code(step.call_id)}"]
    call = step.call
    risk = (call.risk if call else None) or (step.request.risk if step.request else None)
    if risk:
        meta.append(f"risk {inline(risk)}")
    if call is not None and call.tier is not None:
        meta.append(f"tier {call.tier}")
    if step.continued:
        meta.append("continued from an earlier run")
    out = [head, "", " · ".join(meta), ""]
    if step.args_text:
        lang = "json" if step.args is not None else "text"
        out += [fence(step.args_text, lang), ""]
    if call is not None and call.invalid:
        out += [f"**Invalid call:** {inline(call.invalid)}", ""]
    if step.request is not None:
        why = f": {inline(step.request.reason)}" if step.request.reason else ""
        rule = f" (rule {code(step.request.rule)})" if step.request.rule else ""
        out += [f"**Approval requested**{rule}{why}", ""]
    for d in step.decisions:
        line = f"**Decision:** {decision_text(d)}"
        if d.reason:
            line += f" — reason: {inline(d.reason)}"
        out += [line, ""]
        if d.args is not None:
            out += ["Edited arguments:", "", fence(json.dumps(d.args, indent=2), "json"), ""]
    if step.ran_with is not None and not any(d.args is not None for d in step.decisions):
        out += ["Ran with:", "", fence(json.dumps(step.ran_with, indent=2), "json"), ""]
    return out + _result(step)


def _run(index: int, run: RunView) -> list[str]:
    started = run.started
    title = f"## Run {index}"
    if started is not None and started.resumed:
        title += " (resumed)"
    sub = [f"run {code(run.run_id)}" if run.run_id else "run", when(run.first_ts)]
    if started is not None:
        sub.append(f"model {inline(started.model)}")
        sub.append(f"profile {inline(started.profile)}")
    out = [title, "", " · ".join(sub), ""]
    for entry in run.entries:
        e = entry.event
        if entry.step is not None:
            out += _tool(entry.step)
        elif isinstance(e, ev.RunStarted) and e.input:
            out += ["**User:**", "", quote(e.input), ""]
        elif isinstance(e, ev.Thought):
            out += ["**Assistant:**", "", e.text.rstrip(), ""]
        elif isinstance(e, ev.Usage):
            out += [f"_{inline(usage_text(e))}_", ""]
        elif isinstance(e, ev.FinalAnswer):
            out += ["### Final answer", "", e.text.rstrip() or "_(empty answer)_", ""]
        elif isinstance(e, ev.Error):
            line = f"**Error ({e.error_class}):** {inline(e.message)}"
            out += [line + (f" — {inline(e.hint)}" if e.hint else ""), ""]
        elif isinstance(e, ev.Notice):
            out += [f"_Notice ({e.level}): {inline(e.text)}_", ""]
        elif isinstance(e, ev.Retry):
            out += [f"_Retry {e.attempt} after {e.wait_s:.1f} s: {inline(e.error)}_", ""]
        elif isinstance(e, ev.Breaker | ev.Fallback):
            out += [f"_{inline(resilience_text(e))}_", ""]
        elif isinstance(e, ev.InjectionFlagged):
            what = inline(", ".join(e.patterns))
            out += [f"**⚠ Possible prompt injection in {inline(e.tool)} output:** {what}", ""]
        elif isinstance(e, ev.Memory):
            detail = f": {inline(e.detail)}" if e.detail else ""
            out += [f"_Memory {inline(e.action)}{detail}_", ""]
    out += [f"**Run totals:** {run_totals_text(run)}", ""]
    return out


def _lineage(doc: ExportDoc) -> list[str]:
    out = ["## Branches", ""]
    if not doc.branches:
        return [*out, "No branch lineage was recorded.", ""]
    for b in lineage(doc.branches):
        line = f"head {code(b.head)} · {plural(len(b.checkpoints), 'checkpoint')}"
        if b.fork_after:
            line += f" · forks after {code(b.fork_after)} (on {inline(b.fork_of or '')})"
        out += [f"### {inline(b.label)}", "", line, ""]
        if b.checkpoints:
            listing = fence("\n".join(b.checkpoints))
            out += ["<details><summary>Checkpoints, root to head</summary>", "", listing, ""]
            out += ["</details>", ""]
    return out


def to_markdown(doc: ExportDoc) -> str:
    """The transcript as Markdown (the document should already be redacted)."""
    out = _header(doc)
    for i, run in enumerate(build_runs(doc.events), start=1):
        out += _run(i, run)
    out += _lineage(doc)
    return "\n".join(out).rstrip("\n") + "\n"
