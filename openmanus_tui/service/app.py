"""The routes: the part of the LangGraph API that ``langgraph-sdk`` 0.4 calls, over sessions.

``create_app(settings, host)`` builds a FastAPI app whose lifespan opens the runtime (the same
database, sandbox and event stream as the CLI), recovers runs a previous server left unfinished
and, on shutdown, drains the pool. Threads are sessions, runs go through ``RunManager``.
Errors are ``{"detail": one line}`` with a 4xx status; anything unexpected is a 500 saying
"internal error", its traceback only in the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette.sse import EventSourceResponse

from openmanus_tui.config import Settings
from openmanus_tui.errors import OpenManusError
from openmanus_tui.runtime import api
from openmanus_tui.runtime.config_reload import ConfigReloader, ReloadResult
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.runtime.views import sandbox_level
from openmanus_tui.service import assistants, wire
from openmanus_tui.service.errors import ApiError
from openmanus_tui.service.metrics import Metrics
from openmanus_tui.service.runs import THREAD_ID, RunHandle, RunManager, run_dict
from openmanus_tui.service.schemas import (
    AssistantSearch,
    HistoryRequest,
    RunCreate,
    StateUpdate,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
)
from openmanus_tui.service.security import GuardMiddleware, required_token

log = logging.getLogger("openmanus.api")

HEARTBEAT_S = 15


class State:
    """What the routes share: the runtime, the run pool, the metrics, cached probes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.runtime: Runtime | None = None
        self.runs: RunManager | None = None
        self.sandbox = "unknown"
        self.model_probe: tuple[float, dict[str, Any]] = (0.0, {})
        self.naming = asyncio.Lock()
        self.cleanups: set[asyncio.Task[None]] = set()  # deletions of stateless runs' threads

    @property
    def pool(self) -> RunManager:
        if self.runs is None:
            raise ApiError(503, "the server is starting")
        return self.runs

    @property
    def rt(self) -> Runtime:
        if self.runtime is None:
            raise ApiError(503, "the server is starting")
        return self.runtime


def _watch_config(runtime: Runtime) -> tuple[ConfigReloader, asyncio.Task[None]]:
    """Hot reload, as in the workbench: a valid edit of the config files applies to the next
    runs; an invalid one is logged with ``config validate``'s line and changes nothing."""

    def told(result: ReloadResult) -> None:
        if result.error:
            log.warning("configuration change refused: %s", result.error)
        elif result.applied:
            log.info("configuration reloaded (version %s)", result.version)

    reloader = ConfigReloader(runtime, on_result=told)

    async def watch() -> None:
        try:
            await reloader.watch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no inotify (a watch limit reached): say so, keep serving
            log.warning("config file changes are not followed: %s", exc)

    return reloader, asyncio.create_task(watch(), name="config-watch")


def create_app(settings: Settings, *, host: str = "127.0.0.1") -> FastAPI:
    state = State(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.runtime = await Runtime.open(settings)
        state.runs = RunManager(state.runtime, state.metrics)
        state.sandbox = await asyncio.to_thread(sandbox_level, settings)
        recovered = await state.runs.recover(resume=settings.service.resume_on_start)
        if recovered:
            log.warning(
                "%d run(s) left unfinished by the previous server %s",
                len(recovered),
                "are continued" if settings.service.resume_on_start else "marked interrupted",
            )
        reloader, watch = _watch_config(state.runtime)
        app.state.config_reloader = reloader
        try:
            yield
        finally:
            reloader.stop()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await state.runs.drain(settings.service.drain_timeout)
            await state.runtime.close()
            state.runtime = None

    app = FastAPI(
        title="OpenManus API",
        version="0.1.0",
        description="The LangGraph API subset that langgraph-sdk drives, over OpenManus sessions.",
        lifespan=lifespan,
    )
    app.state.om = state
    if settings.service.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.service.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(
        GuardMiddleware,
        token=required_token(settings, host),
        max_body=settings.service.max_body_kb * 1024,
    )
    _errors(app)
    _health(app, state)
    _assistants(app)
    _threads(app, state)
    _runs(app, state)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status, headers=exc.headers)

    @app.exception_handler(OpenManusError)
    async def user_error(request: Request, exc: OpenManusError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, 400)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error (see the server log)"}, 500)


