"""The workbench app: layout, session handling, the run worker, approvals and the status line.

Start-up is ordered for a fast first frame: the app can start without its settings (the
``openmanus`` command does), paints the workbench in the theme it guesses from the remembered
choice (``paths.py``, ``tui/ui_state.py``), and only then mounts the side panel's tabs
(``tui/widgets/side_panel.py``), loads the settings (pydantic) and opens the runtime (the agent
stack takes seconds to import), in threads so that keys are handled meanwhile; a broken config file
ends the app with its one-line error. It runs each task in an exclusive async worker, and
receives the runtime's events through ``on_event``: the stream view folds them into its
transcript, the status line and the side panes update from the same events. Approvals come back
through ``push_screen_wait`` in the worker.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer

from openmanus_tui.launch import after_first_frame, hold_collector, settle_after_startup
from openmanus_tui.paths import DEFAULT_THEME
from openmanus_tui.termsafe import safe_event, sanitize
from openmanus_tui.tui import terminal_guard
from openmanus_tui.tui.themes import load_themes, shipped_theme_dir, user_theme_dir
from openmanus_tui.tui.widgets.prompt import PromptBar, PromptInput
from openmanus_tui.tui.widgets.queue import QueueAction, QueuedMessages
from openmanus_tui.tui.widgets.resume_banner import ResumeChosen
from openmanus_tui.tui.widgets.sidebar import SessionAction, Sidebar
from openmanus_tui.tui.widgets.status import StatusInfo, StatusLine
from openmanus_tui.tui.widgets.stream import StreamView
from openmanus_tui.tui.widgets.welcome import ExampleChosen

if TYPE_CHECKING:
    from textual.command import Provider

    from openmanus_tui import events as ev
    from openmanus_tui.config import Settings
    from openmanus_tui.tui.transcript import Transcript
    from openmanus_tui.tui.widgets.blocks import BlockSelected, CitationClicked

# Imported when first used, not on the way to the first frame: the slash commands and the
# palette's providers (``tui/commands.py``, ``tui/branching.py``: they bring the runtime's API
# and its views), the transcript model and the stream's block widgets.

# Below these widths the side panels start hidden (80×24 must stay usable).
PANEL_MIN_WIDTH = 120
SIDEBAR_MIN_WIDTH = 100
FALLBACK_THEME = "textual-dark"
QUIT_WINDOW_S = 2.0  # a second Ctrl+C within this many seconds quits
SOURCE_TOOLS = {"web_fetch", "search_info"}  # their results change the Sources tab
# Slash commands that work before the settings are loaded (the first second after start).
NO_SETTINGS_NEEDED = {"theme", "help", "expand", "quit"}


def _empty_transcript() -> Transcript:
    from openmanus_tui.tui.transcript import Transcript

    return Transcript()


def _lazy_provider(module: str, name: str) -> Callable[[], type[Provider]]:
    def load() -> type[Provider]:
        return getattr(importlib.import_module(f"openmanus_tui.tui.{module}"), name)

    load.__qualname__ = f"{module}.{name}"
    return load


class WorkbenchScreen(Screen):
    """The main screen. It focuses the prompt as soon as it is composed (``AUTO_FOCUS``; the
    app's ``"*"`` gave the focus to the stream first, then ``on_mount`` moved it to the prompt:
    two re-stylings of the stream and the welcome before the first frame). Other screens keep
    Textual's rule (the first focusable widget)."""

    AUTO_FOCUS = "#prompt"


class OpenManusApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "OpenManus"
    # The palette's providers, imported when it first opens (Textual calls each to get it).
    COMMANDS = App.COMMANDS | {
        _lazy_provider("commands", name) for name in (
            "ActionCommands", "SessionCommands", "ModelCommands", "ProfileCommands",
            "ApprovalCommands", "ThemeCommands")
    } | {_lazy_provider("branching", "HistoryCommands")}
    BINDINGS = [
        Binding("ctrl+n", "new_session", "New", id="app.new_session"),
        Binding("ctrl+o", "toggle_expand", "Expand", id="app.expand"),
        Binding("ctrl+b", "toggle_sidebar", "Sessions", id="app.sidebar"),
        Binding("ctrl+r", "toggle_panel", "Panel", id="app.panel"),
        Binding("ctrl+g", "stop_run", "Stop", id="app.stop"),
        # Esc stops a run when nothing closer takes it (a menu, a dialog). Ctrl+C stops a run;
        # idle (or just after stopping one), pressed twice within QUIT_WINDOW_S it quits;
        # with text selected in the focused field it copies.
        Binding("escape", "interrupt", "Stop the run", id="app.interrupt", show=False),
        Binding("ctrl+c", "ctrl_c", "Stop the run; twice: quit", id="app.ctrl_c", show=False,
                priority=True),
        Binding("ctrl+t", "history", "Branches", id="app.tree", show=False),
        Binding("ctrl+l", "focus_prompt", "Prompt", id="app.prompt", show=False),
        Binding("f1", "help", "Help", id="app.help"),
        Binding("f2", "rules", "Rules", id="app.rules", show=False),
    ]

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        session_id: str | None = None,
        resume_last: bool = False,
        runtime: Any = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        extra_theme_dirs: list | None = None,
        blink: bool = True,
        overrides: dict[str, Any] | None = None,
        task: str | None = None,
    ) -> None:
        super().__init__()
        terminal_guard.install()  # no control character in any widget's text reaches the terminal
        # Tests and screenshots turn cursor blinking off so that frames are deterministic.
        self.blink = blink
        # None until ``_boot`` has loaded it (after the first frame) when not given here.
        self.settings: Settings = settings  # type: ignore[assignment]
        self.runtime = runtime
        self.session: Any = None
        self.initial_session_id = session_id
        self.resume_last = resume_last
        self.clock = clock
        self.wall_clock = wall_clock
        self.session_records: list[Any] = []
        self.ready = asyncio.Event()
        # Settings overrides from the command line (``openmanus --workspace/--model/--approval``),
        # applied when the app loads the settings itself.
        self._overrides = overrides
        self.status = StatusInfo()
        self._default_model = ""  # the model a new session runs without a /model switch
        self._welcome_guess: Any = None  # the facts a start with the same inputs showed
        self._fingerprint = ""
        if settings is not None:
            self._status_from_settings()
        else:
            self._guess_welcome()
        self._starting = True  # until the runtime is open (``_boot``)
        # Typed before the runtime was open, or given on the command line: run once it is.
        self._pending_task: str | None = task
        self.replay_state: str | None = None  # "replay paused" etc. while a replay bar is open
        self._theme_dirs = [shipped_theme_dir(), user_theme_dir(), *(extra_theme_dirs or [])]
        self._theme_names: list[str] = []
        self._run_started_at: float | None = None
        self._last_elapsed = 0.0  # the last run's duration, shown once it has ended
        self.queued: list[str] = []  # follow-ups typed during a run (``tui/widgets/queue.py``)
        self._ctrl_c_at: float | None = None
        self._tools_dirty = False
        self._panel_pref: bool | None = None
        self._sidebar_pref: bool | None = None
        self._window_cache: dict[str, int] = {}
        self._widgets_by_query: dict[tuple[Any, Any], Any] = {}
        self._loop_thread = threading.get_ident()
        self._owns_runtime = runtime is None
        self._theme_errors: list[str] = []
        self._theme_missing: str | None = None
        self._theme_memory: Any = None
        self.config_reloader: Any = None  # once the runtime is open (tui/config_watch.py)
        self._select_startup_theme()

    # ---- layout -------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        return WorkbenchScreen(id="_default")

    def compose(self) -> ComposeResult:
        stream = StreamView(id="stream")
        stream.placeholder_factory = self._make_welcome
        with Horizontal(id="main"):
            yield Sidebar(id="sidebar")
            with Vertical(id="center"):
                yield stream
                # QueuedMessages (above the prompt) is mounted just after the first frame.
                yield PromptBar(self._complete, id="prompt-bar")
            # The tabs are mounted here just after the first frame (``_mount_panel``).
            yield Vertical(id="panel-slot")
        yield StatusLine(id="status")
        yield Footer()

    def notify(self, message: str, *, title: str = "", **kwargs: Any) -> None:
        """Every toast (a widget's ``notify`` comes here too) shows control sequences in error
        text, titles or names as visible escapes, and is not read as markup unless asked: a
        message quoting untrusted text could otherwise carry an ``[@click=…]`` action link."""
        kwargs.setdefault("markup", False)
        super().notify(sanitize(str(message), keep_sgr=False),
                       title=sanitize(title, keep_sgr=False), **kwargs)

    def _has_main_screen(self) -> bool:
        """False while the app is closing (events may still arrive from a cancelled run)."""
        if not self.is_running or not self.screen_stack:
            return False
        try:
            return bool(self._q(StatusLine).is_attached)  # False once exit() was called
        except NoMatches:
            return False

    def _q(self, selector: Any, expect_type: Any = None) -> Any:
        """A widget of the main screen (not the active one: a modal may be on top during a
        run). Looked up once: events arrive hundreds of times a second, and a query walks the
        whole DOM — per streamed token, that was most of the event loop's time."""
        key = (selector, expect_type)
        widget = self._widgets_by_query.get(key)
        if widget is not None and widget.is_attached:
            return widget
        main = self.screen_stack[0]
        widget = main.query_one(selector) if expect_type is None else main.query_one(
            selector, expect_type)
        self._widgets_by_query[key] = widget
        return widget

    def on_mount(self) -> None:
        self._loop_thread = threading.get_ident()
        self._event_loop = asyncio.get_running_loop()
        if self.settings is not None:
            self._apply_settings()
        self._apply_width(self.size.width)
        self._q(PromptInput).focus()
        self.set_interval(1.0, self._tick, name="status-tick")
        self.refresh_status()
        # Once the first frame is on screen: mount the side panel, then load the settings and
        # open the runtime (importing in a thread still holds the GIL most of the time and
        # would delay that frame).
        self.call_after_refresh(self._boot)

    async def _mount_panel(self) -> None:
        """The Inspector / Memory / Tools tabs (``tui/widgets/side_panel.py``) go into their slot
        after the first frame, with the sidebar's contents, the prompt's completion menu and the
        queued messages' strip, and
        are painted before ``_boot`` goes on: the settings are imported in a thread that would
        otherwise compete with that frame for the GIL."""
        from openmanus_tui.tui.widgets.side_panel import side_panel

        prompt_bar = self._q(PromptBar)
        prompt_bar.ensure_menu()
        self._q("#center").mount(QueuedMessages(), before=prompt_bar)
        self._q(Sidebar).fill()
        await self._q("#panel-slot").mount(side_panel())
        painted = asyncio.Event()
        self.call_after_refresh(painted.set)
        await painted.wait()

    def on_resize(self, event: Any) -> None:
        self._apply_width(event.size.width)
        if self._has_main_screen():
            self.refresh_status(keep_state=True)

    def _apply_width(self, width: int) -> None:
        panel = self._panel_pref if self._panel_pref is not None else width >= PANEL_MIN_WIDTH
        sidebar = (
            self._sidebar_pref if self._sidebar_pref is not None else width >= SIDEBAR_MIN_WIDTH
        )
        self._q("#panel-slot").display = panel
        self._q("#sidebar").display = sidebar
        self._keep_focus_visible()

    def _keep_focus_visible(self) -> None:
        """Focus left inside a pane that was just hidden would keep taking keys (the sidebar's
        ``n`` replaced the conversation while one typed): give it to the prompt."""
        main = self.screen_stack[0] if self.screen_stack else None
        focused = main.focused if main is not None else None
        if focused is None:
            return
        hidden = [self._q("#panel-slot"), self._q("#sidebar")]
        if any(not pane.display and pane in focused.ancestors_with_self for pane in hidden):
            self._q(PromptInput).focus()

    async def on_unmount(self) -> None:
        if self.config_reloader is not None:
            from openmanus_tui.tui.config_watch import stop_config_watch

            await stop_config_watch(self)
        # Stop a run before the database closes under it.
        run_workers = [w for w in self.workers if w.group == "run" and w.is_running]
        for worker in run_workers:
            worker.cancel()
        for worker in run_workers:
            try:
                await asyncio.wait_for(worker.wait(), timeout=5)
            except Exception:  # cancelled or failed: either way it no longer uses the db
                pass
        if self._owns_runtime and self.runtime is not None:
            await self.runtime.close()

    # ---- themes -------------------------------------------------------------------------------
    def _select_startup_theme(self) -> None:
        """Register the theme files and set the start-up theme before the app runs.

        Setting ``App.theme`` the usual way (its watcher) re-parses and re-applies every
        stylesheet — a third of the time to the first frame. Before the first parse only the
        reactive value, the classes its watcher would set and the CSS variables are needed.
        Without settings yet, the theme is a guess (the remembered choice) that ``_boot``
        confirms or corrects."""
        from openmanus_tui.tui.ui_state import guess_startup_theme

        themes, self._theme_errors = load_themes(self._theme_dirs)
        for theme in themes.values():
            self.register_theme(theme)
        self._theme_names = sorted(themes)
        if self.settings is not None:
            wanted = self._startup_theme()
        else:
            wanted = guess_startup_theme()
            if wanted not in self.available_themes:
                wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else FALLBACK_THEME
        self.set_reactive(App.theme, wanted)
        dark = self.current_theme.dark
        self.update_classes({f"-theme-{wanted}": True, "-dark-mode": dark,
                             "-light-mode": not dark}, update=False)
        self._refresh_truecolor_filter(self.ansi_theme)  # pinned Textual: see _watch_theme
        self.stylesheet.set_variables(self.get_css_variables())  # nothing is parsed yet

    def _startup_theme(self) -> str:
        """The theme the settings and the remembered choice ask for (a known one)."""
        from openmanus_tui.tui.ui_state import ThemeMemory

        self._theme_memory = ThemeMemory(self.settings)
        wanted = self._theme_memory.startup_theme()  # remembered unless the config changed
        if wanted not in self.available_themes:
            self._theme_missing, wanted = wanted, FALLBACK_THEME
        return wanted

    def _apply_settings(self) -> None:
        """What needs the settings: theme problems, the keymap, and remembering switches."""
        if self._theme_errors:
            self.notify("Skipped broken theme files:\n" + "\n".join(self._theme_errors),
                        severity="warning", timeout=10)
        if self._theme_missing:
            self.notify(f"Theme {self._theme_missing!r} not found; using {FALLBACK_THEME}.",
                        severity="warning")
        if self.settings.ui.keymap:
            self.set_keymap(self.settings.ui.keymap)
        # Every later switch (/theme, the palette) is remembered for the next start.
        self.theme_changed_signal.subscribe(
            self, lambda theme: self._theme_memory.remember(theme.name)
        )

    async def _load_settings(self) -> bool:
        """Load the settings after the first frame; False (and the app ends with the error
        printed, exit status 2) when the configuration is broken."""
        from openmanus_tui.errors import ConfigError

        try:
            config = await asyncio.to_thread(importlib.import_module, "openmanus_tui.config")
            self.settings = await asyncio.to_thread(config.load_settings, self._overrides)
        except ConfigError as exc:
            from rich.text import Text  # plain text: a path or key may look like markup

            self.exit(return_code=2, message=Text(f"openmanus: {exc}"
                                                  + (f"\n  {exc.hint}" if exc.hint else "")))
            return False
        wanted = self._startup_theme()
        if wanted != self.theme:
            self.theme = wanted  # the guess was wrong (the config changed): re-style once
        await self._check_workspace()
        self._apply_settings()
        self._status_from_settings()
        self._refresh_welcome()
        self.refresh_status()
        self._remember_welcome()
        return True

    def _remember_welcome(self) -> None:
        """The facts for the next start with the same inputs (see ``_guess_welcome``)."""
        from openmanus_tui.tui.ui_state import remember_welcome
        from openmanus_tui.tui.widgets.welcome import WelcomeInfo

        if self._fingerprint:
            info = WelcomeInfo.of(self.settings).as_dict()
            self.run_worker(asyncio.to_thread(remember_welcome, self.settings,
                                              self._fingerprint, info), group="ui-state")

    async def _check_workspace(self) -> None:
        """The current folder is the default workspace; when it holds openmanus's own state
        (started in the home folder, say), new sessions get a folder of their own instead,
        and the person is told why. A ``--workspace`` named on purpose was checked already."""
        from openmanus_tui.errors import OpenManusError
        from openmanus_tui.runtime.api import ensure_workspace_allowed

        assert self.settings is not None
        workspace = self.settings.sandbox.workspace
        if workspace is None:
            return
        try:
            await asyncio.to_thread(ensure_workspace_allowed, workspace, self.settings)
        except OpenManusError as exc:
            self.settings.sandbox.workspace = None
            self.notify(f"{exc.message}.\nEach new session works in a folder of its own; start "
                        "openmanus in a project folder, or give --workspace DIR.",
                        severity="warning", timeout=15)

    def theme_names(self) -> list[str]:
        return self._theme_names + sorted(n for n in self.available_themes
                                          if n not in self._theme_names)

    def set_theme(self, name: str) -> bool:
        if name not in self.available_themes:
            self.notify(f"No theme named {name!r}. Try /theme to list them.", severity="error")
            return False
        self.theme = name
        return True

    # ---- boot and sessions -----------------------------------------------------------------------
    @work(group="boot", exclusive=True)
    async def _boot(self) -> None:
        from openmanus_tui.errors import OpenManusError

        after_first_frame()  # the collector was held for the first frame (``run_tui``)
        try:
            await self._mount_panel()
            if self.settings is None and not await self._load_settings():
                return
            if self.runtime is None:
                # The agent stack takes seconds to import: in a thread, so that keys are
                # handled meanwhile.
                module = await asyncio.to_thread(
                    importlib.import_module, "openmanus_tui.runtime.session"
                )
                self.runtime = await module.Runtime.open(self.settings)
            settle_after_startup()
            # Hot reload: config file edits apply without a restart (tui/config_watch.py).
            from openmanus_tui.tui.config_watch import start_config_watch

            self.config_reloader = start_config_watch(self)
            self._probe_sandbox()
            self.refresh_breakers()  # an endpoint another run found dead is still open
            self._q("#tools-pane").refresh_tools(self.runtime)
            for error in getattr(self.runtime.registry, "load_errors", []):
                self.notify(error, severity="warning")
            if self.resume_last and self.initial_session_id is None:
                newest = await self.runtime.list_sessions()
                self.initial_session_id = newest[0].id if newest else None
            self._starting = False
            if self.initial_session_id:
                await self.open_session(self.initial_session_id)
            else:
                await self.refresh_sessions()
                await self._show_transcript(_empty_transcript())
            if self._pending_task is not None:
                task, self._pending_task = self._pending_task, None
                self.run_task(task)
        except OpenManusError as exc:
            self.notify(f"{exc.message}" + (f"\n{exc.hint}" if exc.hint else ""),
                        severity="error", timeout=30)
        finally:
            if self._starting and self.settings is not None:
                self._starting = False  # opening the runtime failed: say so, not "starting"
                self.refresh_status()
            self.ready.set()

    async def refresh_sessions(self) -> None:
        if self.runtime is None:
            return
        self.session_records = await self.runtime.list_sessions()
        if not self._has_main_screen():
            return  # the app closed during the read (a run's last refresh)
        self._q(Sidebar).show(
            self.session_records, self.session.id if self.session else None, self.wall_clock()
        )
        from openmanus_tui.tui import branching

        await branching.refresh_db_size(self)

    def run_in_progress(self) -> bool:
        return any(w.group == "run" and w.is_running for w in self.workers)

    async def open_session(self, session_id: str) -> None:
        from openmanus_tui.errors import OpenManusError

        if self.run_in_progress():
            self.notify("A run is in progress: stop it (Ctrl+G) before switching.",
                        severity="warning")
            return
        try:
            session = await self.runtime.open_session(session_id)
        except OpenManusError as exc:
            self.notify(exc.message, severity="error")
            return
        from openmanus_tui.runtime import api
        from openmanus_tui.tui import branching

        self.session = session
        self.refresh_document()
        # The current branch, read as every front end reads it: a run stored mid-way (the
        # process ended early) is interrupted, and so are its calls without a result.
        transcript = branching.transcript_from(await api.branch_transcript(session))
        self.status.model = session.record.model
        self.status.profile = session.record.profile
        self.status.isolation = transcript.isolation or self.status.isolation
        self.title = f"OpenManus — {session.record.title or session.id}"
        await self._show_transcript(transcript)
        await self.refresh_sessions()
        self._probe_isolation()

    def open_session_by_id(self, session_id: str) -> None:
        self.run_worker(self.open_session(session_id), group="open", exclusive=True)

    @work(group="isolation", exclusive=True)
    async def _probe_isolation(self) -> None:
        session = self.session
        if session is None:
            return
        # Probing the sandbox may start subprocesses: keep it off the event loop.
        level = await asyncio.to_thread(session.isolation)
        if session is self.session:
            self.status.isolation = level
            self.refresh_status()

    @work(group="sandbox-probe", exclusive=True)
    async def _probe_sandbox(self) -> None:
        """The isolation a new session will get, for the status line before any session
        exists (a session's own level replaces it, ``_probe_isolation``)."""
        from openmanus_tui.tui.widgets.welcome import sandbox_level

        level = await asyncio.to_thread(sandbox_level, self.settings)
        if self.session is None and self._has_main_screen():
            self.status.isolation = level
            self.refresh_status()

    async def _show_transcript(self, transcript: Transcript) -> None:
        if transcript.run_state == "interrupted":
            transcript.mark_interrupted()  # calls shown "running" ended with the process
        self._last_elapsed = transcript.last_run_seconds
        stream = self._q(StreamView)
        await stream.show(transcript)
        self._schedule_resume_banner()
        self._sync_totals(transcript)
        self.refresh_status()
        self.refresh_memory()
        self.refresh_sources()

    def _status_from_settings(self) -> None:
        """The status line of a new session: the model that will really run (the offline demo
        when no key is configured), the profile and the approval mode."""
        from openmanus_tui.tui.widgets.welcome import model_in_use

        self._default_model = model_in_use(self.settings)[0]
        self.status.model = self._default_model
        self.status.profile = self.settings.agent.profile
        self.status.approval = self.settings.approval.mode

    def _guess_welcome(self) -> None:
        """Before the settings are read: the welcome facts and status line of the last start
        whose inputs were the same (``ui_state.settings_fingerprint``), so that the first frame
        already names the model in use. ``_load_settings`` confirms them."""
        from openmanus_tui.tui.ui_state import remembered_welcome, settings_fingerprint
        from openmanus_tui.tui.widgets.welcome import WelcomeInfo

        self._fingerprint = settings_fingerprint(self._overrides)
        guess = WelcomeInfo.from_dict(remembered_welcome(self._fingerprint))
        if guess is not None:
            self._welcome_guess = guess
            self.status.model = guess.model
            self.status.profile = guess.profile
            self.status.approval = guess.approval

    def _make_welcome(self) -> Any:
        from openmanus_tui.tui.widgets.welcome import Welcome, WelcomeInfo

        if self.settings is None and self._welcome_guess is not None:
            return Welcome(self._welcome_guess)
        return Welcome(WelcomeInfo.of(self.settings))

    def _refresh_welcome(self) -> None:
        from openmanus_tui.tui.widgets.welcome import Welcome, WelcomeInfo

        if self._has_main_screen():
            for welcome in self._q(StreamView).query(Welcome):
                welcome.update_info(WelcomeInfo.of(self.settings))

    @on(ExampleChosen)
    def _on_example(self, message: ExampleChosen) -> None:
        self._q(PromptInput).focus()
        self._on_prompt(PromptInput.Submitted(message.text))

    def starting_up(self) -> bool:
        """True (and says so) while the settings are not loaded yet: the first second."""
        if self.settings is None:
            self.notify("Still starting up…", severity="warning")
            return True
        return False

    def action_new_session(self) -> None:
        if self.starting_up():
            return
        if self.run_in_progress():
            self.notify("A run is in progress: stop it (Ctrl+G) first.", severity="warning")
            return
        # Created in the database when the first task is sent, so idle clicks leave no trace.
        self.session = None
        self.title = "OpenManus — new session"
        self._status_from_settings()
        self.run_worker(self._show_transcript(_empty_transcript()), group="open", exclusive=True)
        self.run_worker(self.refresh_sessions(), group="sessions")
        self.action_focus_prompt()

    # ---- resuming an interrupted run (tui/widgets/resume_banner.py) ------------------------
    def _schedule_resume_banner(self) -> None:
        self.run_worker(self._sync_resume_banner(), group="resume-banner", exclusive=True)

    async def _sync_resume_banner(self) -> None:
        """Show the Resume banner while the open session has work left and nothing runs."""
        from openmanus_tui.tui.widgets.resume_banner import ResumeBanner, banner_text

        if not self._has_main_screen():
            return
        center = self._q("#center")
        text = None
        session = self.session
        if not (session is None or self.runtime is None or self.run_in_progress()
                or self.replay_state):
            waiting, unfinished = await session.pending()
            if not self._has_main_screen():
                return  # the app closed while the store was read
            if (waiting or unfinished) and session is self.session and not self.run_in_progress():
                stopped = self._q(StreamView).transcript.run_state == "cancelled"
                text = banner_text(waiting, stopped)
        shown = list(center.query(ResumeBanner))
        if shown and text is not None and shown[0].text == text:
            return  # already there: replacing it would move the button under a click
        for old in shown:
            await old.remove()
        if text is not None:
            await center.mount(ResumeBanner(text), before=self._q(StreamView))

    def action_resume(self, session_id: str | None = None) -> None:
        """Continue the open session's interrupted run (or open ``session_id`` first)."""
        if self.starting_up():
            return
        if self.run_in_progress():
            self.notify("The agent is already working.", severity="warning")
            return
        if session_id is None and self.session is None:
            self.notify("No session to resume: open one from the sessions list (Ctrl+B).",
                        severity="warning")
            return
        self.run_worker(self._resume(session_id), group="resume", exclusive=True)

    async def _resume(self, session_id: str | None) -> None:
        if session_id is not None and (self.session is None or self.session.id != session_id):
            await self.open_session(session_id)
            if self.session is None or self.session.id != session_id:
                return  # could not open it (said so)
        waiting, unfinished = await self.session.pending()
        if not (waiting or unfinished):
            self.notify("Nothing to resume: this session's last run finished.")
            return
        self.run_task(None)

    @on(ResumeChosen)
    async def _on_resume_chosen(self, message: ResumeChosen) -> None:
        from openmanus_tui.tui.widgets.resume_banner import ResumeBanner

        if message.resume:
            self.action_resume()
        else:
            for banner in list(self._q("#center").query(ResumeBanner)):
                await banner.remove()
            self.action_focus_prompt()

    def on_worker_state_changed(self, event: Any) -> None:
        from textual.worker import WorkerState

        if event.worker.group == "run" and event.state in (
            WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED,
        ):
            self._after_run(stopped=event.state == WorkerState.CANCELLED)

    def _after_run(self, stopped: bool = False) -> None:
        """A run ended: send the next queued message, or (stopped by the person: queued
        messages are not sent) give them back to the prompt; offer Resume if work is left."""
        if not self._has_main_screen():
            return
        if self.queued and stopped:
            prompt = self._q(PromptInput)
            prompt.load_text("\n\n".join([prompt.text.strip(), *self.queued]).strip())
            prompt.move_cursor(prompt.document.end)
            self.queued = []
            self._show_queue()
            self.notify("Queued messages were not sent (the run was stopped): they are back "
                        "in the prompt.")
        elif self.queued:
            text = self.queued.pop(0)
            self._show_queue()
            self.run_task(text)
            return
        self._schedule_resume_banner()

    def _show_queue(self) -> None:
        self.run_worker(self._q(QueuedMessages).show(self.queued), group="queue",
                        exclusive=True)

    @on(QueueAction)
    def _on_queue_action(self, message: QueueAction) -> None:
        if not 0 <= message.index < len(self.queued):
            return
        text = self.queued.pop(message.index)
        if message.action == "edit":
            prompt = self._q(PromptInput)
            prompt.load_text("\n\n".join([prompt.text.strip(), text]).strip())
            prompt.move_cursor(prompt.document.end)
            prompt.focus()
        self._show_queue()

    def action_interrupt(self) -> None:
        if self.run_in_progress():
            self.action_stop_run()

    def action_ctrl_c(self) -> None:
        focused = self.focused
        if getattr(focused, "selected_text", "") and hasattr(focused, "action_copy"):
            focused.action_copy()  # the editor's meaning wins when text is selected
            return
        now = self.clock()
        if self.run_in_progress():
            self.action_stop_run()
            self._ctrl_c_at = now
            return
        if self._ctrl_c_at is not None and now - self._ctrl_c_at <= QUIT_WINDOW_S:
            self.exit(0)
            return
        self._ctrl_c_at = now
        self.notify("Press Ctrl+C again to quit.", timeout=QUIT_WINDOW_S)

    @on(SessionAction)
    async def _on_session_action(self, message: SessionAction) -> None:
        if message.action == "resume" and message.session_id:
            self.action_resume(message.session_id)
        if message.action == "new":
            self.action_new_session()
        elif message.action == "open" and message.session_id:
            await self.open_session(message.session_id)
        elif message.action == "rename" and message.session_id:
            self._rename(message.session_id)
        elif message.action == "delete" and message.session_id:
            self._delete(message.session_id)

    @work(group="dialog")
    async def _rename(self, session_id: str, title: str | None = None) -> None:
        from openmanus_tui.tui.screens.dialogs import TextPromptScreen

        record = next((r for r in self.session_records if r.id == session_id), None)
        if title is None:
            title = await self.push_screen_wait(
                TextPromptScreen("Rename session", record.title if record else "")
            )
        from openmanus_tui.errors import OpenManusError

        if not title or not title.strip():
            return
        try:
            renamed = await self.runtime.rename_session(session_id, title)
        except OpenManusError as exc:  # deleted meanwhile (another process)
            self.notify(exc.message, severity="error")
            return
        if self.session is not None and self.session.id == renamed.id:
            self.session.record.title = renamed.title
            self.title = f"OpenManus — {renamed.title}"
        await self.refresh_sessions()

    @work(group="dialog")
    async def _delete(self, session_id: str) -> None:
        from openmanus_tui.errors import OpenManusError
        from openmanus_tui.tui.screens.dialogs import ConfirmScreen

        record = next((r for r in self.session_records if r.id == session_id), None)
        name = (record.title if record else "") or session_id
        if self.run_in_progress() and self.session is not None and self.session.id == session_id:
            self.notify("That session is running.", severity="warning")
            return
        if not await self.push_screen_wait(
            ConfirmScreen(f"Delete session “{name}” and its history? This cannot be undone.")
        ):
            return
        try:
            await self.runtime.delete_session(session_id)
        except OpenManusError as exc:
            self.notify(exc.message, severity="error")
            return
        if self.session is not None and self.session.id == session_id:
            self.session = None
            await self._show_transcript(_empty_transcript())
        await self.refresh_sessions()
        self.notify(f"Deleted “{name}”.")

    # ---- the prompt ------------------------------------------------------------------------------
    def _complete(self, text: str) -> list[tuple[str, str]]:
        from openmanus_tui.tui import commands

        return commands.complete(text, self.theme_names(),
                                 commands.model_specs(self.status.model))

    @on(PromptInput.Submitted)
    def _on_prompt(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if text.startswith("/"):
            self.run_slash(text)
            return
        if self.run_in_progress():
            # Sent when the run ends (``_after_run``); shown queued meanwhile.
            self.queued.append(text)
            self._show_queue()
            return
        if self.runtime is None and not self.ready.is_set():
            # Typed in the first seconds: kept, and run as soon as the runtime is open.
            self._pending_task = text
            self.notify("Starting up: the task runs as soon as the agent is ready.")
            return
        if self.runtime is None:
            self.notify("The agent runtime did not open; see the error above.",
                        severity="error")
            return
        self.run_task(text)

    def run_slash(self, text: str) -> None:
        from openmanus_tui.tui import branching, commands

        name, arg = commands.parse(text)
        command = commands.BY_NAME.get(name)
        if command is not None and name not in NO_SETTINGS_NEEDED and self.starting_up():
            return
        if command is None:
            self.notify(f"Unknown command /{name}. /help lists them.", severity="error")
        elif not command.available:
            self.notify(f"/{name} is not available yet.", severity="warning")
        elif name == "new":
            self.action_new_session()
        elif name == "approval":
            if arg:
                self.set_approval_mode(arg)
            else:
                self.notify(f"Approval mode: {self.settings.approval.mode}")
        elif name == "theme":
            if arg:
                self.set_theme(arg)
            else:
                self.notify("Themes: " + ", ".join(self.theme_names()))
        elif name == "rename":
            if self.session is None:
                self.notify("Nothing to rename yet: send a task first.", severity="warning")
            else:
                self._rename(self.session.id, arg or None)
        elif name == "expand":
            self.action_toggle_expand()
        elif name == "help":
            self.action_help()
        elif name in ("model", "agent", "export", "compact", "edit", "write"):
            self._session_command(name, arg)
        elif name in branching.SLASH_NAMES:
            branching.slash(self, name, arg)
        elif name == "rules":
            self.action_rules()
        elif name == "resume":
            self.action_resume(arg or None)
        elif name == "quit":
            self.exit(0)

    def set_approval_mode(self, mode: str) -> bool:
        from openmanus_tui.tui import commands

        if self.starting_up():
            return False
        if mode not in commands.APPROVAL_MODES:
            self.notify(f"Approval mode must be one of: {', '.join(commands.APPROVAL_MODES)}",
                        severity="error")
            return False
        # The runtime reads the mode when a run starts: the next task uses it.
        self.settings.approval.mode = mode  # type: ignore[assignment]
        self.status.approval = mode
        self._refresh_welcome()
        self.refresh_status()
        self.notify(f"Approval mode: {mode} — {commands.APPROVAL_MODES[mode]}")
        return True

    # ---- running the agent ---------------------------------------------------------------------
    @work(group="run", exclusive=True)
    async def run_task(self, text: str | None, writing: dict[str, Any] | None = None) -> None:
        """Run ``text`` as a new task; None continues the session from its head (a fork).
        ``writing``: a Writing session's requirements (the /write form)."""
        from openmanus_tui.errors import OpenManusError

        self._schedule_resume_banner()  # removes it: a run is in progress
        try:
            if self.session is None:
                # The default model is not passed on: a session created without one records
                # why the offline demo runs (the run's first notice says it).
                chosen = self.status.model if self.status.model != self._default_model else None
                self.session = await self.runtime.create_session(
                    model=chosen or None, profile=self.status.profile or None
                )
                self.status.model = self.session.record.model
                self.status.profile = self.session.record.profile
                self._probe_isolation()
                self.run_worker(self.refresh_sessions(), group="sessions")  # list it now
            if text is None:
                await self.session.resume(
                    approver=self.approve, on_event=self._listener, ask_human=self.ask_human
                )
            else:
                self.title = f"OpenManus — {' '.join(text.split())[:40]}"
                await self.session.run(
                    text, approver=self.approve, on_event=self._listener, ask_human=self.ask_human,
                    writing=writing,
                )
        except OpenManusError as exc:
            self.notify(exc.message + (f"\n{exc.hint}" if exc.hint else ""), severity="error")
        finally:
            self._stop_clock()
            if self._has_main_screen():  # not when the app is closing under the run
                self.refresh_status()
                await self.refresh_sessions()
                self.refresh_memory()

    def action_stop_run(self) -> None:
        if not self.run_in_progress():
            return
        self.workers.cancel_group(self, "run")
        self._close_approval_screens()
        stream = self._q(StreamView)
        stream.transcript.run_state = "cancelled"
        self.notify("Run stopped.")
        self.refresh_status()

    def _close_approval_screens(self) -> None:
        """A stopped run's approval modal (and a rule editor over it) would stay on screen,
        answering nothing: close them with the run."""
        from openmanus_tui.tui.screens.approval import ApprovalScreen

        while any(isinstance(screen, ApprovalScreen) for screen in self.screen_stack[1:]):
            self.pop_screen()

    def _listener(self, event: ev.Event) -> None:
        # Tools may report output from their own threads: hop onto the app's loop first.
        if threading.get_ident() != self._loop_thread:
            self.call_later_threadsafe(event)
            return
        self.handle_event(event)

    def call_later_threadsafe(self, event: ev.Event) -> None:
        self._event_loop.call_soon_threadsafe(self.handle_event, event)

    def handle_event(self, event: ev.Event) -> None:
        """Apply one runtime event to every view (also used to replay recorded events)."""
        if not self._has_main_screen():
            return
        event = safe_event(event)  # no raw escape sequence from model or tool text on screen
        stream = self._q(StreamView)
        stream.handle_event(event)
        kind = event.type
        if kind == "run_started":
            self._run_started_at = self.clock()
            self.status.model, self.status.profile = event.model, event.profile
        elif kind == "tool_finished":
            self._tools_dirty = True
            if event.tool in SOURCE_TOOLS:
                self.refresh_sources()
        elif kind == "breaker":
            self._tools_dirty = True  # the Tools tab lists the breakers that are not closed
        elif kind == "tool_started" and event.isolation:
            self.status.isolation = event.isolation
        elif kind == "research_step" and event.stage in ("read", "research", "verify"):
            self.refresh_sources()  # the research graph registered or cited sources
        elif kind == "run_finished":
            self._stop_clock()
            self.refresh_document()  # a run may have written or changed a document
        if kind in ("breaker", "run_started"):
            self.refresh_breakers()
        if kind in ("run_started", "tool_finished", "run_finished"):
            self.refresh_memory()  # what the next model call will contain just changed
        if kind not in ("thought_delta", "tool_output"):
            self._sync_totals(stream.transcript)
            self.refresh_status()
            if self._tools_dirty and self.runtime is not None:
                self._tools_dirty = False
                self._q("#tools-pane").refresh_tools(self.runtime)

    async def ask_human(self, question: str) -> str:
        """The runtime's question path (the research graph's clarifying question): a prompt."""
        from openmanus_tui.tui.screens.dialogs import TextPromptScreen

        self.bell()
        answer = await self.push_screen_wait(TextPromptScreen(question))
        return answer or ""

    async def approve(self, request: ev.ApprovalRequested) -> dict[str, Any]:
        """The runtime's approver: one modal per pending call, in order."""
        from openmanus_tui.tui.screens.approval import ApprovalScreen
        from openmanus_tui.tui.screens.rules import RuleContext

        decisions: dict[str, Any] = {}
        title = self.title
        self.title = f"⚠ APPROVAL NEEDED — {title}"
        self.status.state = "awaiting approval"
        self.refresh_status(keep_state=True)
        self.bell()
        try:
            for index, call in enumerate(request.calls, 1):
                spec = self.runtime.registry.get(call.tool)
                screen = ApprovalScreen(
                    call, index=index, count=len(request.calls),
                    workspace=self.session.workspace if self.session else None,
                    args_model=spec.args_model if spec else None,
                    rules=RuleContext.of(self.runtime.db, self.session),
                )
                decisions[call.call_id] = await self.push_screen_wait(screen)
        finally:
            self.title = title
            self.refresh_status()
        return decisions

    # ---- status and panes ----------------------------------------------------------------------
    def _sync_totals(self, transcript: Transcript) -> None:
        t = transcript.totals
        s = self.status
        s.tokens_in, s.tokens_out, s.cost = t.tokens_in, t.tokens_out, t.cost
        s.context_tokens = t.context_tokens
        s.context_window = t.context_window or self._context_window()
        s.state = transcript.run_state
        if transcript.model:
            s.model = transcript.model
        if transcript.profile:
            s.profile = transcript.profile
        if transcript.isolation:
            s.isolation = transcript.isolation

    def _context_window(self) -> int:
        spec = self.session.record.model if self.session else self.settings.model.spec
        if spec not in self._window_cache:
            from openmanus_tui.errors import OpenManusError
            from openmanus_tui.runtime.api import make_model

            try:
                self._window_cache[spec] = make_model(self.settings, spec)[1].context_window
            except OpenManusError:
                self._window_cache[spec] = 0
        return self._window_cache[spec]

    def refresh_status(self, keep_state: bool = False) -> None:
        if not self._has_main_screen():
            return
        if self._starting:
            self.status.state = "starting"
        elif self.replay_state and self.status.state != "awaiting approval":
            self.status.state = self.replay_state
        elif not keep_state:
            self.status.state = self._q(StreamView).transcript.run_state
        if self.settings is not None:
            self.status.approval = self.settings.approval.mode
        started = self._run_started_at
        # After a run: its duration stays on the line (it used to fall back to 0:00).
        self.status.elapsed = (self.clock() - started) if started is not None \
            else self._last_elapsed
        self._q(StatusLine).show(self.status)

    def refresh_breakers(self) -> None:
        """The status line's breaker word, from the runtime (``api.resilience_status``)."""
        if self.runtime is None:
            return
        from openmanus_tui.runtime import api
        from openmanus_tui.tui.widgets.status import breaker_text

        self.status.breakers = breaker_text(api.resilience_status(self.runtime)["breakers"])

    def _stop_clock(self) -> None:
        if self._run_started_at is not None:
            self._last_elapsed = self.clock() - self._run_started_at
        self._run_started_at = None

    def _tick(self) -> None:
        if self._run_started_at is not None:
            self.refresh_status(keep_state=self.status.state == "awaiting approval")

    def refresh_document(self) -> None:
        """The Document tab follows the open session's workspace (``tui/widgets/document.py``)."""
        if self._has_main_screen() and self.session is not None:
            self._q("#document").show_workspace(self.runtime, self.session.workspace)

    def refresh_memory(self) -> None:
        if self._has_main_screen():
            self._q("#memory").request_update()

    def refresh_sources(self) -> None:
        if self._has_main_screen():
            self._q("#sources").request_update()

    def _session_command(self, name: str, arg: str) -> None:
        """/model, /agent, /export, /edit, /write, /compact (``tui/session_commands.py``,
        memory pane)."""
        from openmanus_tui.tui import session_commands as sc

        if self.starting_up():
            return
        if name == "compact":
            self._show_panel("tab-memory")
            self._q("#memory").preview_compaction(arg)
        elif name in ("model", "agent") and not arg:
            current = self.status.model if name == "model" else (self.status.profile or
                                                                 self.settings.agent.profile)
            self.notify(f"{name.title()}: {current}. /{name} NAME switches (Ctrl+P lists them).")
        elif name == "model":
            self.run_worker(sc.switch_model(self, arg), group="session-command")
        elif name == "agent":
            self.run_worker(sc.switch_profile(self, arg), group="session-command")
        elif name == "export":
            self.run_worker(sc.export_session(self, arg), group="session-command")
        elif name == "edit":
            self.run_worker(sc.edit_document(self, arg), group="session-command")
        elif name == "write":
            self.run_worker(sc.write_document(self, arg), group="session-command")

    def _show_panel(self, tab: str) -> None:
        """Bring ``tab`` to the front, opening the panel if it was folded away."""
        self._q("#panel").active = tab
        if not self._q("#panel-slot").display:
            self._panel_pref = True
            self._apply_width(self.size.width)

    # Handlers by name (``widgets/blocks.py`` is not imported for the first frame).
    def on_block_selected(self, message: BlockSelected) -> None:
        self._q("#inspector").show(self._q(StreamView).transcript, message.key)
        self._show_panel("tab-inspector")

    def on_citation_clicked(self, message: CitationClicked) -> None:
        self._show_panel("tab-sources")
        self._q("#sources").select_source(message.number)

    # ---- actions -------------------------------------------------------------------------------
    def action_toggle_expand(self) -> None:
        stream = self._q(StreamView)
        stream.set_expand_all(not stream.expand_all)

    def action_history(self) -> None:
        from openmanus_tui.tui import branching

        branching.open_tree(self)

    def action_toggle_sidebar(self) -> None:
        self._sidebar_pref = not self._q("#sidebar").display
        self._apply_width(self.size.width)

    def action_toggle_panel(self) -> None:
        self._panel_pref = not self._q("#panel-slot").display
        self._apply_width(self.size.width)

    def action_focus_prompt(self) -> None:
        self._q(PromptInput).focus()

    def action_rules(self) -> None:
        """The approval rules screen (``tui/screens/rules.py``)."""
        if self.runtime is None:
            self.notify("Still starting up…", severity="warning")
            return
        from openmanus_tui.tui.screens.rules import RuleContext, RulesScreen

        self.push_screen(RulesScreen(RuleContext.of(self.runtime.db, self.session),
                                     now=self.wall_clock))

    def action_help(self) -> None:
        from openmanus_tui.tui.screens.help import HelpScreen
        from openmanus_tui.tui.session_commands import key_help

        self.push_screen(HelpScreen(key_help(self)))


def run_tui(settings: Settings | None = None, session_id: str | None = None,
            resume_last: bool = False, overrides: dict[str, Any] | None = None,
            task: str | None = None) -> int:
    """Run the workbench in this terminal; returns the process exit code. Without
    ``settings`` the app loads them itself (with ``overrides``), after its first frame;
    ``task`` runs as soon as the runtime is open."""
    app = OpenManusApp(settings, session_id=session_id, resume_last=resume_last,
                       overrides=overrides, task=task)
    hold_collector()
    try:
        result = app.run()
    finally:
        after_first_frame()  # ended before its first frame: a no-op otherwise
    if app.return_code:
        return app.return_code
    return result if isinstance(result, int) else 0
