"""The replay bar: a recorded replay of one branch into the stream view.

It drives the core's ``Replayer`` (``runtime/replay.py``) over the branch's stored events, so no
model or tool call happens: play / pause, step (to the next checkpoint: the replayer's step
breakpoints), speed (0.5×, 1×, 2×, 4×, max) and jump to a step. A jump rebuilds the stream up to
that step at once and continues from there, paused. Closing the bar shows the session's current
branch again. The replay runs in the app's "run" worker group, so no task starts meanwhile and
Ctrl+G stops it like a run.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from openmanus_tui import events as ev
from openmanus_tui.runtime.replay import Replayer

if TYPE_CHECKING:
    from textual.worker import Worker

SPEEDS: list[tuple[float, str]] = [(0.5, "0.5×"), (1.0, "1×"), (2.0, "2×"), (4.0, "4×"),
                                   (0.0, "max")]
DEFAULT_SPEED = 1
PLAY, PAUSE = "▶ Play", "|| Pause"
STATE_POLL_S = 0.1


class ReplayBar(Vertical):
    DEFAULT_CSS = """
    ReplayBar { height: 2; background: $panel; padding: 0 1; layout: vertical; }
    ReplayBar #replay-controls { height: 1; }
    ReplayBar Button { width: auto; min-width: 5; margin-right: 1; }
    ReplayBar #replay-progress { height: 1; width: 1fr; }
    ReplayBar #replay-jump { width: 13; border: none; height: 1; margin-right: 1; }
    ReplayBar #replay-gap { width: 1fr; }
    """
    BINDINGS = [
        Binding("p", "play_pause", "Play/pause", show=False),
        Binding("n", "step", "Step", show=False),
        Binding("f", "faster", "Speed", show=False),
        Binding("escape", "close", "Close replay", show=False),
    ]

    def __init__(
        self, events: list[ev.Event], *, title: str = "", head: str | None = None,
        speed_index: int = DEFAULT_SPEED, numbers: dict[str, int] | None = None,
    ) -> None:
        super().__init__(id="replay-bar")
        self.events = list(events)
        self.branch_label = title
        self.head = head
        self.speed_index = speed_index
        # (position in events, step number) of every checkpoint: the steps one can jump to.
        # ``numbers``: the tree's step numbers by checkpoint id (``store/tree.py``), so that the
        # bar and the tree name a step alike; the stored events keep LangGraph's.
        numbers = numbers or {}
        self.steps = [(i, numbers.get(e.checkpoint_id or "", e.step))
                      for i, e in enumerate(self.events) if isinstance(e, ev.Checkpoint)]
        self.emitted: list[ev.Event] = []
        self.replayer = self._new_replayer()
        self.finished = False
        self.closed = False
        self._worker: Worker[Any] | None = None

    # ---- opening --------------------------------------------------------------------------------
    @classmethod
    async def open(
        cls, app: Any, events: list[ev.Event], *, title: str = "", head: str | None = None,
        start_step: int | None = None,
    ) -> ReplayBar:
        """Mount a bar above the prompt (replacing an open one) and start it paused."""
        for old in app.screen_stack[0].query(ReplayBar):
            await old.remove()
        numbers: dict[str, int] = {}
        if getattr(app, "session", None) is not None:
            tree = await app.session.history.tree()
            numbers = {cid: node.step for cid, node in tree.nodes.items()}
        bar = cls(events, title=title, head=head, numbers=numbers)
        center = app.screen_stack[0].query_one("#center")
        await center.mount(bar, before=center.query_one("#prompt-bar"))
        position = 0 if start_step is None else bar.position_of(start_step)
        await bar.start(position if position is not None else 0)
        bar.query_one("#replay-play", Button).focus()
        return bar

    def compose(self) -> ComposeResult:
        with Horizontal(id="replay-controls"):
            yield Button(PLAY, id="replay-play", compact=True)
            yield Button("▶| Step", id="replay-step", compact=True)
            yield Button(SPEEDS[self.speed_index][1], id="replay-speed", compact=True)
            yield Input(placeholder="jump: step", id="replay-jump", compact=True, type="integer")
            yield Static("", id="replay-gap")
            yield Button("↻ Live", id="replay-live", compact=True)
            yield Button("✕ Close", id="replay-close", compact=True)
        yield Static("", id="replay-progress")

    def on_mount(self) -> None:
        self.query_one("#replay-jump", Input).cursor_blink = getattr(self.app, "blink", True)
        # The replayer pauses itself at step breakpoints: poll so the bar shows it.
        self.set_interval(STATE_POLL_S, self.refresh_state, name="replay-state")
        self.refresh_state()

    def _new_replayer(self) -> Replayer:
        return Replayer(self.events, speed=SPEEDS[self.speed_index][0])

    def position_of(self, step: int) -> int | None:
        """The event position just after checkpoint ``step`` (the state at that step)."""
        for position, number in self.steps:
            if number == step:
                return position + 1
        return None

    # ---- driving the replayer --------------------------------------------------------------------
    async def start(self, position: int = 0) -> None:
        """(Re)start from event ``position``, paused: the stream shows everything before it."""
        from openmanus_tui.tui.branching import show_events

        self._stop_worker()
        self.replayer = self._new_replayer()
        self.replayer.jump(position)
        self.replayer.pause()
        self.finished = False
        self.emitted = list(self.events[:position])
        await show_events(self.app, self.emitted, replay=True)
        self._worker = self.run_worker(self._play(self.replayer), group="run", name="replay")
        self.refresh_state()

    async def _play(self, replayer: Replayer) -> None:
        await replayer.play(self._emit)
        if replayer is self.replayer:
            self.finished = True
            self.refresh_state()

    def _emit(self, event: ev.Event) -> None:
        self.emitted.append(event)
        self.app.handle_event(event)

    def _stop_worker(self) -> None:
        if self._worker is not None and self._worker.is_running:
            self._worker.cancel()
        self._worker = None

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_running

    def action_play_pause(self) -> None:
        if self.finished or not self.running:
            self.run_worker(self._replay_again(), group="replay-control")
            return
        if self.replayer.paused:
            self.replayer.break_on_steps = False
            self.replayer.resume()
        else:
            self.replayer.pause()
        self.refresh_state()

    async def _replay_again(self) -> None:
        await self.start(0)
        self.replayer.resume()
        self.refresh_state()

    def action_step(self) -> None:
        """Emit up to the next checkpoint, then pause (steps that show nothing are skipped)."""
        if self.finished or not self.running:
            self.app.bell()
            return
        self.run_worker(self.step(), group="replay-control", exclusive=True)

    async def step(self) -> None:
        before = len(self.emitted)
        while self.running and not self.replayer.done:
            self.replayer.break_on_steps = True
            self.replayer.resume()
            self.refresh_state()
            await asyncio.sleep(0)  # let the replayer take the step
            await self.wait_paused()
            if any(not isinstance(e, ev.Checkpoint) for e in self.emitted[before:]):
                break
        self.refresh_state()

    def action_faster(self) -> None:
        self.set_speed((self.speed_index + 1) % len(SPEEDS))

    def set_speed(self, index: int) -> None:
        self.speed_index = index
        self.replayer.speed = SPEEDS[index][0]
        self.query_one("#replay-speed", Button).label = SPEEDS[index][1]

    async def jump(self, step: int) -> bool:
        position = self.position_of(step)
        if position is None:
            known = ", ".join(str(n) for _, n in self.steps[:12])
            self.app.notify(f"No step {step} on this branch (steps: {known}…)", severity="error")
            return False
        await self.start(position)
        return True

    async def action_close(self) -> None:
        from openmanus_tui.tui.branching import show_branch

        self.closed = True  # a play ending as it is cancelled must not report a state again
        self._stop_worker()
        self.app.replay_state = None  # type: ignore[attr-defined]
        await self.remove()
        await show_branch(self.app, None)

    # ---- the controls -------------------------------------------------------------------------
    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id
        if button == "replay-play":
            self.action_play_pause()
        elif button == "replay-step":
            self.action_step()
        elif button == "replay-speed":
            self.action_faster()
        elif button == "replay-close":
            await self.action_close()
        elif button == "replay-live":
            from openmanus_tui.tui.branching import live_replay

            head = self.head
            await self.action_close()
            self.app.run_worker(live_replay(self.app, head), group="history")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            step = int(event.value)
        except ValueError:
            self.app.notify("Jump takes a step number (as the tree shows it).", severity="error")
            return
        if await self.jump(step):
            event.input.value = ""

    def on_unmount(self) -> None:
        # However the bar goes (closed, replaced, the session switched), the status line
        # stops saying "replay".
        self.closed = True
        self.app.replay_state = None  # type: ignore[attr-defined]

    def refresh_state(self) -> None:
        if not self.is_mounted or self.closed:
            return
        r = self.replayer
        if self.finished:
            state = "finished"
        elif not self.running:
            state = "stopped"
        else:
            state = "paused" if r.paused else "playing"
        # The status line says what the stream is doing: a replay, not a run.
        self.app.replay_state = f"replay {state}"  # type: ignore[attr-defined]
        self.app.refresh_status()  # type: ignore[attr-defined]
        done = [number for position, number in self.steps if position < len(self.emitted)]
        where = f"at step {done[-1]}" if done else "at the start"
        text = Text.assemble(
            ("replay ", "bold"), (f"{state:<8}", "bold reverse" if state == "playing" else "bold"),
            f"  {where} · {len(done)}/{len(self.steps)} steps · "
            f"event {len(self.emitted)}/{len(self.events)}",
            ("  " + self.branch_label, "dim"), no_wrap=True, overflow="ellipsis",
        )
        self.query_one("#replay-progress", Static).update(text)
        label = PAUSE if state == "playing" else PLAY
        play = self.query_one("#replay-play", Button)
        if str(play.label) != label:
            play.label = label

    async def wait_paused(self, timeout: float = 30.0) -> None:
        """Until the replayer is paused or finished (for tests and screenshots)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.running and not self.replayer.paused:
            if loop.time() > deadline:
                raise TimeoutError("the replay did not pause")
            await asyncio.sleep(0.01)