# ---- health ------------------------------------------------------------------------------
def _health(app: FastAPI, state: State) -> None:
    @app.get("/ok", tags=["health"])
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/ready", tags=["health"])
    async def ready() -> JSONResponse:
        runs = state.runs
        if runs is None or not runs.accepting:
            return JSONResponse({"ready": False}, 503)
        return JSONResponse({"ready": True})

    @app.get("/health", tags=["health"])
    async def health() -> JSONResponse:
        database = await _database_health(state)
        breakers = _breaker_health(state)
        # A model endpoint's open breaker: runs still go (to a fallback, or fail fast) but the
        # service is not what it should be; ``degraded`` keeps 200 (only ``unavailable`` is 503).
        model_open = any(b["state"] == "open" and b["name"].startswith("model ")
                         for b in breakers)
        status = "unavailable" if not database["ok"] else "degraded" if model_open else "ok"
        body = {
            "status": status,
            "database": database,
            "breakers": breakers,
            "sandbox": {"level": state.sandbox},
            "model": await _model_health(state),
            "runs": {
                "active": state.runs.running if state.runs else 0,
                "queued": state.runs.waiting if state.runs else 0,
                "accepting": bool(state.runs and state.runs.accepting),
            },
        }
        return JSONResponse(body, 200 if database["ok"] else 503)

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        if state.runtime is not None:
            try:
                caches = await api.cache_stats(state.runtime)
            except Exception:  # a damaged database: the rest of the scrape still matters
                caches = {}
            state.metrics.resilience.update(api.resilience_status(state.runtime), caches)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/info", tags=["health"])
    async def info() -> dict[str, Any]:
        return {"version": "0.1.0", "flags": {"assistants": True, "crons": False}}


def _breaker_health(state: State) -> list[dict[str, Any]]:
    """Each circuit breaker this process has used: name, state, failures in a row, last error."""
    if state.runtime is None:
        return []
    return [{k: b[k] for k in ("name", "state", "failures", "last_error")}
            for b in api.resilience_status(state.runtime)["breakers"]]


async def _database_health(state: State) -> dict[str, Any]:
    runtime = state.runtime
    if runtime is None:
        return {"ok": False, "error": "not open"}
    try:
        size = await api.database_size(runtime)
        await api.list_sessions(runtime)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": runtime.db.damaged is None, "size_bytes": size,
            "damaged": runtime.db.damaged is not None}


async def _model_health(state: State) -> dict[str, Any]:
    """The configured model and whether its endpoint answers (checked at most every 30 s)."""
    checked, cached = state.model_probe
    if cached and time.monotonic() - checked < 30:
        return cached
    settings = state.settings
    try:
        _, info = api.make_model(settings)
    except OpenManusError as exc:
        return {"spec": settings.model.spec, "state": "misconfigured", "error": exc.message}
    result: dict[str, Any] = {"spec": info.spec}
    if info.spec.startswith("scripted:"):
        result["state"] = "offline"
    else:
        base = (settings.model.base_url or "https://api.openai.com/v1").rstrip("/")
        key = settings.model.api_key.get_secret_value() if settings.model.api_key else ""
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                r = await client.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"})
            result["state"] = "reachable" if r.status_code < 500 else "failing"
            result["status_code"] = r.status_code
        except httpx.HTTPError as exc:
            result["state"] = "unreachable"
            result["error"] = type(exc).__name__
    state.model_probe = (time.monotonic(), result)
    return result


# ---- assistants --------------------------------------------------------------------------
def _assistants(app: FastAPI) -> None:
    @app.post("/assistants/search", tags=["assistants"])
    async def search_assistants(body: AssistantSearch) -> list[dict[str, Any]]:
        found = [assistants.describe(p) for p in assistants.profiles()]
        if body.graph_id:
            found = [a for a in found if a["graph_id"] == body.graph_id]
        if body.name:
            found = [a for a in found if a["name"] == body.name]
        if body.metadata:
            found = [
                a for a in found
                if all(a["metadata"].get(k) == v for k, v in body.metadata.items())
            ]
        return found[body.offset : body.offset + body.limit]

    @app.get("/assistants/{assistant_id}", tags=["assistants"])
    async def get_assistant(assistant_id: str) -> dict[str, Any]:
        profile = assistants.resolve(assistant_id)
        if profile is None:
            raise ApiError(404, f"assistant {assistant_id} not found")
        return assistants.describe(profile)


