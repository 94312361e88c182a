"""The branch tree screen: a session's checkpoint tree, and the actions on one step.

A ``Tree`` with a label per step (user message, tool call, result, answer…) built from the
core's ``SessionTree`` (``store/tree.py``). Like ``openmanus sessions tree``, a linear run stays
one level deep and only a fork opens a level. The current branch is bold and its step marked
``← current``; branch heads carry ``◆``; steps removed by retention are dimmed.

The screen only chooses: what happens (switch, fork and run, compare, replay) is done by
``tui/branching.py`` in a worker of the app, so the work outlives this screen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Static, Tree

from openmanus_tui.runtime.api import KIND_STYLE
from openmanus_tui.termsafe import sanitize
from openmanus_tui.tui.terminal_guard import plain

if TYPE_CHECKING:
    from openmanus_tui.runtime.api import SessionTree, TreeNode

KIND_NAMES = {
    "user": "user message",
    "tool_call": "tool call",
    "result": "tool result",
    "answer": "final answer",
    "fork": "edited step",
    "retry": "retry",
    "approval": "approval",
    "thought": "model text",
    "start": "graph start",
}
# Actions on a step: (id, button label). Keys are in BINDINGS.
ACTIONS = [
    ("switch", "Switch here  s"),
    ("retry", "Retry from here  r"),
    ("edit_message", "Edit message & re-run  e"),
    ("edit_args", "Edit tool args  a"),
    ("mark", "Mark for compare  m"),
    ("compare", "Compare  c"),
    ("replay", "Replay branch  p"),
]
TreeLoader = Callable[[], Awaitable["SessionTree"]]


def step_label(
    node: TreeNode, *, head: bool, current: bool, on_current: bool, marked: bool
) -> Text:
    """One tree line: step number, the core's label, and the head/current/compare marks.

    Checkpoint ids are left out (they differ on every run; the details pane shows them)."""
    text = Text(f"{node.step:>3} ", style="dim")
    style = KIND_STYLE.get(node.kind, "")
    if node.pruned:
        style = "dim strike" if node.kind != "user" else "dim"
    text.append(sanitize(node.label, keep_sgr=False), style=style)
    if node.pruned:
        text.append("  (pruned)", style="dim")
    if head:
        text.append("  ◆ head", style="bold yellow")
    if current:
        text.append("  ← current", style="bold reverse")
    elif on_current and not node.pruned:
        text.stylize("bold")
    if marked:
        text.append("  [A]", style="bold cyan")
    return text


def fill_tree(widget: Tree[str], tree: SessionTree, marked: str | None = None) -> None:
    """(Re)build ``widget`` from ``tree``; node data is the checkpoint id."""
    widget.clear()
    on_current = set(tree.lineage(tree.current)) if tree.current else set()
    heads = set(tree.heads)

    def label(cid: str) -> Text:
        return step_label(
            tree.nodes[cid], head=cid in heads, current=cid == tree.current,
            on_current=cid in on_current, marked=cid == marked,
        )

    def add(parent: Any, cid: str) -> None:
        # A linear run stays on one level; a step with several children opens one per child.
        while True:
            children = sorted(tree.nodes[cid].children, key=lambda c: tree.nodes[c].seq)
            if len(children) <= 1:
                parent.add_leaf(label(cid), data=cid)
                if not children:
                    return
                cid = children[0]
                continue
            branch = parent.add(label(cid), data=cid, expand=True)
            for child in children:
                add(branch, child)
            return

    for root_id in tree.roots:
        add(widget.root, root_id)
    widget.root.expand()


class HistoryScreen(Screen[None]):
    """The session's branch tree with the step actions; Escape closes."""

    DEFAULT_CSS = """
    HistoryScreen { layout: vertical; }
    #history-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    #history-main { height: 1fr; }
    #history-tree { width: 1fr; border-right: vkey $panel; padding: 0 1; }
    #history-side { width: 44; padding: 0 1; }
    #history-details { height: auto; margin-bottom: 1; }
    #history-side Button { width: 100%; margin-bottom: 0; }
    #history-db { height: auto; margin-top: 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("s", "step('switch')", "Switch"),
        Binding("r", "step('retry')", "Retry"),
        Binding("e", "step('edit_message')", "Edit msg"),
        Binding("a", "step('edit_args')", "Edit args"),
        Binding("m", "step('mark')", "Mark A"),
        Binding("c", "step('compare')", "Compare"),
        Binding("p", "step('replay')", "Replay"),
    ]

    def __init__(
        self, title: str, loader: TreeLoader, *, db_size: str = "",
        on_action: Callable[[str, str, str | None], None] | None = None,
    ) -> None:
        super().__init__()
        self.session_title = title
        self.loader = loader
        self.db_size = db_size
        # on_action(action, checkpoint_id, marked_id): run by the app (tui/branching.py).
        self.on_action = on_action
        self.tree_data: SessionTree | None = None
        self.marked: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(plain(f"Branches — {self.session_title}"), id="history-title")
        with Horizontal(id="history-main"):
            tree: Tree[str] = Tree("session", id="history-tree")
            tree.show_root = False
            tree.guide_depth = 3
            yield tree
            with Vertical(id="history-side"):
                yield Static("", id="history-details")
                for action, label in ACTIONS:
                    yield Button(label, id=f"do-{action}", compact=True)
                yield Static(self.db_size, id="history-db")
        yield Footer()

    async def on_mount(self) -> None:
        await self.reload()
        self.query_one("#history-tree", Tree).focus()

    async def reload(self) -> None:
        self.tree_data = await self.loader()
        widget = self.query_one("#history-tree", Tree)
        fill_tree(widget, self.tree_data, self.marked)
        # Put the cursor on the current step, where a person starts looking.
        if self.tree_data.current is not None:
            self.select(self.tree_data.current)
        self._show_details()

    def select(self, checkpoint_id: str) -> bool:
        """Move the tree's cursor to ``checkpoint_id`` (True when it is in the tree)."""
        widget = self.query_one("#history-tree", Tree)

        def walk(node: Any) -> Any:
            for child in node.children:
                if child.data == checkpoint_id:
                    return child
                found = walk(child)
                if found is not None:
                    return found
            return None

        found = walk(widget.root)
        if found is None:
            return False
        _ = widget.last_line  # builds the line index, so the node knows its line
        widget.move_cursor(found, animate=False)
        self._show_details()
        return True

    @property
    def selected(self) -> str | None:
        node = self.query_one("#history-tree", Tree).cursor_node
        return None if node is None else node.data

    # ---- details ----------------------------------------------------------------------------
    @on(Tree.NodeHighlighted)
    def _on_highlight(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        self._show_details()

    def _show_details(self) -> None:
        tree, cid = self.tree_data, self.selected
        details = self.query_one("#history-details", Static)
        if tree is None or cid is None or cid not in tree.nodes:
            details.update(Text("No step selected.", style="dim"))
            return
        node = tree.nodes[cid]
        text = Text()
        text.append(f"step {node.step} · {KIND_NAMES.get(node.kind, node.kind)}\n", style="bold")
        text.append(node.label + "\n", style=KIND_STYLE.get(node.kind, ""))
        text.append(f"checkpoint …{cid[-12:]}\n", style="dim")
        marks = []
        if cid in tree.heads:
            marks.append("◆ branch head")
        if cid == tree.current:
            marks.append("← current")
        if node.pruned:
            marks.append("pruned: replay only")
        if self.marked:
            marks.append("A = " + ("this step" if self.marked == cid
                                   else f"step {tree.nodes[self.marked].step}"))
        if marks:
            text.append(" · ".join(marks), style="bold")
        details.update(text)
        for action, _ in ACTIONS:
            self.query_one(f"#do-{action}", Button).disabled = not self.can(action, cid)

    def can(self, action: str, cid: str) -> bool:
        """Whether ``action`` applies to step ``cid`` (the buttons and keys agree)."""
        tree = self.tree_data
        if tree is None or cid not in tree.nodes:
            return False
        node = tree.nodes[cid]
        if action in ("retry", "edit_message", "edit_args") and node.pruned:
            return False
        if action == "switch":
            return not node.pruned
        if action == "retry":
            return node.parent_id is not None or node.kind == "user"
        if action == "edit_message":
            return any(tree.nodes[c].kind == "user" for c in tree.lineage(cid))
        if action == "edit_args":
            return node.kind == "tool_call"
        if action == "compare":
            other = self.marked or tree.current
            return other is not None and other != cid
        return True

    # ---- actions ----------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_step(str(event.button.id).removeprefix("do-"))

    def action_step(self, action: str) -> None:
        cid = self.selected
        if cid is None or not self.can(action, cid):
            self.app.bell()
            return
        if action == "mark":
            self.marked = None if self.marked == cid else cid
            assert self.tree_data is not None
            fill_tree(self.query_one("#history-tree", Tree), self.tree_data, self.marked)
            self.select(cid)
            return
        marked = self.marked
        self.dismiss(None)
        if self.on_action is not None:
            self.on_action(action, cid, marked)

    def action_close(self) -> None:
        self.dismiss(None)
