"""The inspector pane: everything recorded about the selected stream block, as JSON.

For a tool call: the call as the model sent it (parsed and raw), the approval, the arguments
that really ran, the raw result, status, timings (model latency, tool duration), the model
call's tokens, cost, retries and the model that answered (a fallback, the cache), and the
checkpoint ids with the state keys the step changed.
"""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static, TextArea

from openmanus_tui.tui.transcript import Transcript


def _model_call(transcript: Transcript, message_id: str | None) -> dict[str, Any] | None:
    if not message_id or message_id not in transcript.usage:
        return None
    u = transcript.usage[message_id]
    retries = transcript.retries.get(message_id, [])
    return {
        "message_id": message_id,
        "tokens_in": u.tokens_in,
        "tokens_out": u.tokens_out,
        "cost": u.cost,
        "latency_ms": round(u.latency_ms, 1),
        "context_tokens": u.context_tokens,
        "context_window": u.context_window,
        "retries": u.retries,
        "retry_errors": [r.error for r in retries],
        # Which model answered (a fallback when the primary was down), from the cache or not.
        "model": u.model or None,
        "fallback": u.fallback,
        "cached": u.cached,
    }


def inspect_block(transcript: Transcript, key: str) -> dict[str, Any]:
    """The inspector's document for one block (pure: testable without a screen)."""
    block = transcript.by_key.get(key)
    if block is None:
        return {}
    if block.call_id and block.call_id in transcript.calls:
        rec = transcript.calls[block.call_id]
        model_call = _model_call(transcript, rec.message_id)
        return {
            "step": "tool call",
            "tool_call": {
                "call_id": rec.call_id, "tool": rec.tool, "args": rec.args,
                "raw_args": rec.raw_args, "tier": rec.tier, "risk": rec.risk,
                "invalid": rec.invalid,
            },
            "approval": {
                "decision": rec.approval or None, "by": rec.approval_by or None,
                "reason": rec.approval_reason or None,
            },
            "args_ran": rec.args_ran,
            "status": rec.status,
            "result": rec.result,
            "timings": {
                "model_latency_ms": model_call["latency_ms"] if model_call else None,
                "tool_duration_ms": round(rec.duration_ms, 1),
            },
            "isolation": rec.isolation,
            "model_call": model_call,
            "checkpoint_id": rec.checkpoint_id,
            "checkpoint_after": rec.checkpoint_after,
            "state_changed": rec.state_changed,
            **({"injection_flagged": rec.injection} if rec.injection else {}),
        }
    doc: dict[str, Any] = {"step": block.kind, "text": block.text}
    if block.hint:
        doc["hint"] = block.hint
    if block.message_id:
        doc["model_call"] = _model_call(transcript, block.message_id)
    return doc


class Inspector(Vertical):
    """The selected step as JSON. The (read-only) editor is created on the first selection:
    until then there is nothing to show, and it is the costliest widget of the first frame."""

    def compose(self) -> ComposeResult:
        yield Static("Select a block in the stream (click it, or focus it and press Enter).",
                     id="inspector-title")

    def show(self, transcript: Transcript, key: str) -> None:
        doc = inspect_block(transcript, key)
        block = transcript.by_key.get(key)
        title = "Nothing selected"
        if block is not None:
            rec = transcript.calls.get(block.call_id or "")
            title = f"{block.kind}: {rec.tool} ({rec.status})" if rec else block.kind
        self.query_one("#inspector-title", Static).update(title)
        text = json.dumps(doc, indent=2, ensure_ascii=False, default=str)
        editors = self.query("#inspector-json").results(TextArea)
        editor = next(editors, None)
        if editor is not None:
            editor.load_text(text)
            return
        editor = TextArea.code_editor(
            text, language="json", read_only=True, id="inspector-json", soft_wrap=True,
            show_line_numbers=False, theme="css",
        )
        editor.cursor_blink = getattr(self.app, "blink", True)
        editor.highlight_cursor_line = False
        self.mount(editor)
