"""What the branch tree's choices do in the workbench: switch, fork and run, compare, replay,
prune, and the database size. The work itself is the core's (``runtime/history.py``,
``runtime/replay.py``, ``Runtime.prune``); this module sequences it with the app's screens.

Each action runs in an app worker (not the tree screen's: the screen closes first), asks before
overwriting files changed outside the agent (``WorkspaceChanged``), reloads the stream with the
branch's recorded transcript, and starts new branches through the app's own run worker
(``run_task(message)`` for an edited message, ``run_task(None)`` to continue from the head).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from openmanus_tui.errors import OpenManusError
from openmanus_tui.tui.commands import Entry, _Entries

if TYPE_CHECKING:
    from openmanus_tui import events as ev
    from openmanus_tui.tui.app import OpenManusApp

T = TypeVar("T")
SLASH_NAMES = ("tree", "replay", "prune")


def human_bytes(size: int) -> str:
    """Coarse on purpose (0.1 MB steps above 100 KB): a size, not a byte count to watch."""
    if size >= 1024 ** 3:
        return f"{size / 1024 ** 3:.1f} GB"
    if size >= 100 * 1024:
        return f"{size / 1024 ** 2:.1f} MB"
    return f"{max(size, 0) / 1024:.0f} KB"


def changes_question(changes: list[Any]) -> str:
    listed = [f"  {c.status:>8}  {c.path}" for c in changes[:8]]
    if len(changes) > 8:
        listed.append(f"  … and {len(changes) - 8} more")
    return (
        "Files were changed outside the agent since the current step:\n"
        + "\n".join(listed)
        + "\n\nRestoring the chosen step overwrites them."
    )


async def confirm_overwrite(app: OpenManusApp, op: Callable[[bool], Awaitable[T]]) -> T | None:
    """``op(force)``; when it finds outside changes, ask, and on yes run it again with force."""
    from openmanus_tui.runtime.history import WorkspaceChanged
    from openmanus_tui.tui.dialogs import ConfirmScreen

    try:
        return await op(False)
    except WorkspaceChanged as exc:
        question = changes_question(exc.changes)
        if not await app.push_screen_wait(ConfirmScreen(question, confirm_label="Overwrite")):
            app.notify("Nothing changed: the files outside the agent were kept.")
            return None
        return await op(True)


def _session_or_warn(app: OpenManusApp, *, idle: bool = True) -> Any:
    if app.session is None:
        app.notify("No session yet: send a task first.", severity="warning")
        return None
    if idle and app.run_in_progress():
        app.notify("A run or replay is in progress: stop it (Ctrl+G) first.", severity="warning")
        return None
    return app.session


# ---- the stream ---------------------------------------------------------------------------------
async def branch_events(session: Any, head: str | None) -> list[ev.Event]:
    """The recorded events of the branch ending at ``head`` (None: the current one), as the
    stream shows and replays them.

    An edited user message forks from the input checkpoint of the run it replaces, so the
    replaced run's ``run_started`` lies on the new branch's lineage although its message never
    reached the model there: it is left out.
    """
    tree = await session.history.tree()
    head = head or tree.current
    if head is None:
        return []
    events = await session.history.recorded(head)
    line = tree.lineage(head)
    replaced = {
        cid for cid, child in itertools.pairwise(line)
        if tree.nodes[cid].source == "input" and tree.nodes[child].source == "input"
    }
    if not replaced:
        return events
    from openmanus_tui import events as ev  # here: the first frame comes before pydantic

    out: list[ev.Event] = []
    started: int | None = None  # index in ``out`` of a run_started since the last checkpoint
    for event in events:
        if isinstance(event, ev.Checkpoint):
            if event.checkpoint_id in replaced and started is not None:
                del out[started]
            started = None
        elif isinstance(event, ev.RunStarted):
            started = len(out)
        out.append(event)
    return out


async def session_events(session: Any) -> list[ev.Event]:
    """What the stream shows for a session: its current branch once it has branches, else
    every stored event (a session without checkpoints still shows its errors and notices)."""
    if await session.history.head_count() <= 1:
        return await session.runtime.db.events(session.id)
    tree = await session.history.tree()
    return await branch_events(session, tree.current)


async def show_events(app: OpenManusApp, events: list[ev.Event], *, replay: bool = False) -> None:
    """Replace the stream with ``events``; ``replay``: part of a replay, so a run cut short
    by the replay's position is still running, not interrupted."""
    from openmanus_tui.tui.transcript import Transcript

    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    if transcript.run_state == "running" and not replay:
        transcript.run_state = "interrupted"  # stored mid-run: the run ended early
    await app._show_transcript(transcript)