# ---- threads -----------------------------------------------------------------------------
async def _thread_view(state: State, session: Any) -> dict[str, Any]:
    snapshot = await api.session_state(session)
    question = state.pool.questions.get(session.id)
    return wire.thread(session.record, snapshot, busy=state.pool.busy(session.id),
                       asking=question.interrupt if question else None)


def _threads(app: FastAPI, state: State) -> None:
    @app.post("/threads", tags=["threads"])
    async def create_thread(body: ThreadCreate) -> dict[str, Any]:
        if body.thread_id is None:
            return await _create_thread(body)
        async with state.naming:  # two requests for one new id: one creates it
            return await _create_thread(body)

    async def _create_thread(body: ThreadCreate) -> dict[str, Any]:
        runtime = state.rt
        metadata = wire.jsonable(body.metadata or {})
        if body.thread_id is not None:
            if not THREAD_ID.match(body.thread_id):
                raise ApiError(422, "thread_id: letters, digits, '-' and '_' (64 at most)")
            try:
                existing = await api.get_session(runtime, body.thread_id)
            except OpenManusError:
                existing = None
            if existing is not None and existing.id == body.thread_id:
                if body.if_exists == "do_nothing":
                    return await _thread_view(state, await state.pool.open_thread(existing.id))
                raise ApiError(409, f"thread {body.thread_id} already exists")
        workspace = metadata.get("workspace")
        if workspace is not None and not isinstance(workspace, str):
            raise ApiError(422, "metadata.workspace must be a folder path")
        if workspace:
            api.ensure_workspace_allowed(workspace, runtime.settings)
        session = await runtime.create_session(
            session_id=body.thread_id,
            workspace=workspace or None,
            profile=metadata.get("profile") if metadata.get("profile") in api.PROFILES else None,
        )
        if metadata:
            await runtime.db.set_meta(session.id, "api_metadata", metadata)
            session.record.meta = {**session.record.meta, "api_metadata": metadata}
        return await _thread_view(state, session)

    @app.get("/threads/{thread_id}", tags=["threads"])
    async def get_thread(thread_id: str) -> dict[str, Any]:
        return await _thread_view(state, await state.pool.open_thread(thread_id))

    @app.patch("/threads/{thread_id}", tags=["threads"])
    async def update_thread(thread_id: str, body: ThreadPatch) -> dict[str, Any]:
        session = await state.pool.open_thread(thread_id)
        metadata = {**(session.record.meta.get("api_metadata") or {}),
                    **wire.jsonable(body.metadata or {})}
        await state.rt.db.set_meta(session.id, "api_metadata", metadata)
        session.record.meta = {**session.record.meta, "api_metadata": metadata}
        return await _thread_view(state, session)

    @app.delete("/threads/{thread_id}", status_code=204, tags=["threads"])
    async def delete_thread(thread_id: str) -> Response:
        session = await state.pool.open_thread(thread_id)
        if state.pool.busy(session.id) or api.is_session_running(state.rt.db.path, session.id):
            raise ApiError(409, f"thread {thread_id} is busy: cancel its run first")
        await api.delete_session(state.rt, session.id)
        return Response(status_code=204)

    @app.post("/threads/{thread_id}/copy", tags=["threads"])
    async def copy_thread(thread_id: str) -> dict[str, Any]:
        """A new thread with the current branch of this one (``sessions copy``)."""
        session = await state.pool.open_thread(thread_id)
        try:
            copied = await api.copy_branch(session)
        except OpenManusError as exc:
            raise ApiError(400, exc.message) from None
        return await _thread_view(state, copied)

    @app.post("/threads/count", tags=["threads"])
    async def count_threads(body: ThreadSearch) -> int:
        body.limit, body.offset = 1_000_000, 0
        return len(await search_threads(body))

    @app.post("/threads/search", tags=["threads"])
    async def search_threads(body: ThreadSearch) -> list[dict[str, Any]]:
        records = await api.list_sessions(state.rt)
        if body.ids is not None:
            wanted = set(body.ids)
            records = [r for r in records if r.id in wanted]
        if body.sort_order == "asc":
            records.reverse()
        found: list[dict[str, Any]] = []
        skipped = 0
        for record in records:
            session = await state.rt.open_session(record.id)
            view = await _thread_view(state, session)
            if body.status and view["status"] != body.status:
                continue
            if body.metadata and any(
                view["metadata"].get(k) != v for k, v in body.metadata.items()
            ):
                continue
            if body.values and any(view["values"].get(k) != v for k, v in body.values.items()):
                continue
            if skipped < body.offset:
                skipped += 1
                continue
            found.append(view)
            if len(found) >= body.limit:
                break
        return found

    @app.get("/threads/{thread_id}/state", tags=["threads"])
    async def get_state(thread_id: str) -> dict[str, Any]:
        session = await state.pool.open_thread(thread_id)
        question = state.pool.questions.get(session.id)
        return wire.thread_state(session.id, await api.session_state(session),
                                 asking=question.interrupt if question else None)

    @app.get("/threads/{thread_id}/state/{checkpoint_id}", tags=["threads"])
    async def get_state_at(thread_id: str, checkpoint_id: str) -> dict[str, Any]:
        session = await state.pool.open_thread(thread_id)
        try:
            snapshot = await api.session_state(session, checkpoint_id)
        except OpenManusError:
            raise ApiError(404, f"checkpoint {checkpoint_id} not found") from None
        return wire.thread_state(session.id, snapshot)

    @app.post("/threads/{thread_id}/state/checkpoint", tags=["threads"])
    async def post_state_at(thread_id: str, body: HistoryRequest) -> dict[str, Any]:
        checkpoint = body.checkpoint.checkpoint_id if body.checkpoint else None
        if checkpoint is None:
            return await get_state(thread_id)
        return await get_state_at(thread_id, checkpoint)

    @app.post("/threads/{thread_id}/state", tags=["threads"])
    async def update_state(thread_id: str, body: StateUpdate) -> dict[str, Any]:
        """An edit becomes a fork, as in the workbench (``History.fork``): ``values`` with
        ``messages`` go back to where the run of the checkpoint started (a run with the edited
        message as input follows); ``{"tool_calls": {call_id: args}}`` and / or ``{"text":
        ...}`` rewrite the model's reply at the checkpoint, and no values retries the step (a
        run with no input continues either). Returns the new branch's checkpoint."""
        session = await state.pool.open_thread(thread_id)
        if state.pool.busy(session.id):
            raise ApiError(409, f"thread {thread_id} is busy")
        at = body.checkpoint_id or (body.checkpoint.checkpoint_id if body.checkpoint else None)
        if at is None:
            at = await session.history.current_checkpoint()
        if at is None:
            raise ApiError(400, "the thread has no checkpoint to fork from")
        values = body.values if isinstance(body.values, dict) else {}
        if isinstance(body.values, list):
            raise ApiError(422, "values must be one object")
        message = None
        if "messages" in values:
            from openmanus_tui.service.runs import task_text

            message = task_text({"messages": values["messages"]})
        calls = values.get("tool_calls")
        if calls is not None and not (
            isinstance(calls, dict) and all(isinstance(v, dict) for v in calls.values())
        ):
            raise ApiError(422, "tool_calls must map call ids to new arguments")
        text = values.get("text")
        if text is not None and not isinstance(text, str):
            raise ApiError(422, "text must be a string")
        try:
            at = await session.history.resolve(at)
            head = await session.history.fork(at, message=message, call_args=calls, text=text,
                                              force=True)
        except OpenManusError as exc:
            raise ApiError(400, exc.message) from None
        return {"checkpoint": wire.checkpoint(session.id, head)}

    @app.post("/threads/{thread_id}/history", tags=["threads"])
    async def history(thread_id: str, body: HistoryRequest) -> list[dict[str, Any]]:
        session = await state.pool.open_thread(thread_id)
        before = body.before
        if before is not None and not isinstance(before, str):
            before = before.checkpoint_id
        snapshots = await api.session_state_history(session, limit=body.limit, before=before)
        return [wire.thread_state(session.id, s) for s in snapshots]

    @app.get("/threads/{thread_id}/runs", tags=["runs"])
    async def list_runs(
        thread_id: str, limit: int = Query(10, ge=1, le=1000), offset: int = Query(0, ge=0)
    ) -> list[dict[str, Any]]:
        session = await state.pool.open_thread(thread_id)
        records = await state.pool.store.for_thread(session.id, limit=limit, offset=offset)
        live = state.pool.handles
        return [
            live[r.run_id].as_dict() if r.run_id in live else run_dict(r) for r in records
        ]


