"""Approval rules in the workbench: the rule editor (with its reach preview) and the Rules screen.

``RuleEditorScreen`` edits one rule: the ``Tool(pattern)`` text, the scope (session / project /
global), for the Rules screen also the action, and shows live what the rule reaches — whether it
matches the call being approved (a rule that does not is refused, with the reason) and "would
have allowed N past calls" from the stored ``tool_call`` events (``store/rules.rule_reach``).
The approval modal opens it for "Always allow…"; like the modal, its save button stays disabled
for ``approval.ARM_DELAY`` so no key typed ahead can save a rule, and Enter never saves.

``RulesScreen`` lists every stored rule with its action, scope, hits and last hit; edit, delete
(after a confirmation) and add a rule (deny by default: the screen is where people block things).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Static,
)

from openmanus_tui.events import ApprovalCall
from openmanus_tui.runtime.api import (
    ACTIONS,
    SCOPES,
    Reach,
    Rule,
    RuleError,
    RulePattern,
    RuleStore,
    explain_miss,
    rule_reach,
    subject,
)
from openmanus_tui.tui.screens import approval as approval_mod

SHOWN_CALLS = 8  # past calls listed under the count
PREVIEW_DELAY = 0.15  # seconds of quiet typing before the reach is queried


@dataclass
class RuleContext:
    """Where rules go: the database, and the session and project (workspace) they may belong to."""

    db: Any
    session_id: str | None = None
    project: str | None = None

    @classmethod
    def of(cls, db: Any, session: Any) -> RuleContext:
        if session is None:
            return cls(db)
        return cls(db, session.id, str(session.workspace))


@dataclass
class RuleEdit:
    text: str
    scope: str
    action: str = "allow"


def ago(ts: float | None, now: float) -> str:
    """A short relative time ("3 min ago"); stable under a fixed clock."""
    if ts is None:
        return "never"
    seconds = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def _call_line(tool: str, args: dict[str, Any]) -> str:
    text = subject(tool, args).replace("\n", " ⏎ ")
    return text if len(text) <= 90 else text[:89] + "…"


class RuleEditorScreen(ModalScreen[RuleEdit | None]):
    """Edit a rule and see its reach. With ``call`` it is the "Always allow…" editor."""

    DEFAULT_CSS = """
    RuleEditorScreen { align: center middle; background: $background 60%; }
    #rule-editor { width: 96; max-width: 96%; height: auto; max-height: 94%;
                   border: thick $primary; background: $surface; padding: 0 1; }
    #rule-editor-title { text-style: bold; color: $primary; }
    #rule-hint, #reach-title { color: $text-muted; }
    .rule-radios { height: auto; margin-top: 1; }
    .rule-radios Label { width: 8; text-style: bold; }
    .rule-radios RadioSet { layout: horizontal; height: auto; width: 1fr; border: none; }
    .rule-radios RadioButton { width: auto; margin-right: 2; }
    #rule-check { height: auto; margin-top: 1; }
    #rule-check.ok { color: $success; }
    #rule-check.bad { color: $error; }
    #reach-title { margin-top: 1; }
    #reach-list { height: auto; max-height: 10; background: $background; }
    #rule-error { color: $error; height: auto; }
    #rule-buttons { height: auto; align-horizontal: right; }
    #rule-buttons Button { width: auto; margin-left: 1; }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="rules.editor.save"),
        Binding("escape", "cancel", "Cancel", id="rules.editor.cancel"),
    ]

    def __init__(
        self,
        context: RuleContext,
        text: str,
        *,
        scope: str = "session",
        action: str = "allow",
        call: ApprovalCall | None = None,
        title: str = "Always allow",
        choose_action: bool = False,
        on_save: Callable[[RuleEdit], Awaitable[str | None]] | None = None,
    ) -> None:
        super().__init__()
        self.context = context
        self.initial_text = text
        self.scope = scope if self._scope_ok(scope) else "global"
        self.action = action
        self.call = call
        self.title_text = title
        self.choose_action = choose_action
        self.on_save = on_save
        self.armed = False
        self.existing: list[Rule] = []
        self.problem: str | None = "checking…"
        self.reach: Reach | None = None

    def _scope_ok(self, scope: str) -> bool:
        if scope == "session":
            return bool(self.context.session_id)
        if scope == "project":
            return bool(self.context.project)
        return True

    def compose(self) -> ComposeResult:
        with Vertical(id="rule-editor"):
            yield Static(self.title_text, id="rule-editor-title")
            if self.call is not None:
                yield Static(Text.assemble("for this call: ", (self.call.tool, "bold"), "  ",
                                           _call_line(self.call.tool, self.call.args)),
                             id="rule-call")
            yield Input(self.initial_text, id="rule-pattern")
            yield Static("Tool or Tool(pattern): shell commands glob the command and every "
                         "part of && ; | must match; file tools glob the path (** crosses "
                         "folders).", id="rule-hint")
            with Horizontal(classes="rule-radios"):
                yield Label("Scope")
                with RadioSet(id="rule-scope"):
                    for scope in SCOPES:
                        label = {"session": "session", "project": "project (this workspace)",
                                 "global": "global (everywhere)"}[scope]
                        button = RadioButton(label, value=scope == self.scope,
                                             id=f"scope-{scope}")
                        button.disabled = not self._scope_ok(scope)
                        yield button
            if self.choose_action:
                with Horizontal(classes="rule-radios"):
                    yield Label("Action")
                    with RadioSet(id="rule-action"):
                        for action in ACTIONS:
                            yield RadioButton(action, value=action == self.action,
                                              id=f"action-{action}")
            yield Static("", id="rule-check")
            yield Static("", id="reach-title")
            with VerticalScroll(id="reach-list"):
                yield Static("", id="reach-calls")
            yield Static("", id="rule-error")
            with Horizontal(id="rule-buttons"):
                yield Button("Cancel  Esc", id="rule-cancel")
                label = "Save and approve  ^S" if self.call is not None else "Save  ^S"
                yield Button(label, id="rule-save", variant="warning", disabled=True)

    async def on_mount(self) -> None:
        pattern = self.query_one("#rule-pattern", Input)
        pattern.cursor_blink = getattr(self.app, "blink", True)
        pattern.focus()
        if self.context.session_id:
            self.existing = await RuleStore(self.context.db).applicable(
                self.context.session_id, self.context.project
            )
        self.set_timer(approval_mod.ARM_DELAY, self._arm)
        self._refresh_preview()

    def _arm(self) -> None:
        self.armed = True
        self._update_save()

    def _update_save(self) -> None:
        self.query_one("#rule-save", Button).disabled = not self.armed or self.problem is not None

    # ---- the live preview -----------------------------------------------------------------
    @on(Input.Changed, "#rule-pattern")
    def _pattern_changed(self) -> None:
        self.problem = "checking…"
        self._update_save()
        self._refresh_preview(delay=PREVIEW_DELAY)

    @on(RadioSet.Changed)
    def _radio_changed(self, event: RadioSet.Changed) -> None:
        value = str(event.pressed.id or "").split("-", 1)[1]
        if event.radio_set.id == "rule-scope":
            self.scope = value
        else:
            self.action = value
        self._refresh_preview()

    @on(Input.Submitted, "#rule-pattern")
    def _no_enter_save(self, event: Input.Submitted) -> None:
        event.stop()  # Enter only refreshes: saving is a deliberate ^S or click
        self._refresh_preview()

    @work(group="rule-preview", exclusive=True)
    async def _refresh_preview(self, delay: float = 0.0) -> None:
        import asyncio

        if delay:
            await asyncio.sleep(delay)
        text = self.query_one("#rule-pattern", Input).value
        check = self.query_one("#rule-check", Static)
        try:
            pattern = RulePattern.parse(text)
        except RuleError as exc:
            self._show_problem(exc.message)
            self.query_one("#reach-title", Static).update("")
            self.query_one("#reach-calls", Static).update("")
            return
        problem = None
        if self.call is not None:
            others = [r for r in self.existing if r.text != pattern.text or r.action != "allow"]
            problem = explain_miss(pattern, self.call.tool, self.call.args, others)
        if problem is None:
            self.problem = None
            check.set_classes("ok")
            check.update("✓ matches this call" if self.call is not None else f"✓ {pattern.text}")
        else:
            self._show_problem(f"does not match this call: {problem}")
        self.reach = await rule_reach(
            self.context.db, pattern, action=self.action,  # type: ignore[arg-type]
            scope=self.scope, session_id=self.context.session_id,  # type: ignore[arg-type]
            project=self.context.project,
            exclude_call=self.call.call_id if self.call is not None else None,
        )
        self._show_reach(self.reach)
        self._update_save()

    def _show_problem(self, message: str) -> None:
        self.problem = message
        check = self.query_one("#rule-check", Static)
        check.set_classes("bad")
        check.update(f"✗ {message}")
        self._update_save()

    def _show_reach(self, reach: Reach) -> None:
        verb = {"allow": "allowed", "ask": "asked about", "deny": "blocked"}[self.action]
        where = {"session": "in this session", "project": "in this workspace",
                 "global": "in all sessions"}[self.scope]
        plural = "" if reach.count == 1 else "s"
        self.query_one("#reach-title", Static).update(
            f"This rule would have {verb} {reach.count} past call{plural} {where}"
            + (":" if reach.count else ".")
        )
        lines = [f"  {c.tool}  {_call_line(c.tool, c.args)}" for c in reach.calls[:SHOWN_CALLS]]
        if reach.count > SHOWN_CALLS:
            lines.append(f"  … and {reach.count - SHOWN_CALLS} more")
        self.query_one("#reach-calls", Static).update(Text("\n".join(lines)))

    # ---- choices -----------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "rule-save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(group="rule-save", exclusive=True)
    async def action_save(self) -> None:
        if not self.armed:
            return
        text = self.query_one("#rule-pattern", Input).value
        try:
            pattern = RulePattern.parse(text)
        except RuleError as exc:
            self._show_problem(exc.message)
            return
        if self.call is not None:
            others = [r for r in self.existing if r.text != pattern.text or r.action != "allow"]
            problem = explain_miss(pattern, self.call.tool, self.call.args, others)
            if problem is not None:
                self._show_problem(f"does not match this call: {problem}")
                self.query_one("#rule-error", Static).update(
                    "Not saved: a rule must match the call it approves. Widen the pattern, "
                    "or approve once."
                )
                return
        edit = RuleEdit(pattern.text, self.scope, self.action)
        if self.on_save is not None:
            error = await self.on_save(edit)
            if error:
                self.query_one("#rule-error", Static).update(f"Not saved: {error}")
                return
        self.dismiss(edit)