async def show_branch(app: OpenManusApp, head: str | None) -> None:
    """Reload the stream with the recorded transcript of the branch ending at ``head``
    (None: the session's current branch)."""
    if app.session is None:
        return
    if head is None:
        await show_events(app, await session_events(app.session))
    else:
        await show_events(app, await branch_events(app.session, head))


# ---- the tree ------------------------------------------------------------------------------------
def open_tree(app: OpenManusApp) -> None:
    app.run_worker(_open_tree(app), group="history", exclusive=True)


async def _open_tree(app: OpenManusApp) -> None:
    from openmanus_tui.tui.history import HistoryScreen

    session = _session_or_warn(app, idle=False)
    if session is None:
        return
    size = await app.runtime.db.size_bytes()
    title = session.record.title or session.id
    app.push_screen(HistoryScreen(
        title, session.history.tree, db_size=f"database {human_bytes(size)}",
        on_action=partial(tree_action, app),
    ))


def tree_action(app: OpenManusApp, action: str, checkpoint_id: str, marked: str | None) -> None:
    """Run what the tree screen chose, in an app worker (the screen has closed)."""
    jobs: dict[str, Callable[[], Awaitable[None]]] = {
        "switch": partial(switch, app, checkpoint_id),
        "retry": partial(retry, app, checkpoint_id),
        "edit_message": partial(edit_message, app, checkpoint_id),
        "edit_args": partial(edit_args, app, checkpoint_id),
        "compare": partial(compare, app, marked, checkpoint_id),
        "replay": partial(replay, app, checkpoint_id),
    }
    app.run_worker(_guarded(app, jobs[action]), group="history", exclusive=True)


async def _guarded(app: OpenManusApp, job: Callable[[], Awaitable[None]]) -> None:
    try:
        await job()
    except OpenManusError as exc:
        app.notify(exc.message + (f"\n{exc.hint}" if exc.hint else ""), severity="error")


async def switch(app: OpenManusApp, checkpoint_id: str) -> bool:
    """Make ``checkpoint_id`` current: restore its files (asking first about outside changes)
    and show its branch."""
    session = _session_or_warn(app)
    if session is None:
        return False
    changes = await confirm_overwrite(
        app, lambda force: session.history.switch(checkpoint_id, force=force)
    )
    if changes is None:
        return False
    await show_branch(app, checkpoint_id)
    app.notify(f"Switched branch; {len(changes)} file(s) restored.")
    return True


async def _prepare_and_run(
    app: OpenManusApp, prepare: Callable[[bool], Awaitable[str]], *, message: str | None,
) -> bool:
    """Fork with ``prepare(force)`` (returns the step the branch starts from), show the branch
    up to there, then run it live in the normal stream."""
    session = app.session
    start = await confirm_overwrite(app, prepare)
    if start is None:
        return False
    tree = await session.history.tree()
    if message is not None:
        # The new message replaces the run that started at ``start``: show what came before.
        parent = tree.nodes[start].parent_id
        if parent is None:
            await show_events(app, [])
        else:
            await show_branch(app, parent)
        app.run_task(message)
        return True
    await show_branch(app, start)
    _, unfinished = await session.pending()
    if not unfinished:
        app.notify("Nothing to run from this step: it is already finished.", severity="warning")
        return False
    app.run_task(None)
    return True


