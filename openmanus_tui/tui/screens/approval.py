"""The approval modal: one pending tool call, decided by a person.

Shows the tool, its risk and tier, why it asks, the arguments as pretty JSON and, for
``file_write`` / ``file_edit``, a unified diff against the file in the session's workspace.
Choices: approve once, edit the arguments (a JSON editor validated against the tool's
``args_model``) and approve, deny with a reason the model receives as the call's result, or
(given a ``RuleContext``) "Always allow…", which opens the rule editor of
``tui/screens/rules.py`` with a suggested pattern, a scope and the rule's reach, and approves
with ``decision="always"``.

Type-ahead safety: the scrolling body has focus (arrows and Page keys scroll it; letters and
Enter do nothing), so stray keys neither answer nor end up in the reason; approving needs the
approve button or Ctrl+S, and neither works until ``ARM_DELAY`` seconds after the modal shows.
Escape denies, the least permissive answer; Enter in the reason box denies with that reason, and
does nothing while the box is empty (a stray Enter is not an answer).

Small terminals (80×24): the title and the buttons are docked, everything between them scrolls,
so every choice stays on screen however long the arguments or the diff are.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TextArea

from openmanus_tui.events import ApprovalCall
from openmanus_tui.runtime.api import Decision
from openmanus_tui.runtime.views import check_edited_args
from openmanus_tui.termsafe import sanitize

ARM_DELAY = 0.4
MAX_DIFF_BYTES = 256 * 1024


def file_diff(workspace: Path | None, tool: str, args: dict[str, Any]) -> str | None:
    """The unified diff a file_write / file_edit call would make, or None if not applicable."""
    if workspace is None or tool not in ("file_write", "file_edit") or "path" not in args:
        return None
    root = workspace.resolve()
    target = (root / str(args["path"])).resolve()
    if not target.is_relative_to(root):
        return f"# {args['path']} is outside the workspace: no diff"
    try:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        return f"# cannot read {args['path']}: {exc}"
    if len(current) > MAX_DIFF_BYTES:
        return f"# {args['path']} is too large to diff here ({len(current):,} bytes)"
    if tool == "file_write":
        new = str(args.get("content", ""))
    else:
        old_text = str(args.get("old_text", ""))
        if not old_text or current.count(old_text) != 1:
            return f"# old_text occurs {current.count(old_text) if old_text else 0} times " \
                   f"in {args['path']}: the edit will fail"
        new = current.replace(old_text, str(args.get("new_text", "")), 1)
    label = str(args["path"])
    lines = difflib.unified_diff(
        current.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"a/{label}" if target.exists() else "/dev/null", tofile=f"b/{label}",
    )
    return "".join(lines) or "# no change"


class ApprovalScreen(ModalScreen[Decision]):
    BINDINGS = [
        # Keys none of the focused widgets (Input, TextArea) use themselves.
        Binding("ctrl+s", "approve", "Approve", id="approval.approve"),
        Binding("ctrl+t", "edit", "Edit args", id="approval.edit"),
        Binding("escape", "deny", "Deny", id="approval.deny"),
    ]

    def __init__(
        self, call: ApprovalCall, *, index: int = 1, count: int = 1,
        workspace: Path | None = None, args_model: type | None = None, rules: Any = None,
    ) -> None:
        super().__init__(classes="approval-screen")
        self.call = call
        self.index, self.count = index, count
        self.workspace = workspace
        self.args_model = args_model
        self.rules = rules  # a tui.rules.RuleContext: where an "always" rule would be stored
        self.armed = False
        self.editing = False
        diff_text = file_diff(workspace, call.tool, call.args)
        self.diff_text = None if diff_text is None else sanitize(diff_text, keep_sgr=False)

    def compose(self) -> ComposeResult:
        c = self.call
        # The model wrote the arguments: control characters in them are shown as escapes. In
        # the JSON those escapes (\u009b) mean the same characters, so an edit keeps them.
        args_json = sanitize(json.dumps(c.args, indent=2, ensure_ascii=False), keep_sgr=False)
        of = f" ({self.index} of {self.count})" if self.count > 1 else ""
        with Vertical(id="approval"):
            tool = sanitize(c.tool, keep_sgr=False)
            yield Static(Text.assemble(("⚠ Approve ", "bold"), (tool, "bold reverse"), f"?{of}"),
                         id="approval-title")
            with Horizontal(id="approval-buttons"):
                yield Button("Deny  Esc", id="deny", variant="error")
                yield Button("Edit args  ^T", id="edit", disabled=True)
                if self.rules is not None:
                    yield Button("Always allow…", id="always", disabled=True)
                yield Button("Approve once  ^S", id="approve", variant="success", disabled=True)
            with VerticalScroll(id="approval-scroll"):
                meta = [f"risk {c.risk}"]
                if c.tier is not None:
                    meta.append(f"tier {c.tier}")
                meta.append(f"rule: {c.rule or 'none'}")
                if c.reason:
                    meta.append(f"asks because: {sanitize(c.reason, keep_sgr=False)}")
                yield Static(" · ".join(meta), id="approval-meta")
                with Vertical(id="approval-body"):
                    yield Static(Syntax(args_json, "json",
                                        word_wrap=True, theme="ansi_dark"), id="approval-args")
                    if self.diff_text is not None:
                        yield Static("Changes to the file:", classes="approval-section")
                        yield Static(Syntax(self.diff_text, "diff", word_wrap=True,
                                            theme="ansi_dark"), id="approval-diff")
                editor = TextArea.code_editor(
                    args_json, language="json",
                    id="args-editor", show_line_numbers=False, soft_wrap=True, theme="css",
                )
                editor.display = False
                yield editor
                yield Static("", id="edit-error")
                yield Input(placeholder="Reason for denying (optional; Enter denies with it)",
                            id="deny-reason")

    def on_mount(self) -> None:
        blink = getattr(self.app, "blink", True)
        self.query_one("#deny-reason", Input).cursor_blink = blink
        self.query_one("#args-editor", TextArea).cursor_blink = blink
        # Not the reason box: text typed ahead would become the reason, and its Enter denies.
        self.query_one("#approval-scroll", VerticalScroll).focus()
        self.set_timer(ARM_DELAY, self._arm)

    def _arm(self) -> None:
        self.armed = True
        for button in self.query("#edit, #approve, #always").results(Button):
            button.disabled = False

    # ---- choices ----------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"approve": self.action_approve, "edit": self.action_edit,
         "deny": self.action_deny, "always": self.action_always}[str(event.button.id)]()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():  # an empty box: a stray Enter, not a decision
            self.action_deny()

    def action_deny(self) -> None:
        reason = self.query_one("#deny-reason", Input).value.strip()
        self.dismiss(Decision(decision="deny", reason=reason or "denied by the user"))

    def action_always(self) -> None:
        """Open the rule editor; a saved rule approves this call and is remembered."""
        if not self.armed or self.rules is None or self.editing:
            return
        from openmanus_tui.runtime.api import suggest_pattern
        from openmanus_tui.tui.screens.rules import RuleEdit, RuleEditorScreen

        def chosen(edit: RuleEdit | None) -> None:
            if edit is not None:
                self.dismiss(Decision(decision="always", rule=edit.text, scope=edit.scope))  # type: ignore[arg-type]

        editor = RuleEditorScreen(
            self.rules, suggest_pattern(self.call.tool, self.call.args), call=self.call,
            title=f"Always allow {self.call.tool} calls like this one",
        )
        self.app.push_screen(editor, chosen)

    def action_edit(self) -> None:
        if not self.armed or self.editing:
            return
        self.editing = True
        editor = self.query_one("#args-editor", TextArea)
        editor.display = True
        self.query_one("#approval-body").display = False
        self.query_one("#approve", Button).label = "Approve edited  ^S"
        self.query_one("#edit", Button).disabled = True
        editor.focus()

    def action_approve(self) -> None:
        if not self.armed:
            return
        if not self.editing:
            self.dismiss(Decision(decision="approve"))
            return
        args, error = self.validate_edit(self.query_one("#args-editor", TextArea).text)
        if error:
            self.query_one("#edit-error", Static).update(Text(error, style="bold"))
            return
        self.dismiss(Decision(decision="edit", args=args))

    def validate_edit(self, text: str) -> tuple[dict[str, Any] | None, str]:
        """(arguments, "") when ``text`` is a JSON object the tool accepts, else (None, why)."""
        return check_edited_args(text, self.call.tool, self.args_model)