# ---- runs --------------------------------------------------------------------------------
def _sse(handle: RunHandle, modes: set[str], cancel_on_disconnect: bool,
         pool: RunManager, after: int | None = None) -> EventSourceResponse:
    """The run's stream. Every part has an id; ``Location`` names ``GET …/stream``, where
    ``Last-Event-ID`` (``after``) picks up after the last part a client got: the SDK goes
    there by itself when a transport error cuts the stream while the run goes on."""

    attempt = handle.attempt

    async def events() -> AsyncIterator[dict[str, str]]:
        finished = False
        try:
            if after is None:
                yield {"event": "metadata", "id": f"{attempt}-0",
                       "data": json.dumps({"run_id": handle.run_id, "attempt": attempt})}
            async for number, event, data in handle.follow(modes, after or 0):
                yield {"event": event, "id": f"{attempt}-{number}",
                       "data": json.dumps(data, default=str)}
            finished = True
            await _after(handle)
        finally:
            if not finished and cancel_on_disconnect:
                await pool.cancel(handle, wait=False)

    return EventSourceResponse(
        events(),
        ping=HEARTBEAT_S,
        headers={"Content-Location": _run_path(handle),
                 "Location": f"{_run_path(handle)}/stream"},
    )


def _final_values(handle: RunHandle) -> StreamingResponse:
    """The run's final values once it ends, with a newline every ``HEARTBEAT_S`` meanwhile
    (JSON allows the whitespace; it keeps proxies from closing a long wait)."""

    async def body() -> AsyncIterator[bytes]:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(handle.done.wait()), HEARTBEAT_S)
                break
            except TimeoutError:
                yield b"\n"
        await _after(handle)
        yield json.dumps(wire.jsonable(handle.final)).encode()

    return StreamingResponse(
        body(), media_type="application/json",
        headers={"Content-Location": _run_path(handle)},
    )


