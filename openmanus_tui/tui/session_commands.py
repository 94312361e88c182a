"""What ``/model``, ``/agent``, ``/export``, ``/edit``, ``/write`` and the help screen do,
kept out of ``app.py``.

Each function takes the running ``OpenManusApp``, reports with notifications (a person's
mistake is one clear line, never a traceback) and returns whether it did something.
A switch made before the first task of a new session applies when that session is created
(``app.status`` carries it to ``create_session``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from openmanus_tui.errors import OpenManusError
from openmanus_tui.runtime import api
from openmanus_tui.tui.commands import EXPORT_FORMATS

if TYPE_CHECKING:
    from openmanus_tui.tui.app import OpenManusApp
    from openmanus_tui.tui.screens.help import KeyHelp


def _busy(app: OpenManusApp, what: str) -> bool:
    if app.run_in_progress():
        app.notify(f"A run is in progress: {what} when it has finished (or stop it with Ctrl+G).",
                   severity="warning")
        return True
    return False


async def switch_model(app: OpenManusApp, spec: str) -> bool:
    """``/model SPEC``: validate the spec, store it on the session and reopen the session with
    it (``runtime.open_session(id, model=SPEC)``); the next run uses it."""
    spec = spec.strip()
    try:
        _, info = api.make_model(app.settings, spec)
    except OpenManusError as exc:
        app.notify(f"Cannot switch the model: {exc.message}", severity="error")
        return False
    if _busy(app, "switch the model"):
        return False
    session = app.session
    if session is not None:
        # The spec as typed: a real model without a key runs as the demo until one is set.
        app.session = await api.set_session_model(session, spec)
    app.status.model = spec
    app.refresh_status()
    app.refresh_memory()  # the window and the token counting follow the model
    app.notify(f"Model: {spec} (context window {info.context_window:,} tokens)"
               + ("" if session else " — for the session your next task starts"))
    if info.offline_reason:
        app.notify(info.offline_reason, severity="warning", timeout=10)
    return True


async def switch_profile(app: OpenManusApp, name: str) -> bool:
    """``/agent NAME``: Manus, Research, Writing or Data analysis, stored on the session."""
    profile = api.resolve_profile(name)
    if profile is None:
        app.notify(f"No agent profile {name!r}; one of: {', '.join(api.PROFILES.values())}.",
                   severity="error")
        return False
    if _busy(app, "switch the agent"):
        return False
    session = app.session
    if session is not None:
        await api.set_session_profile(session, profile)
    app.status.profile = profile
    app.refresh_status()
    app.refresh_memory()  # the system prompt changed
    app.notify(f"Agent: {api.PROFILES[profile]}"
               + ("" if session else " — for the session your next task starts"))
    return True


def parse_export_arg(arg: str) -> tuple[str, str | None]:
    """(format, path or None) from ``[md|json|html] [PATH]``; a lone PATH takes its format from
    the suffix. Raises ``ValueError`` with the line to show."""
    words = arg.split(maxsplit=1)
    fmt, path = "md", None
    if words and words[0].lower() in EXPORT_FORMATS:
        fmt = words[0].lower()
        path = words[1] if len(words) > 1 else None
    elif words:
        path = arg
        suffix = Path(path).suffix.lower().lstrip(".")
        fmt = {"markdown": "md", "htm": "html"}.get(suffix, suffix)
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"/export: unknown format {words[0]!r}; use md, json or html "
                             "(then an optional path)")
    return fmt, path


async def export_session(app: OpenManusApp, arg: str) -> Path | None:
    """``/export [md|json|html] [PATH]``: the same document as ``openmanus export`` (secrets
    redacted), written to PATH or to ``<workspace>/openmanus-<session>.<ext>``."""
    try:
        fmt, path = parse_export_arg(arg)
    except ValueError as exc:
        app.notify(str(exc), severity="error")
        return None
    session = app.session
    if session is None:
        app.notify("Nothing to export yet: send a task first.", severity="warning")
        return None
    doc = await api.export_document(session)
    text = api.render_export(doc, fmt)
    if path is None:
        target = session.workspace / f"openmanus-{session.id}.{fmt}"
    else:
        target = Path(path).expanduser()
        if not target.is_absolute():
            target = session.workspace / target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        app.notify(f"Cannot write {target}: {exc.strerror or exc}", severity="error")
        return None
    app.notify(f"Exported {len(doc.events)} events to {target}", timeout=10)
    return target


EDIT_OPTIONS = ("style", "tone", "audience")  # what restyle takes, as ``write --edit`` does


def parse_edit_arg(arg: str) -> tuple[str, str, dict[str, str]]:
    """(FILE, TYPE, restyle options) of ``FILE TYPE [--style S] [--tone T] [--audience A]``
    (quote a value with spaces). Raises ``ValueError`` with the line to show."""
    import shlex

    from openmanus_tui.runtime import writing

    head, dashes, tail = arg.partition(" --")
    words = head.rsplit(maxsplit=1)
    if len(words) != 2 or words[1] not in writing.EDIT_TYPES:
        raise ValueError(f"/edit FILE TYPE: TYPE is one of {'|'.join(writing.EDIT_TYPES)}")
    try:
        tokens = shlex.split(dashes.strip() + tail)
    except ValueError as exc:
        raise ValueError(f"/edit: {exc}") from None
    options: dict[str, str] = {}
    while tokens:
        flag = tokens.pop(0)
        name = flag.removeprefix("--")
        if not flag.startswith("--") or name not in EDIT_OPTIONS or not tokens:
            raise ValueError(f"/edit: {flag} is not one of --style S, --tone T, --audience A")
        options[name] = tokens.pop(0)
    if options and words[1] != "restyle":
        raise ValueError("/edit: --style, --tone and --audience apply to restyle only")
    return words[0], words[1], options


async def edit_document(app: OpenManusApp, arg: str) -> bool:
    """``/edit FILE TYPE``: one editing pass (``runtime.writing.edit_file``, the same as
    ``openmanus write --edit``) with the session's model; the diff shows in a modal, and only
    Accept writes the file (then the Document tab refreshes). A relative FILE is in the
    session's workspace. ``restyle`` takes ``--style``, ``--tone`` and ``--audience``,
    validated as ``openmanus write`` validates them. Returns whether the file was written."""
    from openmanus_tui.runtime import writing
    from openmanus_tui.tui.screens.edit_diff import EditDiffScreen

    try:
        name, edit_type, options = parse_edit_arg(arg)
        requirements = writing.build_requirements(app.settings, brief="", **options) \
            if edit_type == "restyle" else None
    except ValueError as exc:
        app.notify(str(exc), severity="error")
        return False
    except OpenManusError as exc:
        app.notify(f"/edit: {exc.message}", severity="error")
        return False
    path = Path(name).expanduser()
    session = app.session
    if not path.is_absolute():
        path = (session.workspace if session is not None else Path.cwd()) / path
    spec = session.record.model if session is not None else app.status.model or None
    app.notify(f"Editing {path.name} ({edit_type})…")
    try:
        edited, diff = await writing.edit_file(app.settings, path, edit_type, model_spec=spec,
                                               requirements=requirements)
    except OpenManusError as exc:
        app.notify(f"/edit: {exc.message}", severity="error", timeout=10)
        return False
    accepted = await app.push_screen_wait(EditDiffScreen(f"{edit_type}: {path}", diff))
    if not accepted:
        app.notify(f"Edit rejected: {path.name} unchanged.")
        return False
    try:
        writing.save_text(path, edited)
    except OpenManusError as exc:
        app.notify(f"/edit: {exc.message}", severity="error")
        return False
    app.refresh_document()
    if session is None:  # the tab shows a folder picked without a session: reload it too
        app.query_one("#document").request_update()
    app.notify(f"Wrote {path}")
    return True


async def write_document(app: OpenManusApp, arg: str) -> bool:
    """``/write [BRIEF]``: the write form (``screens/write_form.py``), then the writing graph
    runs in this session like any task (its steps in the stream, the answer naming the file and
    its quality, the Document tab refreshed). The session becomes a Writing session (the
    profile that runs the writing graph; a new session starts as one). Returns whether a run
    started."""
    from openmanus_tui.tui.screens.write_form import WriteFormScreen

    if _busy(app, "write"):
        return False
    session = app.session
    folder = session.workspace if session is not None else Path.cwd()
    result = await app.push_screen_wait(WriteFormScreen(app.settings, folder, brief=arg))
    if result is None:
        return False
    if _busy(app, "write"):  # a queued task may have started while the form was open
        return False
    if session is None:
        app.status.profile = "writing"
    elif session.record.profile != "writing" and not await switch_profile(app, "writing"):
        return False
    app.run_task(result["brief"], writing=result["options"])
    return True


def key_help(app: OpenManusApp) -> list[KeyHelp]:
    """Every binding with an id, from the app and the widgets that have their own keys."""
    from openmanus_tui.tui.screens.approval import ApprovalScreen
    from openmanus_tui.tui.screens.help import KeyHelp, bindings_help
    from openmanus_tui.tui.screens.write_form import WriteFormScreen
    from openmanus_tui.tui.widgets.memory import MemoryPane
    from openmanus_tui.tui.widgets.sidebar import SessionList

    owners: list[tuple[str, Any]] = [
        ("anywhere", type(app).BINDINGS),
        ("sessions list", SessionList.BINDINGS),
        ("memory tab", MemoryPane.BINDINGS),
        ("approval dialog", ApprovalScreen.BINDINGS),
        ("write form", WriteFormScreen.BINDINGS),
    ]
    keymap = app.settings.ui.keymap if app.settings is not None else {}
    keys = bindings_help(owners, keymap, app.get_key_display)
    keys.append(KeyHelp("^p", "command palette: sessions, models, agents, modes, themes",
                        "", "anywhere"))
    return keys