async def user_message_at(session: Any, checkpoint_id: str) -> str:
    """The user message of the run that ``checkpoint_id`` belongs to (full text)."""
    events = await branch_events(session, checkpoint_id)
    inputs = [e.input for e in events if e.type == "run_started" and e.input]
    return inputs[-1] if inputs else ""


async def retry(app: OpenManusApp, checkpoint_id: str) -> bool:
    """Re-run the step that produced ``checkpoint_id`` on a new branch (live replay from there);
    on a user message, re-ask the same message."""
    session = _session_or_warn(app)
    if session is None:
        return False
    node = (await session.history.tree()).nodes[checkpoint_id]
    if node.kind == "user":
        text = await user_message_at(session, checkpoint_id)
        return await _prepare_and_run(
            app, lambda force: session.history.fork(checkpoint_id, message=text, force=force),
            message=text,
        )
    return await _prepare_and_run(
        app, lambda force: session.history.fork(checkpoint_id, force=force), message=None
    )


async def edit_message(app: OpenManusApp, checkpoint_id: str, text: str | None = None) -> bool:
    """Ask for a new version of the user message above ``checkpoint_id`` and re-run it."""
    from openmanus_tui.tui.dialogs import TextPromptScreen

    session = _session_or_warn(app)
    if session is None:
        return False
    if text is None:
        old = await user_message_at(session, checkpoint_id)
        text = await app.push_screen_wait(TextPromptScreen("Edit the message and re-run", old))
    if not text:
        return False
    return await _prepare_and_run(
        app, lambda force: session.history.fork(checkpoint_id, message=text, force=force),
        message=text,
    )


async def edit_args(
    app: OpenManusApp, checkpoint_id: str, new_args: dict[str, dict[str, Any]] | None = None,
) -> bool:
    """Edit the tool calls' arguments at ``checkpoint_id`` (one editor per call) and continue
    on a new branch with them."""
    from langchain_core.messages import AIMessage

    from openmanus_tui.tui.args_editor import ArgsEditScreen

    session = _session_or_warn(app)
    if session is None:
        return False
    if new_args is None:
        state = await app.runtime.graph.aget_state(session.history.at(checkpoint_id))
        messages = state.values.get("messages", [])
        reply = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if reply is None or not reply.tool_calls:
            app.notify("There is no tool call at this step.", severity="warning")
            return False
        new_args = {}
        for call in reply.tool_calls:
            spec = app.runtime.registry.get(call["name"])
            edited = await app.push_screen_wait(ArgsEditScreen(
                call["name"], call["args"], spec.args_model if spec else None
            ))
            if edited is None:
                return False
            if edited != call["args"]:
                new_args[str(call["id"])] = edited
        if not new_args:
            app.notify("The arguments did not change: nothing to fork.")
            return False
    edits = new_args
    return await _prepare_and_run(
        app, lambda force: session.history.fork(checkpoint_id, call_args=edits, force=force),
        message=None,
    )


async def live_replay(app: OpenManusApp, head: str | None = None) -> bool:
    """Re-execute a branch from its first model step into a new branch (model and tools run)."""
    session = _session_or_warn(app)
    if session is None:
        return False
    tree = await session.history.tree()
    head = head or tree.current
    line = tree.lineage(head) if head else []
    first = next((c for c in line if tree.nodes[c].node == "call_llm"), None)
    if first is None:
        app.notify("Nothing to replay live: the branch has no model step.", severity="warning")
        return False
    return await retry(app, first)


# ---- compare and replay -------------------------------------------------------------------------
async def compare(app: OpenManusApp, head_a: str | None, head_b: str) -> None:
    from openmanus_tui.tui.compare import CompareScreen

    session = _session_or_warn(app, idle=False)
    if session is None:
        return
    tree = await session.history.tree()
    head_a = head_a or tree.current
    if head_a is None or head_a == head_b:
        app.notify("Mark another step (m) to compare with.", severity="warning")
        return
    diff = await session.history.compare(head_a, head_b)

    def label(cid: str) -> str:
        node = tree.nodes[cid]
        marks = (" ◆" if cid in tree.heads else "") + (" ← current" if cid == tree.current else "")
        return f"step {node.step} {node.label}{marks}"

    app.push_screen(CompareScreen(diff, label(head_a), label(head_b)))