def _run_path(handle: RunHandle) -> str:
    return f"/threads/{handle.record.thread_id}/runs/{handle.run_id}"


def _stream_modes(body: RunCreate) -> set[str]:
    modes = set(body.modes())
    if "messages-tuple" in modes or "messages" in modes:
        modes.add("messages")
    return modes


async def _stateless(state: State, body: RunCreate, *, parts: bool) -> RunHandle:
    """A run with no thread (``/runs/...``): on a new thread, deleted once the run is over
    (``on_completion`` ``delete``, the default) unless it ended waiting for an answer."""
    session = await state.rt.create_session()
    try:
        handle = await state.pool.create(session.id, body, parts=parts)
    except BaseException:
        await api.delete_session(state.rt, session.id)
        raise
    if body.on_completion != "keep":

        async def delete_when_over() -> None:
            if handle.task is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(handle.task)
            if handle.record.status != "interrupted" and state.runtime is not None:
                with contextlib.suppress(OpenManusError):
                    await api.delete_session(state.runtime, session.id)

        state.cleanups.add(task := asyncio.create_task(delete_when_over()))
        task.add_done_callback(state.cleanups.discard)
        handle.cleanup = task  # the response ends after it: the client sees it done
    return handle


async def _after(handle: RunHandle) -> None:
    if handle.cleanup is not None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(handle.cleanup)


