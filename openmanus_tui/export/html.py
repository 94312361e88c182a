"""The HTML export: one self-contained file (inline CSS, no scripts, no external assets).

Everything a model or a tool wrote is escaped; the model's Markdown (thoughts, answers) is
rendered by markdown-it with raw HTML and images off, and a Content-Security-Policy forbids
scripts and remote loads should anything slip through. Long tool output folds into
``<details>`` instead of being cut.
"""

from __future__ import annotations

import json
from html import escape

from markdown_it import MarkdownIt

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

FOLD_LINES = 20
FOLD_CHARS = 2000
# Beyond this a browser struggles; the JSON export still has everything.
MAX_OUTPUT_CHARS = 200_000

# "html": False escapes raw HTML in the model's text; images would load remote URLs.
_md = MarkdownIt("commonmark", {"html": False}).disable("image")

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --bg: #ffffff; --muted: #656d76;
  --box: #f6f8fa; --line: #d0d7de; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700;
  --accent: #0969da; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0;
  --box: #161b22; --line: #30363d; --ok: #3fb950; --bad: #f85149; --warn: #d29922;
  --accent: #4493f8; } }
body { font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg);
  margin: 0; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .75rem; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .25rem; margin-top: 2.5rem; }
h3 { font-size: 1rem; margin: 0 0 .25rem; }
table.meta td { padding: .1rem .75rem .1rem 0; vertical-align: top; }
table.meta td:first-child { color: var(--muted); white-space: nowrap; }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background: var(--box); border: 1px solid var(--line); border-radius: 6px;
  padding: .6rem .8rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.sub, .usage, .note { color: var(--muted); font-size: .9rem; }
.who { font-weight: 600; margin-top: 1rem; }
.user .plain { white-space: pre-wrap; border-left: 3px solid var(--accent); padding-left: .75rem; }
.tool { border: 1px solid var(--line); border-left: 4px solid var(--accent); border-radius: 6px;
  padding: .75rem 1rem; margin: 1rem 0; }
