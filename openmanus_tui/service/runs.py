"""The agent pool: API runs, their slots, their queue, one run per thread, and their streams.

A run is a client request to run (``run``), answer an approval and continue (``resume``),
answer an ``ask_human`` question (``answer``: it adopts the execution waiting for it), or just
continue a thread (``continue``). It drives the session API (``AgentSession.run`` /
``resume``) in a task of the server's event loop; its events become numbered stream parts
(``stream.py``) that any number of readers follow (the creating request, ``join``, a client
reconnecting after a part it got).

- ``service.max_concurrent_runs`` slots; runs waiting for one are the queue, bounded by
  ``service.max_queue`` (beyond it: 429 with ``Retry-After``).
- One active run per thread: ``multitask_strategy`` reject (409, the default), enqueue (after
  the active one), interrupt (stop it, then start) or rollback (stop it, back to where it
  started, then start). A run of the same session in another process is a 409 too.
- ``service.request_timeout`` bounds a run (status ``timeout``; the thread stays resumable).
- ``drain`` (SIGTERM): refuse new runs, let running ones finish for ``drain_timeout`` s, then
  stop them at their last checkpoint. Their rows stay ``running``: ``recover`` at the next start
  continues them (``service.resume_on_start``) or marks them ``interrupted`` (resumable: a run
  with no input continues the thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from openmanus_tui import events as ev
from openmanus_tui.errors import OpenManusError
from openmanus_tui.runtime import api
from openmanus_tui.service import assistants, wire
from openmanus_tui.service.decisions import ResumeError, parse_resume
from openmanus_tui.service.errors import ApiError
from openmanus_tui.service.metrics import Metrics
from openmanus_tui.service.schemas import RunCreate
from openmanus_tui.service.stream import Part, PartMaker

log = logging.getLogger(__name__)

APPROVAL_MODES = ("ask", "auto", "yolo")
KEPT_HANDLES = 500  # finished runs whose streams stay in memory
THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # what a client may name one
# What a session run's outcome is as an API run's status.
_STATUS = {
    "completed": "success",
    "stopped": "success",
    "awaiting_approval": "interrupted",
    "error": "error",
    "cancelled": "interrupted",
}
_DONE = object()
UPDATE_GOTO = (
    "command.update and command.goto are not supported: writing the agent's state or jumping "
    "to a node would bypass the approval step (a tool call runs only after it); edit a step "
    "with POST /threads/{thread_id}/state (a fork) and continue with a run with no input"
)


def answer_text(value: Any, question_id: str) -> str:
    """The answer in a ``command.resume`` for the question ``question_id``: the text, or
    ``{"answer": TEXT}``, either of them keyed by the interrupt's id; 400 otherwise."""
    if isinstance(value, dict) and question_id in value:
        value = value[question_id]
    if isinstance(value, dict):
        value = value.get("answer")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, 'answer a question with command.resume = "TEXT" '
                            'or {"answer": "TEXT"}')
    return value


