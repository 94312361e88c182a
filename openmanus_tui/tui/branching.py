"""What the branch tree's choices do in the workbench: switch, fork and run, compare, replay,
prune, and the database size. The work itself is the core's (``runtime/history.py``,
``runtime/replay.py``, ``Runtime.prune``); this module sequences it with the app's screens.

Each action runs in an app worker (not the tree screen's: the screen closes first), asks before
overwriting files changed outside the agent (``WorkspaceChanged``), reloads the stream with the
branch's recorded transcript, and starts new branches through the app's own run worker
(``run_task(message)`` for an edited message, ``run_task(None)`` to continue from the head).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from openmanus_tui.errors import OpenManusError
from openmanus_tui.tui.commands import Entry, _Entries

if TYPE_CHECKING:
    from openmanus_tui import events as ev
    from openmanus_tui.runtime.views import BranchTranscript
    from openmanus_tui.tui.app import OpenManusApp
    from openmanus_tui.tui.transcript import Transcript

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
    from openmanus_tui.tui.screens.dialogs import ConfirmScreen

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
def transcript_from(branch: BranchTranscript) -> Transcript:
    """Fold a branch's transcript (``runtime.api.branch_transcript``) into the stream's
    model, reading it as the core says: the run state, and calls left without a result shown
    interrupted rather than running."""
    from openmanus_tui.tui.transcript import Transcript

    transcript = Transcript()
    for event in branch.events:
        transcript.apply(event)
    transcript.run_state = branch.state
    for call_id in branch.interrupted_calls:
        record = transcript.calls.get(call_id)
        if record is not None:
            record.status = "interrupted"
    return transcript


async def show_events(app: OpenManusApp, events: list[ev.Event], *, replay: bool = False) -> None:
    """Replace the stream with ``events``; ``replay``: part of a replay, so a run cut short
    by the replay's position is still running, not interrupted."""
    from openmanus_tui.runtime.views import transcript_of

    await app._show_transcript(transcript_from(transcript_of(events, live=replay)))


async def show_branch(app: OpenManusApp, head: str | None) -> None:
    """Reload the stream with the recorded transcript of the branch ending at ``head``
    (None: the session's current branch)."""
    from openmanus_tui.runtime import api

    if app.session is None:
        return
    await app._show_transcript(transcript_from(await api.branch_transcript(app.session, head)))


# ---- the tree ------------------------------------------------------------------------------------
def open_tree(app: OpenManusApp) -> None:
    app.run_worker(_open_tree(app), group="history", exclusive=True)


async def _open_tree(app: OpenManusApp) -> None:
    from openmanus_tui.tui.screens.history import HistoryScreen
    from openmanus_tui.tui.widgets.sidebar import title_of

    session = _session_or_warn(app, idle=False)
    if session is None:
        return
    from openmanus_tui.runtime import api

    size = await api.database_size(app.runtime)
    title = title_of(session.record, session.id)
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


async def retry(app: OpenManusApp, checkpoint_id: str) -> bool:
    """Re-run the step that produced ``checkpoint_id`` on a new branch (live replay from there);
    on a user message, re-ask the same message."""
    from openmanus_tui.runtime import api

    session = _session_or_warn(app)
    if session is None:
        return False
    node = (await session.history.tree()).nodes[checkpoint_id]
    if node.kind == "user":
        text = await api.user_message_at(session, checkpoint_id)
        return await _prepare_and_run(
            app, lambda force: session.history.fork(checkpoint_id, message=text, force=force),
            message=text,
        )
    return await _prepare_and_run(
        app, lambda force: session.history.fork(checkpoint_id, force=force), message=None
    )


async def edit_message(app: OpenManusApp, checkpoint_id: str, text: str | None = None) -> bool:
    """Ask for a new version of the user message above ``checkpoint_id`` and re-run it."""
    from openmanus_tui.runtime import api
    from openmanus_tui.tui.screens.dialogs import TextPromptScreen

    session = _session_or_warn(app)
    if session is None:
        return False
    if text is None:
        old = await api.user_message_at(session, checkpoint_id)
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
    from openmanus_tui.runtime import api
    from openmanus_tui.tui.screens.args_editor import ArgsEditScreen

    session = _session_or_warn(app)
    if session is None:
        return False
    if new_args is None:
        calls = await api.tool_calls_at(session, checkpoint_id)
        if not calls:
            app.notify("There is no tool call at this step.", severity="warning")
            return False
        new_args = {}
        for call in calls:
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
    from openmanus_tui.runtime import api

    session = _session_or_warn(app)
    if session is None:
        return False
    try:
        first = await api.live_replay_start(session, head)
    except OpenManusError as exc:
        app.notify(exc.message[:1].upper() + exc.message[1:] + ".", severity="warning")
        return False
    return await retry(app, first)


# ---- compare and replay -------------------------------------------------------------------------
async def compare(app: OpenManusApp, head_a: str | None, head_b: str) -> None:
    from openmanus_tui.tui.screens.compare import CompareScreen

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
    from openmanus_tui.tui.widgets.replay import ReplayBar

    session = _session_or_warn(app)
    if session is None:
        return
    tree = await session.history.tree()
    if not tree.nodes:
        app.notify("Nothing recorded to replay yet.", severity="warning")
        return
    from openmanus_tui.runtime import api

    checkpoint_id = checkpoint_id or tree.current
    assert checkpoint_id is not None
    head = tree.branch_of(checkpoint_id)
    events = await api.branch_events(session, head)
    start_step = tree.nodes[checkpoint_id].step if checkpoint_id != head else None
    await ReplayBar.open(app, events, title=tree.nodes[head].label, head=head,
                         start_step=start_step)


# ---- retention --------------------------------------------------------------------------------
async def refresh_db_size(app: OpenManusApp) -> None:
    from openmanus_tui.runtime import api
    from openmanus_tui.tui.widgets.sidebar import Sidebar

    if app.runtime is not None:
        app._q(Sidebar).show_db_size(human_bytes(await api.database_size(app.runtime)))


async def prune(app: OpenManusApp, keep_last: int | None = None, *, ask: bool = True) -> Any:
    """``Runtime.prune`` after a confirmation; reports the sizes before and after."""
    from openmanus_tui.tui.screens.dialogs import ConfirmScreen

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