async def replay(app: OpenManusApp, checkpoint_id: str | None = None) -> None:
    """Open the replay bar on a branch: a head replays from the start; any other step opens
    its branch (the newest head below it) paused at that step."""
    from openmanus_tui.tui.replay import ReplayBar

    session = _session_or_warn(app)
    if session is None:
        return
    tree = await session.history.tree()
    if not tree.nodes:
        app.notify("Nothing recorded to replay yet.", severity="warning")
        return
    checkpoint_id = checkpoint_id or tree.current
    assert checkpoint_id is not None
    head = tree.branch_of(checkpoint_id)
    events = await branch_events(session, head)
    start_step = tree.nodes[checkpoint_id].step if checkpoint_id != head else None
    await ReplayBar.open(app, events, title=tree.nodes[head].label, head=head,
                         start_step=start_step)


# ---- retention --------------------------------------------------------------------------------
async def refresh_db_size(app: OpenManusApp) -> None:
    from openmanus_tui.tui.sidebar import Sidebar

    if app.runtime is not None:
        app._q(Sidebar).show_db_size(human_bytes(await app.runtime.db.size_bytes()))


async def prune(app: OpenManusApp, keep_last: int | None = None, *, ask: bool = True) -> Any:
    """``Runtime.prune`` after a confirmation; reports the sizes before and after."""
    from openmanus_tui.tui.dialogs import ConfirmScreen

    if app.runtime is None or app.run_in_progress():
        app.notify("Wait for the run to finish before pruning.", severity="warning")
        return None
    keep = keep_last or app.settings.storage.keep_last or 50
    if ask and not await app.push_screen_wait(ConfirmScreen(
        f"Prune every session: keep branch heads and the last {keep} steps of each, delete "
        "older checkpoints and compact the database? Transcripts and recorded replay stay "
        "whole; older steps can no longer be forked.", confirm_label="Prune",
    )):
        return None
    stats = await app.runtime.prune(keep_last=keep)
    await refresh_db_size(app)
    app.notify(
        f"Pruned {stats.checkpoints_deleted} checkpoint(s); database "
        f"{human_bytes(stats.size_before)} → {human_bytes(stats.size_after)}."
    )
    return stats


# ---- front doors: slash commands and the palette ------------------------------------------------
def slash(app: OpenManusApp, name: str, arg: str) -> None:
    if name == "tree":
        open_tree(app)
    elif name == "replay":
        job = partial(live_replay, app) if arg == "live" else partial(replay, app, None)
        app.run_worker(_guarded(app, job), group="history", exclusive=True)
    elif name == "prune":
        try:
            keep = int(arg) if arg else None
        except ValueError:
            app.notify("/prune takes the number of steps to keep per branch head.",
                       severity="error")
            return
        if keep is not None and keep < 1:
            app.notify("/prune: keep at least 1 step per branch head.", severity="error")
            return
        app.run_worker(_guarded(app, partial(prune, app, keep)), group="history")


class HistoryCommands(_Entries):
    """Palette entries for the branch tree, replay and retention."""

    def entries(self, app: OpenManusApp) -> list[Entry]:
        return [
            ("Branches: show the tree", partial(slash, app, "tree", ""),
             "switch, fork, compare and replay steps (Ctrl+T)"),
            ("Replay this branch (recorded)", partial(slash, app, "replay", ""),
             "re-show the stored events: no model or tool call"),
            ("Replay this branch live", partial(slash, app, "replay", "live"),
             "re-run from the first step on a new branch"),
            ("Prune old checkpoints", partial(slash, app, "prune", ""),
             "keep branch heads and recent steps, compact the database"),
        ]