def _runs(app: FastAPI, state: State) -> None:
    @app.post("/runs/stream", tags=["runs"])
    async def stream_stateless(body: RunCreate) -> EventSourceResponse:
        handle = await _stateless(state, body, parts=True)
        return _sse(handle, _stream_modes(body), body.on_disconnect == "cancel", state.pool)

    @app.post("/runs/wait", tags=["runs"])
    async def wait_stateless(body: RunCreate) -> StreamingResponse:
        return _final_values(await _stateless(state, body, parts=False))

    @app.post("/runs", tags=["runs"])
    async def create_stateless(body: RunCreate) -> JSONResponse:
        handle = await _stateless(state, body, parts=True)
        return JSONResponse(handle.as_dict(), headers={"Content-Location": _run_path(handle)})

    @app.post("/threads/{thread_id}/runs/stream", tags=["runs"])
    async def stream_run(thread_id: str, body: RunCreate) -> EventSourceResponse:
        handle = await state.pool.create(thread_id, body)
        return _sse(handle, _stream_modes(body), body.on_disconnect == "cancel", state.pool)

    @app.post("/threads/{thread_id}/runs", tags=["runs"])
    async def create_run(thread_id: str, body: RunCreate) -> JSONResponse:
        handle = await state.pool.create(thread_id, body)
        return JSONResponse(handle.as_dict(), headers={"Content-Location": _run_path(handle)})

    @app.post("/threads/{thread_id}/runs/wait", tags=["runs"])
    async def wait_run(thread_id: str, body: RunCreate) -> StreamingResponse:
        handle = await state.pool.create(thread_id, body, parts=False)
        return _final_values(handle)

    @app.get("/threads/{thread_id}/runs/{run_id}", tags=["runs"])
    async def get_run(thread_id: str, run_id: str) -> dict[str, Any]:
        found = await state.pool.get(thread_id, run_id)
        return found.as_dict() if isinstance(found, RunHandle) else run_dict(found)

    @app.get("/threads/{thread_id}/runs/{run_id}/join", tags=["runs"])
    async def join_run(thread_id: str, run_id: str) -> Any:
        found = await state.pool.get(thread_id, run_id)
        if isinstance(found, RunHandle):
            return _final_values(found)
        session = await state.pool.open_thread(thread_id)
        snapshot = await api.session_state(session)
        values = wire.values(snapshot)
        if pending := wire.interrupts(snapshot):
            values["__interrupt__"] = pending
        return values

    @app.get("/threads/{thread_id}/runs/{run_id}/stream", tags=["runs"])
    async def join_stream(
        request: Request,
        thread_id: str, run_id: str,
        stream_mode: list[str] | None = Query(None),
        cancel_on_disconnect: bool = Query(False),
    ) -> Response:
        found = await state.pool.get(thread_id, run_id)
        if not isinstance(found, RunHandle):
            raise ApiError(404, f"run {run_id} is not live in this server")
        wanted = {m for m in stream_mode or () if m}  # the SDK sends stream_mode= for none
        modes = wanted if wanted else _stream_modes(found.body)
        if "messages-tuple" in modes:
            modes.add("messages")
        # "ATTEMPT-N": part N of that attempt; a run continued by a restarted server is a
        # new attempt, streamed from its start (with its metadata event).
        attempt, _, number = (request.headers.get("last-event-id") or "").partition("-")
        after = (
            int(number) if attempt == str(found.attempt) and number.isdigit() else None
        )
        return _sse(found, modes, cancel_on_disconnect, state.pool, after)

    @app.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, tags=["runs"])
    async def delete_run(thread_id: str, run_id: str) -> Response:
        """Forget a finished run (its steps stay in the thread)."""
        found = await state.pool.get(thread_id, run_id)
        record = found.record if isinstance(found, RunHandle) else found
        if record.status in ("pending", "running") or (
            isinstance(found, RunHandle) and not found.done.is_set()
        ):
            raise ApiError(409, f"run {run_id} is not finished: cancel it first")
        await state.pool.forget(run_id)
        return Response(status_code=204)

    @app.post("/threads/{thread_id}/runs/{run_id}/cancel", tags=["runs"])
    async def cancel_run(
        thread_id: str, run_id: str,
        wait: int = Query(0, ge=0, le=1),
        action: str = Query("interrupt", pattern="^(interrupt|rollback)$"),
    ) -> Response:
        found = await state.pool.get(thread_id, run_id)
        if not isinstance(found, RunHandle):
            if found.status in ("pending", "running"):
                raise ApiError(409, f"run {run_id} is not live in this server")
            return Response(status_code=202 if not wait else 200)
        await state.pool.cancel(found, action, wait=bool(wait))
        if wait:
            return JSONResponse(found.as_dict())
        return Response(status_code=202)