class RulesScreen(Screen[None]):
    """Every stored approval rule; add, edit and delete them."""

    DEFAULT_CSS = """
    RulesScreen { background: $background; }
    #rules-title { text-style: bold; color: $primary; padding: 0 1; }
    #rules-help { color: $text-muted; padding: 0 1; }
    #rules-table { height: 1fr; }
    #rules-empty { padding: 1 2; color: $text-muted; }
    """
    BINDINGS = [
        Binding("a", "add", "Add rule", id="rules.add"),
        Binding("e", "edit", "Edit", id="rules.edit"),
        Binding("d,delete", "delete", "Delete", id="rules.delete"),
        Binding("escape,q", "close", "Close", id="rules.close"),
    ]

    def __init__(self, context: RuleContext, *, now: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.context = context
        self.store = RuleStore(context.db)
        self.now = now
        self.rules: list[Rule] = []

    def compose(self) -> ComposeResult:
        yield Static("Approval rules", id="rules-title")
        yield Static("deny wins, then ask, then allow · a add · e / Enter edit · d delete · "
                     "Esc close", id="rules-help")
        table: DataTable[Any] = DataTable(id="rules-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("Tool", "Pattern", "Action", "Scope", "Where", "Hits", "Last hit")
        yield table
        yield Static("No rules yet. Answer “Always allow…” in an approval, or press a to add "
                     "one (deny by default).", id="rules-empty")
        yield Footer()

    async def on_mount(self) -> None:
        await self.reload()
        self.query_one("#rules-table", DataTable).focus()

    async def reload(self) -> None:
        self.rules = await self.store.list()
        table = self.query_one("#rules-table", DataTable)
        table.clear()
        now = self.now()
        styles = {"allow": "green", "ask": "yellow", "deny": "bold red"}
        for rule in self.rules:
            where = {"session": rule.session_id, "project": rule.project}.get(rule.scope) or "—"
            if rule.scope == "session" and rule.session_id == self.context.session_id:
                where = "this session"
            elif rule.scope == "project" and rule.project == self.context.project:
                where = "this workspace"
            elif len(where) > 28:
                where = "…" + where[-27:]
            table.add_row(
                rule.tool, rule.specifier or "(any call)",
                Text(rule.action, style=styles[rule.action]), rule.scope, where,
                str(rule.hits), ago(rule.last_hit, now), key=str(rule.id),
            )
        self.query_one("#rules-empty").display = not self.rules
        table.display = bool(self.rules)

    def selected(self) -> Rule | None:
        table = self.query_one("#rules-table", DataTable)
        if not self.rules or table.cursor_row < 0:
            return None
        return self.rules[min(table.cursor_row, len(self.rules) - 1)]

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_edit()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_add(self) -> None:
        async def save(edit: RuleEdit) -> str | None:
            try:
                await self.store.add(edit.text, action=edit.action,  # type: ignore[arg-type]
                                     scope=edit.scope,  # type: ignore[arg-type]
                                     session_id=self.context.session_id,
                                     project=self.context.project)
            except RuleError as exc:
                return exc.message
            return None

        self._edit(RuleEditorScreen(self.context, "shell_exec(rm -rf *)", scope="global",
                                    action="deny", title="Add a rule", choose_action=True,
                                    on_save=save))

    def action_edit(self) -> None:
        rule = self.selected()
        if rule is None or rule.id is None:
            return
        rule_id = rule.id
        context = RuleContext(self.context.db, rule.session_id or self.context.session_id,
                              rule.project or self.context.project)

        async def save(edit: RuleEdit) -> str | None:
            try:
                await self.store.update(rule_id, text=edit.text,
                                        action=edit.action,  # type: ignore[arg-type]
                                        scope=edit.scope,  # type: ignore[arg-type]
                                        session_id=context.session_id, project=context.project)
            except RuleError as exc:
                return exc.message
            return None

        self._edit(RuleEditorScreen(context, rule.text, scope=rule.scope, action=rule.action,
                                    title=f"Edit rule #{rule_id}", choose_action=True,
                                    on_save=save))

    def _edit(self, editor: RuleEditorScreen) -> None:
        async def done(result: RuleEdit | None) -> None:
            if result is not None:
                await self.reload()

        self.app.push_screen(editor, done)

    @work(group="rules-delete")
    async def action_delete(self) -> None:
        from openmanus_tui.tui.screens.dialogs import ConfirmScreen

        rule = self.selected()
        if rule is None or rule.id is None:
            return
        question = f"Delete the {rule.scope} {rule.action} rule {rule.text}?"
        if await self.app.push_screen_wait(ConfirmScreen(question)):
            await self.store.delete(rule.id)
            await self.reload()
            self.app.notify(f"Deleted {rule.text}.")