.tool.ok { border-left-color: var(--ok); }
.tool.error, .tool.timeout, .tool.denied { border-left-color: var(--bad); }
.tool.truncated, .tool.interrupted { border-left-color: var(--warn); }
.decision.deny { color: var(--bad); }
.final { border: 1px solid var(--ok); border-radius: 6px; padding: .5rem 1rem; margin: 1rem 0; }
.error { color: var(--bad); }
.totals { border-top: 1px dashed var(--line); padding-top: .5rem; }
summary { cursor: pointer; color: var(--accent); }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _pre(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<pre{attr}><code>{_e(text)}</code></pre>"


def _md_html(text: str) -> str:
    return _md.render(text)


def _header(doc: ExportDoc) -> str:
    rows = header_rows(doc.session, build_runs(doc.events), doc.exported_at, doc.version)
    cells = "".join(
        f"<tr><td>{_e(k)}</td><td>{f'<code>{_e(v)}</code>' if is_code else _e(v)}</td></tr>"
        for k, v, is_code in rows
    )
    title = _e(doc.session.get("title") or "untitled session")
    return f'<header><h1>{title}</h1><table class="meta">{cells}</table></header>'


def _output(step: ToolStep) -> str:
    f = step.finished
    text = (f.result if f else "") or "".join(o.text + "\n" for o in step.output)
    if not text.strip():
        return ""
    note = ""
    if len(text) > MAX_OUTPUT_CHARS:
        text, lines, chars = fold(text, len(text), MAX_OUTPUT_CHARS)
        note = (
            f'<p class="note">… {lines:,} more lines ({chars:,} characters) left out; '
            "the JSON export holds the whole output.</p>"
        )
    n_lines = text.count("\n") + 1
    if n_lines <= FOLD_LINES and len(text) <= FOLD_CHARS:
        return _pre(text, "output") + note
    summary = f"Output: {n_lines:,} lines, {len(text):,} characters (click to show)"
    return f"<details><summary>{_e(summary)}</summary>{_pre(text, 'output')}</details>{note}"


def _tool(step: ToolStep) -> str:
    call = step.call
    f = step.finished
    meta = [f"call <code>{_e(step.call_id)}</code>"]
    risk = (call.risk if call else None) or (step.request.risk if step.request else None)
    if risk:
        meta.append(f"risk {_e(risk)}")
    if call is not None and call.tier is not None:
        meta.append(f"tier {call.tier}")
    if step.continued:
        meta.append("continued from an earlier run")
    parts = [
        f"<h3>Tool call: <code>{_e(step.tool or '?')}</code></h3>",
        f'<p class="sub">{" · ".join(meta)}</p>',
    ]
    if step.args_text:
        parts.append(_pre(step.args_text, "args"))
    if call is not None and call.invalid:
        parts.append(f'<p class="error"><strong>Invalid call:</strong> {_e(call.invalid)}</p>')
    if step.request is not None:
        rule = f" (rule <code>{_e(step.request.rule)}</code>)" if step.request.rule else ""
        why = f": {_e(step.request.reason)}" if step.request.reason else ""
        parts.append(f'<p class="approval"><strong>Approval requested</strong>{rule}{why}</p>')
    for d in step.decisions:
        reason = f" — reason: {_e(d.reason)}" if d.reason else ""
        parts.append(
            f'<p class="decision {_e(d.decision)}"><strong>Decision:</strong> '
            f"{_e(decision_text(d))}{reason}</p>"
        )
        if d.args is not None:
            parts.append("<p>Edited arguments:</p>" + _pre(json.dumps(d.args, indent=2)))
    if step.ran_with is not None and not any(d.args is not None for d in step.decisions):
        parts.append("<p>Ran with:</p>" + _pre(json.dumps(step.ran_with, indent=2)))
    if f is None:
        parts.append(
            '<p class="result"><strong>Result:</strong> none recorded '
            "(the run ended before the tool finished)</p>"
        )
    else:
        head = _e(result_head(f))
        if f.artifacts:
            head += " · artifacts: " + ", ".join(f"<code>{_e(a)}</code>" for a in f.artifacts)
        parts.append(f'<p class="result"><strong>Result:</strong> {head}</p>')
        parts.append(_output(step))
    status = f.status if f else "pending"
    return f'<div class="tool {_e(status)}">{"".join(parts)}</div>'


def _run(index: int, run: RunView) -> str:
    started = run.started
    title = f"Run {index}" + (" (resumed)" if started is not None and started.resumed else "")
    sub = [f"run <code>{_e(run.run_id)}</code>" if run.run_id else "run", _e(when(run.first_ts))]
    if started is not None:
        sub += [f"model {_e(started.model)}", f"profile {_e(started.profile)}"]
    parts = [f"<h2>{_e(title)}</h2>", f'<p class="sub">{" · ".join(sub)}</p>']
    for entry in run.entries:
        e = entry.event
        if entry.step is not None:
            parts.append(_tool(entry.step))
        elif isinstance(e, ev.RunStarted) and e.input:
            parts.append(
                f'<div class="user"><div class="who">User</div>'
                f'<div class="plain">{_e(e.input)}</div></div>'
            )
        elif isinstance(e, ev.Thought):
            parts.append(
                f'<div class="assistant"><div class="who">Assistant</div>'
                f'<div class="md">{_md_html(e.text)}</div></div>'
            )
        elif isinstance(e, ev.Usage):
            parts.append(f'<p class="usage">{_e(usage_text(e))}</p>')
        elif isinstance(e, ev.FinalAnswer):
            body = _md_html(e.text) if e.text.strip() else "<p><em>(empty answer)</em></p>"
            parts.append(f'<div class="final"><h3>Final answer</h3>{body}</div>')
        elif isinstance(e, ev.Error):
            hint = f" — {_e(e.hint)}" if e.hint else ""
            parts.append(
                f'<p class="error"><strong>Error ({_e(e.error_class)}):</strong> '
                f"{_e(e.message)}{hint}</p>"
            )
        elif isinstance(e, ev.Notice):
            parts.append(f'<p class="note">Notice ({_e(e.level)}): {_e(e.text)}</p>')
        elif isinstance(e, ev.Retry):
            parts.append(
                f'<p class="note">Retry {e.attempt} after {e.wait_s:.1f} s: {_e(e.error)}</p>'
            )
        elif isinstance(e, ev.Breaker | ev.Fallback):
            parts.append(f'<p class="note">{_e(resilience_text(e))}</p>')
        elif isinstance(e, ev.Memory):
            detail = f": {_e(e.detail)}" if e.detail else ""
            parts.append(f'<p class="note">Memory {_e(e.action)}{detail}</p>')
        elif isinstance(e, ev.InjectionFlagged):
            parts.append(
                f'<p class="error"><strong>Possible prompt injection in {_e(e.tool)} output:'
                f"</strong> {_e(', '.join(e.patterns))}</p>"
            )
    parts.append(f'<p class="totals"><strong>Run totals:</strong> {_e(run_totals_text(run))}</p>')
    return f'<section class="run">{"".join(parts)}</section>'


def _lineage(doc: ExportDoc) -> str:
    parts = ["<h2>Branches</h2>"]
    if not doc.branches:
        parts.append("<p>No branch lineage was recorded.</p>")
    for b in lineage(doc.branches):
        line = f"head <code>{_e(b.head)}</code> · {plural(len(b.checkpoints), 'checkpoint')}"
        if b.fork_after:
            line += f" · forks after <code>{_e(b.fork_after)}</code> (on {_e(b.fork_of)})"
        parts += [f"<h3>{_e(b.label)}</h3>", f'<p class="sub">{line}</p>']
        if b.checkpoints:
            parts.append(
                "<details><summary>Checkpoints, root to head</summary>"
                f"{_pre(chr(10).join(b.checkpoints))}</details>"
            )
    return f'<section class="lineage">{"".join(parts)}</section>'


def to_html(doc: ExportDoc) -> str:
    """The transcript as one self-contained HTML page (the document should already be redacted)."""
    title = _e(doc.session.get("title") or "untitled session")
    body = [_header(doc)]
    body += [_run(i, run) for i, run in enumerate(build_runs(doc.events), start=1)]
    body.append(_lineage(doc))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="openmanus-tui export">'
        f"<title>{title} · OpenManus session</title><style>{CSS}</style></head>\n"
        f"<body><main>\n{chr(10).join(body)}\n</main></body></html>\n"
    )