def task_text(value: Any) -> str | None:
    """The task in a run's ``input``: the last user message of ``{"messages": [...]}``, the
    ``input`` of ``{"input": ...}``, or a plain string; None for no input."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("input"), str):
            return value["input"]  # type: ignore[no-any-return]
        messages = value.get("messages")
        if isinstance(messages, dict | str):
            messages = [messages]
        if isinstance(messages, list):
            for message in reversed(messages):
                if isinstance(message, str):
                    return message
                if isinstance(message, dict) and message.get("role", message.get("type")) in (
                    "user", "human"
                ):
                    return _content_text(message.get("content"))
    raise ApiError(
        422,
        'input must be {"messages": [{"role": "user", "content": TASK}]} or {"input": TASK}',
    )


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p if isinstance(p, str) else str(p.get("text", ""))
            for p in content
            if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text")
        )
    raise ApiError(422, "a message's content must be text")


@dataclass
class Question:
    """An ask_human question waiting for its answer, and the execution that asked it."""

    id: str
    interrupt: dict[str, Any]
    future: asyncio.Future[str]
    target: list[Any]  # [the API run the execution streams to]


class RunHandle:
    """One API run in this process: its record, its task, and the parts it has streamed."""

    def __init__(self, record: Any, body: RunCreate, kind: str) -> None:
        self.record = record
        self.body = body
        self.kind = kind  # run | resume | continue
        self.text: str | None = None
        self.decisions: dict[str, Any] = {}
        self.model: str | None = None
        self.approval: str | None = None
        self.workspace: str | None = None
        self.profile = "manus"
        self.parts: list[Part] = []
        self.final: dict[str, Any] = {}
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.cancel_action: str | None = None
        self.start_checkpoint: str | None = None
        self.started = False  # start_checkpoint is known: the session's run may have begun
        self.breakpoints: Any = None  # api.Breakpoints
        self.answer: str | None = None  # resume: the answer to a stored (not live) question
        self.make_parts = True
        self.attempt = 1  # 2: continued by a restarted server (``recover``)
        self.cleanup: asyncio.Task[None] | None = None  # what ends with it (app.py)
        self._wake = asyncio.Event()

    @property
    def run_id(self) -> str:
        return self.record.run_id  # type: ignore[no-any-return]

    def add(self, parts: list[Part]) -> None:
        if not parts:
            return
        self.parts.extend(parts)
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def finish(self) -> None:
        self.done.set()
        self._wake.set()

    async def follow(
        self, modes: set[str] | None = None, after: int = 0
    ) -> AsyncIterator[tuple[int, str, Any]]:
        """``(number, event, data)`` of every part after part ``after`` (numbered from 1: the
        SSE event id a reconnecting client sends back), then of new ones as they come, until
        the run ends."""
        index = max(0, after)
        while True:
            wake = self._wake
            while index < len(self.parts):
                event, data = self.parts[index]
                index += 1
                if modes is None or event in modes or event == "error":
                    yield index, event, data
            if self.done.is_set():
                return
            await wake.wait()

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        return run_dict(r)


def run_dict(r: Any) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "thread_id": r.thread_id,
        "assistant_id": r.assistant_id,
        "created_at": wire.iso(r.created_at),
        "updated_at": wire.iso(r.updated_at),
        "status": r.status,
        "metadata": r.metadata,
        "multitask_strategy": r.multitask_strategy,
        "kwargs": {},
    }


class RunManager:
    def __init__(self, runtime: Any, metrics: Metrics) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.service
        self.metrics = metrics
        self.store = api.ApiRunStore(runtime.db)
        self.slots = asyncio.Semaphore(self.settings.max_concurrent_runs)
        self.handles: dict[str, RunHandle] = {}
        self.active: dict[str, RunHandle] = {}  # thread id -> its newest unfinished run
        self.questions: dict[str, Question] = {}  # thread id -> its unanswered ask_human
        self._deciding: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.accepting = True
        self.waiting = 0
        self.running = 0

    # ---- threads -------------------------------------------------------------------------
    async def open_thread(self, thread_id: str) -> Any:
        """The session of ``thread_id`` (exactly that id: no prefix matching here)."""
        try:
            record = await api.get_session(self.runtime, thread_id)
        except OpenManusError:
            raise ApiError(404, f"thread {thread_id} not found") from None
        if record.id != thread_id:
            raise ApiError(404, f"thread {thread_id} not found")
        return await self.runtime.open_session(record.id)

    def busy(self, thread_id: str) -> bool:
        """A run of the thread is going on: here, or in another process (the CLI, the
        workbench) that holds the session's lock."""
        handle = self.active.get(thread_id)
        if handle is not None and not handle.done.is_set():
            return True
        if thread_id in self.questions:
            return False  # our own execution, waiting for an answer
        return api.is_session_running(self.runtime.db.path, thread_id)

    # ---- creating a run ------------------------------------------------------------------
    async def create(self, thread_id: str, body: RunCreate, *, parts: bool = True) -> RunHandle:
        """Start a run (``ApiError`` when it is refused). ``parts=False``: nobody will read
        its stream (``runs/wait``), so no stream parts are made, only the final values."""
        if not self.accepting:
            raise ApiError(503, "the server is shutting down", {"Retry-After": "5"})
        try:
            session = await self.open_thread(thread_id)
        except ApiError:
            if body.if_not_exists != "create" or not THREAD_ID.match(thread_id):
                raise
            session = await self.runtime.create_session(session_id=thread_id)
        # Requests for one thread are decided one at a time: two at once must not both see
        # it idle (one run per thread).
        lock = self._deciding.setdefault(session.id, asyncio.Lock())
        async with lock:
            return await self._create(session, body, parts)

    async def _create(self, session: Any, body: RunCreate, parts: bool) -> RunHandle:
        profile = assistants.resolve(body.assistant_id)
        if profile is None:
            raise ApiError(404, f"assistant {body.assistant_id} not found")
        if body.command is not None and (body.command.update or body.command.goto):
            raise ApiError(422, UPDATE_GOTO)
        breakpoints = self._breakpoints(body, profile)
        handle = RunHandle(
            api.ApiRun(
                run_id=str(uuid.uuid4()),
                thread_id=session.id,
                assistant_id=assistants.assistant_id(profile),
                multitask_strategy=body.multitask_strategy,
                metadata=wire.jsonable(body.metadata or {}),
                request=body.model_dump(mode="json", exclude_none=True),
            ),
            body,
            "continue",
        )
        handle.profile = profile
        handle.make_parts = parts
        handle.breakpoints = breakpoints
        self._read_config(handle, body.configurable())
        question = self.questions.get(session.id)
        if question is not None:
            return await self._create_answer(session, handle, body, question)
        previous = self.active.get(session.id)
        if previous is not None and previous.done.is_set():
            previous = None
        if previous is None and api.is_session_running(self.runtime.db.path, session.id):
            raise ApiError(409, f"thread {session.id} is busy: a run of it is going on elsewhere")
        if previous is not None and body.multitask_strategy == "reject":
            raise ApiError(409, f"thread {session.id} is busy: run {previous.run_id} is active")
        replacing = previous is not None and body.multitask_strategy in ("interrupt", "rollback")
        if self.slots.locked() and self.waiting >= self.settings.max_queue and not replacing:
            raise ApiError(429, "too many runs are waiting", {"Retry-After": "5"})
        self._classify(handle)
        if handle.kind == "resume" and previous is None:  # an enqueued one: when it starts
            await self._check_resume(session, handle)
        if handle.workspace and previous is None:
            await self._apply_workspace(session, handle.workspace)
        await self.store.add(handle.record)
        self._remember(handle)
        self.active[session.id] = handle
        if previous is not None and body.multitask_strategy in ("interrupt", "rollback"):
            await self.cancel(previous, body.multitask_strategy, wait=False)
        handle.task = asyncio.create_task(self._execute(handle, previous))
        return handle

    async def _create_answer(
        self, session: Any, handle: RunHandle, body: RunCreate, question: Question
    ) -> RunHandle:
        if body.command is None or body.command.resume is None:
            raise ApiError(409, f"thread {session.id} waits for the answer to a question: "
                                "resume it with command.resume, or cancel its run")
        if handle.breakpoints:
            raise ApiError(422, "interrupt_before / interrupt_after cannot apply to the answer "
                                "of a question: its run goes on with the breakpoints it has")
        answer_text(body.command.resume, question.id)
        handle.kind = "answer"
        await self.store.add(handle.record)
        self._remember(handle)
        self.active[session.id] = handle
        handle.task = asyncio.create_task(self._answer(handle, question))
        return handle

    def _breakpoints(self, body: RunCreate, profile: str) -> Any:
        """``interrupt_before`` / ``interrupt_after`` as the session's ``Breakpoints``: node
        names of the profile's graph, or ``"*"`` (every node); 422 naming the nodes else."""
        nodes = api.graph_nodes(self.runtime, profile)
        chosen: dict[str, Any] = {}
        for name in ("interrupt_before", "interrupt_after"):
            value = getattr(body, name)
            if value is None or value == "*":
                chosen[name] = value or []
                continue
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ApiError(422, f'{name} must be a list of node names or "*"')
            unknown = [v for v in value if v not in nodes]
            if unknown:
                raise ApiError(422, f"{name}: the {profile} graph has no node {unknown[0]!r}; "
                                    f"its nodes are {', '.join(nodes)}")
            chosen[name] = list(dict.fromkeys(value))
        return api.Breakpoints(before=chosen["interrupt_before"],
                               after=chosen["interrupt_after"])

    @staticmethod
    def _classify(handle: RunHandle) -> None:
        """What the request asks: answer an interrupt (resume), run a task, or continue."""
        body = handle.body
        if body.command is not None and (body.command.update or body.command.goto):
            raise ApiError(422, UPDATE_GOTO)  # also checked on creation; a recovered request
        if body.command is not None and body.command.resume is not None:
            handle.kind = "resume"
        else:
            handle.text = task_text(body.input)
            if handle.text is not None:
                if not handle.text.strip():
                    raise ApiError(422, "the task is empty")
                handle.kind = "run"

    def _remember(self, handle: RunHandle) -> None:
        """Keep the handle (its parts serve ``join`` and ``stream``); the oldest finished
        ones beyond ``KEPT_HANDLES`` are forgotten (their rows answer ``get`` and ``join``)."""
        self.handles[handle.run_id] = handle
        if len(self.handles) > KEPT_HANDLES:
            for run_id, old in list(self.handles.items()):
                if len(self.handles) <= KEPT_HANDLES:
                    break
                if old.task is not None and old.task.done():
                    del self.handles[run_id]

    def _read_config(self, handle: RunHandle, configurable: dict[str, Any]) -> None:
        model = configurable.get("model")
        if model is not None:
            if not isinstance(model, str) or not model:
                raise ApiError(422, "configurable.model must be a model spec such as openai:NAME")
            try:
                api.make_model(self.runtime.settings, model)
            except OpenManusError as exc:
                raise ApiError(400, f"configurable.model: {exc.message}") from None
            handle.model = model
        approval = configurable.get("approval")
        if approval is not None:
            if approval not in APPROVAL_MODES:
                raise ApiError(422, "configurable.approval must be ask, auto or yolo")
            handle.approval = approval
        workspace = configurable.get("workspace")
        if workspace is not None:
            if not isinstance(workspace, str) or not workspace or "\0" in workspace:
                raise ApiError(422, "configurable.workspace must be a folder path")
            handle.workspace = workspace

    async def _apply_workspace(self, session: Any, workspace: str) -> None:
        try:
            await api.set_session_workspace(session, workspace)
        except OpenManusError as exc:
            raise ApiError(400, f"configurable.workspace: {exc.message}") from None

    async def _check_resume(self, session: Any, handle: RunHandle) -> None:
        snapshot = await api.session_state(session)
        pending = wire.interrupts(snapshot)
        if not pending:
            raise ApiError(400, f"thread {session.id} has no pending interrupt to resume")
        questions = [i for i in pending if wire.is_question(i)]
        if questions and len(questions) == len(pending):
            # A stored question (the research graph's, its run gone: a restart, a cancel):
            # the resumed graph asks it again, and this answer is given.
            handle.answer = answer_text(handle.body.command.resume,  # type: ignore[union-attr]
                                        questions[0]["id"])
            return
        try:
            handle.decisions = parse_resume(
                handle.body.command.resume,  # type: ignore[union-attr]
                pending,
                self.runtime.registry,
            )
        except ResumeError as exc:
            raise ApiError(400, str(exc)) from None

    # ---- running it ------------------------------------------------------------------------
    async def _execute(self, handle: RunHandle, previous: RunHandle | None) -> None:
        queued = time.monotonic()
        self.waiting += 1
        self.metrics.queue_depth.set(self.waiting)
        holding = False
        try:
            if previous is not None:
                await previous.done.wait()
            await self.slots.acquire()
            holding = True
            self.waiting -= 1
            self.metrics.queue_depth.set(self.waiting)
            self.metrics.queue_wait.observe(time.monotonic() - queued)
            if handle.cancel_action is None:
                self.running += 1
                self.metrics.active_runs.set(self.running)
                started = time.monotonic()
                try:
                    await self._run(handle)
                finally:
                    self.running -= 1
                    self.metrics.active_runs.set(self.running)
                    self.metrics.run_time.observe(time.monotonic() - started)
            else:
                await self._set_status(handle, "interrupted")
        except asyncio.CancelledError:
            # Cancelled while queued: by a client (interrupted), or by the server stopping
            # (left pending: the next start runs it as it came).
            if handle.record.status == "pending" and handle.cancel_action is not None:
                await asyncio.shield(self._set_status(handle, "interrupted"))
        except Exception:
            log.exception("run %s failed", handle.run_id)
            await asyncio.shield(self._set_status(handle, "error"))
        finally:
            if holding:
                self.slots.release()
            else:
                self.waiting -= 1
                self.metrics.queue_depth.set(self.waiting)
            self.metrics.runs.labels(handle.record.status).inc()
            handle.finish()
            if self.active.get(handle.record.thread_id) is handle:
                del self.active[handle.record.thread_id]

    async def _set_status(self, handle: RunHandle, status: str) -> None:
        handle.record.status = status
        handle.record.updated_at = time.time()
        await self.store.set_status(handle.run_id, status)

    async def _run(self, handle: RunHandle) -> None:
        session = await self.runtime.open_session(handle.record.thread_id)
        if handle.model and handle.model != session.record.model:
            # Stored on the thread, as the workbench's /model does: a later run (a resume
            # with no config) goes on with the same model, as the approval mode does.
            session = await api.set_session_model(session, handle.model)
        error: dict[str, Any] | None = None
        maker = PartMaker(session, handle.body.modes() if handle.make_parts else [],
                          handle.run_id)
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        observe = self.metrics.listener(self.runtime.registry)
        # The API run the execution streams to: the one that started it, then the one that
        # answered its ask_human question (``_adopt``).
        target = [handle]

        def listener(event: ev.Event) -> None:
            observe(event)
            inbox.put_nowait(event)

        async def pump() -> None:
            while (event := await inbox.get()) is not _DONE:
                try:
                    target[0].add(await maker.on_event(event))
                except Exception:  # a part that cannot be made must not end the run
                    log.exception("stream part for %s failed", event.type)

        async def ask_human(question: str) -> str:
            if handle.answer is not None:  # the answer this run resumed the question with
                answer, handle.answer = handle.answer, None
                return answer
            return await self._ask(session, target, maker, inbox, question)

        pumping = asyncio.create_task(pump())
        status = "error"
        try:
            if handle.workspace:
                await self._apply_workspace(session, handle.workspace)
            if handle.profile != session.record.profile:
                await api.set_session_profile(session, handle.profile)
            session.use_approval_mode(handle.approval)
            if handle.kind == "resume" and not handle.decisions and handle.answer is None:
                await self._check_resume(session, handle)  # enqueued: checked now
            handle.start_checkpoint = await session.history.current_checkpoint()
            handle.started = True
            # Building the sandbox (its support folder; the helper starts with the first
            # command, sandbox/hostview.py) touches the disk: done off the event loop, so that
            # the other runs and requests go on meanwhile.
            with contextlib.suppress(OpenManusError):
                await asyncio.to_thread(session.sandbox)
            await self._set_status(handle, "running")
            async with asyncio.timeout(self.settings.request_timeout):
                if handle.kind == "run":
                    outcome = await session.run(
                        handle.text or "", on_event=listener, ask_human=ask_human,
                        breakpoints=handle.breakpoints,
                    )
                elif handle.kind == "resume":
                    outcome = await session.resume(
                        approver=self._answer_once(handle.decisions), on_event=listener,
                        ask_human=ask_human, breakpoints=handle.breakpoints,
                    )
                else:
                    outcome = await session.resume(
                        on_event=listener, ask_human=ask_human, breakpoints=handle.breakpoints
                    )
            status = _STATUS.get(outcome.status, "error")
            if outcome.status == "error":
                error = {"error": "RunError", "message": outcome.reason}
        except TimeoutError:
            status = "timeout"
            error = {"error": "TimeoutError",
                     "message": "the run took longer than service.request_timeout; "
                                "a run with no input continues the thread"}
        except asyncio.CancelledError:
            status = "interrupted"
            self.questions.pop(session.id, None)
            if target[0].cancel_action is None:  # the server is stopping: resumable at restart
                inbox.put_nowait(_DONE)
                await asyncio.shield(pumping)
                await asyncio.shield(asyncio.to_thread(session.close_sandbox))
                raise
            if target[0].cancel_action == "rollback" and handle.started:
                # Back to where the run started; for a thread's first run, to an empty
                # thread (its steps stay in the tree, off the thread's branch).
                with contextlib.suppress(OpenManusError):
                    await asyncio.shield(
                        session.history.rollback(handle.start_checkpoint, force=True)
                    )
        except ApiError as exc:
            error = {"error": "BadRequest", "message": exc.detail}
        except OpenManusError as exc:
            error = {"error": type(exc).__name__, "message": exc.message}
            self.metrics.errors.labels(exc.error_class).inc()
        except Exception as exc:
            log.exception("run %s failed", handle.run_id)
            error = {"error": type(exc).__name__, "message": "internal error (see the server log)"}
            self.metrics.errors.labels("internal").inc()
        inbox.put_nowait(_DONE)
        await asyncio.shield(pumping)
        await asyncio.shield(self._close(target[0], session, maker, status, error))
        await asyncio.shield(asyncio.to_thread(session.close_sandbox))

    async def _close(
        self, handle: RunHandle, session: Any, maker: PartMaker, status: str,
        error: dict[str, Any] | None,
    ) -> None:
        snapshot = await api.session_state(session)
        pending = wire.interrupts(snapshot)
        handle.final = wire.values(snapshot)
        if pending:
            handle.final["__interrupt__"] = pending
        if error is not None:
            handle.final["__error__"] = error
        handle.add(maker.closing(pending, error))
        await self._set_status(handle, status)

    # ---- ask_human: a question as an interrupt -----------------------------------------------
    async def _ask(
        self, session: Any, target: list[RunHandle], maker: PartMaker,
        inbox: asyncio.Queue[Any], question: str,
    ) -> str:
        """The agent's question to a person, as an interrupt: the API run asking it ends
        ``interrupted`` with ``{"__interrupt__": [{"value": {"type": "ask_human", ...}}]}``,
        while the execution waits (holding its slot) for a run with ``command.resume`` (the
        answer) to adopt it."""
        current = target[0]
        await self._drain_inbox(inbox, maker, current)
        question_id = uuid.uuid4().hex
        interrupt = {"value": {"type": "ask_human", "question": question}, "id": question_id}
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.questions[session.id] = Question(question_id, interrupt, future, target)
        snapshot = await api.session_state(session)
        current.final = {**wire.values(snapshot), "__interrupt__": [interrupt]}
        current.add(maker.closing([interrupt], None))
        await self._set_status(current, "interrupted")
        current.finish()  # its readers are done; the execution goes on
        try:
            return await future
        finally:
            self.questions.pop(session.id, None)

    @staticmethod
    async def _drain_inbox(inbox: asyncio.Queue[Any], maker: PartMaker, handle: RunHandle) -> None:
        # Events already produced belong to the run that asks (its stream ends here).
        while not inbox.empty():
            event = inbox.get_nowait()
            if event is _DONE:
                inbox.put_nowait(_DONE)
                return
            handle.add(await maker.on_event(event))

    async def _answer(self, handle: RunHandle, question: Question) -> None:
        """The task of a run that answered a question: it streams the adopted execution."""
        value = answer_text(handle.body.command.resume, question.id)  # type: ignore[union-attr]
        runner = question.target[0]
        question.target[0] = handle
        handle.cancel_action = None
        await self._set_status(handle, "running")
        question.future.set_result(str(value))
        try:
            await asyncio.shield(runner.task)  # type: ignore[arg-type]
        except Exception:
            if handle.record.status == "running":
                await self._set_status(handle, "error")
        except asyncio.CancelledError:
            if handle.cancel_action is not None and runner.task is not None:
                runner.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner.task
        finally:
            self.metrics.runs.labels(handle.record.status).inc()
            handle.finish()
            if self.active.get(handle.record.thread_id) is handle:
                del self.active[handle.record.thread_id]

    @staticmethod
    def _answer_once(decisions: dict[str, Any]) -> Any:
        """The approver of a resumed run: the client's answer to the interrupt it resumed,
        nothing for a later one (which waits for its own resume)."""
        used = False

        async def approver(request: ev.ApprovalRequested) -> dict[str, Any] | None:
            nonlocal used
            if used or {c.call_id for c in request.calls} != set(decisions):
                return None
            used = True
            return decisions

        return approver

    # ---- cancel, wait, drain, recover ------------------------------------------------------
    async def cancel(self, handle: RunHandle, action: str = "interrupt", *, wait: bool) -> None:
        if handle.task is None or handle.task.done():
            return
        handle.cancel_action = action
        handle.task.cancel()
        if wait:  # the execution's end, not its readers' (a question's run is done early)
            await asyncio.wait([handle.task])
            await handle.done.wait()

    async def drain(self, timeout: float) -> None:
        """Refuse new runs; give running ones ``timeout`` s; stop the rest at their last
        checkpoint (their rows stay unfinished, for ``recover``)."""
        self.accepting = False
        # A run waiting for a person's answer would wait the whole drain time for nothing.
        for question in list(self.questions.values()):
            asker = question.target[0]
            if asker.task is not None and not asker.task.done():
                asker.task.cancel()
        tasks = [h.task for h in self.handles.values() if h.task and not h.task.done()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)

    async def recover(self, *, resume: bool) -> list[str]:
        """Runs a previous server left unfinished: continued (``resume``) or marked
        ``interrupted``. Returns their ids."""
        found = await self.store.unfinished()
        for record in found:
            started = record.status == "running"
            request = {**record.request, "multitask_strategy": "enqueue"}
            if started:  # its input is in the session already: continue the thread
                request.update(input=None, command=None)
            handle = RunHandle(record, RunCreate.model_validate(request), "continue")
            handle.attempt = 2
            try:
                await self.open_thread(record.thread_id)
                if not resume:
                    await self._set_status(handle, "interrupted")
                    continue
                self._read_config(handle, handle.body.configurable())
                handle.profile = assistants.resolve(record.assistant_id) or handle.profile
                handle.breakpoints = self._breakpoints(handle.body, handle.profile)
                if not started:  # queued when the server stopped: the request as it came
                    self._classify(handle)
            except ApiError:
                await self._set_status(handle, "error")
                continue
            if started:
                handle.workspace = None  # fixed at its first start
            record.status = "pending"
            previous = self.active.get(record.thread_id)
            self._remember(handle)
            self.active[record.thread_id] = handle
            handle.task = asyncio.create_task(self._execute(handle, previous))
        return [r.run_id for r in found]

    async def forget(self, run_id: str) -> None:
        self.handles.pop(run_id, None)
        await self.store.delete(run_id)

    async def get(self, thread_id: str, run_id: str) -> RunHandle | Any:
        handle = self.handles.get(run_id)
        if handle is not None and handle.record.thread_id == thread_id:
            return handle
        record = await self.store.get(run_id)
        if record is None or record.thread_id != thread_id:
            raise ApiError(404, f"run {run_id} not found")
        return record
