"""Loopback OpenAI-compatible chat-completions server for the test suite (stdlib only).

Owns a tiny, deterministic stand-in for the OpenAI HTTP API that the real
``langchain_openai.ChatOpenAI`` / ``openai`` clients can talk to, in-process or
from a subprocess (``OPENAI_BASE_URL=server.base_url``). It binds 127.0.0.1 on
an ephemeral port only.

Endpoints:
  * ``POST /v1/chat/completions``, non-streamed JSON or SSE streaming
    (``data: {chunk}\\n\\n`` frames ending with ``data: [DONE]``), sent with
    chunked transfer encoding so that a cut-off stream is a protocol error
    for the client, as with a real server.
  * ``POST /v1/embeddings``: a deterministic embedding per input (hashed character
    trigrams of its words, L2-normalised, 64 dimensions unless ``dimensions`` is given), as
    floats or, when ``encoding_format`` is ``base64``, as little-endian float32. Texts that
    share word fragments ("colour" / "color") get similar vectors. Bodies are kept in
    ``embedding_requests``.
  * ``GET /v1/models``.
  * Anything else: 404 with an OpenAI-shaped ``{"error": {...}}`` body.

Stream layout (what langchain-openai needs, see design/LANGGRAPH.md): a first
delta carrying ``role``; the text split on word boundaries into several
``content`` deltas; each tool call as a first fragment with ``index``, ``id``,
``type`` and ``function.name`` (arguments ``""``) followed by the arguments
split into several fragments, calls one after the other (parallel calls use
indexes 0, 1, ...); a last chunk with ``finish_reason``; then, if
``stream_options.include_usage`` was requested, a ``choices: []`` usage chunk.

Typical use::

    with OpenAITestServer([Reply(tool_calls=[ToolCallSpec("ls", {"path": "."})]),
                           Reply(text="done")]) as server:
        llm = ChatOpenAI(model="test", api_key="test", base_url=server.base_url)
        ...
        assert server.records[0].streamed

As a pytest fixture::

    @pytest.fixture
    def openai_server():
        with OpenAITestServer() as server:
            yield server

Run standalone (prints the base URL, serves until Ctrl-C)::

    python tests/openai_server.py --text "hello from the test server"
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

HOST = "127.0.0.1"  # never anything else: tests must not open a port to the network
CREATED = 1_700_000_000  # fixed timestamp keeps responses byte-for-byte deterministic


@dataclass
class ToolCallSpec:
    """One tool call the model "makes".

    ``arguments`` as a dict is JSON-encoded; as a str it is sent verbatim, which
    is how tests send malformed or truncated JSON. ``id`` defaults to a value
    derived from the request content and the call's position, so a retried or
    replayed request gets the same ids.
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Reply:
    """One assistant turn. ``finish_reason`` None means "tool_calls" if there are
    tool calls, else "stop" (pass "length" to simulate truncation). ``usage`` is
    ``(prompt_tokens, completion_tokens)``; None estimates it from sizes."""

    text: str = ""
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    finish_reason: str | None = None
    usage: tuple[int, int] | None = None

    def resolved_finish_reason(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


FaultKind = Literal[
    "status",  # HTTP error `status` with an OpenAI error body (+ retry-after if set)
    "slow_first_token",  # stream: headers, sleep delay_s, then the reply; non-stream: sleep first
    "slow_response",  # sleep delay_s before sending anything at all (even headers)
    "disconnect_mid_stream",  # send `after_chunks` SSE frames then close (FIN), no [DONE]
    "reset_mid_stream",  # same, but close with a TCP RST (SO_LINGER 0)
    "stream_error_event",  # send `after_chunks` frames then `data: {"error": ...}`
    "malformed_json_body",  # 200 whose JSON body (or SSE frame) is not valid JSON
]


@dataclass
class Fault:
    """A failure applied to the next chat-completions requests, ``times`` of them.

    Faults are consumed in the order they were added. ``retry_after`` (seconds,
    floats allowed; the openai client honours them) adds a ``retry-after``
    header to ``status`` faults. For non-streamed requests the ``*_mid_stream``
    kinds send the headers and half the body, then close the socket.
    """

    kind: FaultKind
    status: int = 500
    delay_s: float = 0.0
    after_chunks: int = 1
    times: int = 1
    retry_after: float | None = None
    message: str | None = None


@dataclass
class RequestRecord:
    """What the server saw for one chat-completions request."""

    body: dict[str, Any]
    streamed: bool
    include_usage: bool
    tools: list[dict[str, Any]]
    headers: dict[str, str]
    fault: Fault | None


Responder = Callable[[dict[str, Any]], Reply | str]

# OpenAI's error `type` / `code` per status, so clients map them to the right exception.
_ERROR_SHAPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout", None),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "overloaded"),
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped error body for ``status``."""
    default = ("server_error" if status >= 500 else "invalid_request_error", None)
    err_type, code = _ERROR_SHAPES.get(status, default)
    return {"error": {"message": message or f"test server error {status}", "type": err_type,
                      "param": None, "code": code}}


def script_responder(replies: list[Reply], *, when_done: Reply | None = None) -> Responder:
    """A responder that picks its reply from the request content, not call order.

    The index is the number of assistant messages after the last user message in
    the request's ``messages``: the first model call of a turn gets ``replies[0]``,
    the call after one tool round gets ``replies[1]``, and so on. Retries,
    restarts and replays of the same conversation state therefore get the same
    reply, and each new user message starts the script again. Past the end the
    reply is ``when_done`` (default: the text "done", so an agent loop ends).
    """
    final = when_done if when_done is not None else Reply(text="done")

    def respond(body: dict[str, Any]) -> Reply:
        index = assistant_turns_since_user(body.get("messages") or [])
        return replies[index] if index < len(replies) else final

    return respond


def assistant_turns_since_user(messages: list[dict[str, Any]]) -> int:
    """Number of assistant messages after the last user message."""
    count = 0
    for message in reversed(messages):
        role = message.get("role")
        if role == "user":
            break
        if role == "assistant":
            count += 1
    return count


def echo_responder(body: dict[str, Any]) -> Reply:
    """Default responder: repeats the last user message's text."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return Reply(text=f"echo: {content}")
    return Reply(text="echo: (no user message)")


def split_words(text: str) -> list[str]:
    """Split on word boundaries keeping whitespace: "a b c" -> ["a ", "b ", "c"]."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def split_parts(text: str, parts: int = 3) -> list[str]:
    """Split ``text`` into up to ``parts`` non-empty pieces (arguments fragments)."""
    if len(text) <= 1:
        return [text]
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)]


def hashed_embedding(text: str, dims: int = 64) -> list[float]:
    """Hashed bag of character trigrams of the words of ``text``, L2-normalised."""
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        padded = f"#{word}#"
        for i in range(max(1, len(padded) - 2)):
            gram = padded[i:i + 3]
            slot = int.from_bytes(hashlib.sha1(gram.encode()).digest()[:4], "little") % dims
            vector[slot] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, owner: OpenAITestServer) -> None:
        self.owner = owner
        super().__init__((HOST, 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # As ThreadingMixIn, but the owner learns the socket and thread before the
        # thread runs, so close() can always end and join it.
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address),
                                  name=f"{self.owner.thread_name}-handler", daemon=True)
        self.owner._track(request, thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        self.owner._untrack(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, fault tests) are expected; stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # needed for chunked streaming and keep-alive
    server: _Server
    timeout = 30  # idle keep-alive connections do not live forever

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- routing ---------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "openmanus-test"}
                    for m in self.server.owner.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, error_body(404, f"Unknown path: GET {path}"))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path not in ("/v1/chat/completions", "/v1/embeddings"):
            self._send_json(404, error_body(404, f"Unknown path: POST {path}"))
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as exc:
            self._send_json(400, error_body(400, f"Invalid JSON body: {exc}"))
            return
        if path == "/v1/embeddings":
            self._embeddings(body)
            return
        self._chat_completions(body)

    # -- embeddings ----------------------------------------------------------------
    def _embeddings(self, body: dict[str, Any]) -> None:
        owner = self.server.owner
        with owner._lock:
            owner.embedding_requests.append(body)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        if not all(isinstance(t, str) for t in texts):
            self._send_json(400, error_body(400, "input must be strings (token arrays are not "
                                                 "supported by the test server)"))
            return
        dims = int(body.get("dimensions") or 64)
        data = []
        for i, text in enumerate(texts):
            vector = hashed_embedding(text, dims)
            if body.get("encoding_format") == "base64":
                packed = struct.pack(f"<{dims}f", *vector)
                embedding: Any = base64.b64encode(packed).decode()
            else:
                embedding = vector
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(_estimate_tokens(t) for t in texts)
        self._send_json(200, {"object": "list", "data": data,
                              "model": body.get("model", "test-embedding"),
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    # -- chat completions ----------------------------------------------------------
    def _chat_completions(self, body: dict[str, Any]) -> None:
        owner = self.server.owner
        streamed = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        fault = owner._record(RequestRecord(
            body=body, streamed=streamed, include_usage=include_usage,
            tools=list(body.get("tools") or []), headers=dict(self.headers.items()), fault=None))

        if fault is not None and fault.kind == "status":
            extra = {}
            if fault.retry_after is not None:
                extra["retry-after"] = f"{fault.retry_after:g}"
            self._send_json(fault.status, error_body(fault.status, fault.message), extra)
            return
        if fault is not None and fault.kind == "slow_response" and owner._sleep(fault.delay_s):
            return

        try:
            reply = owner._respond(body)
        except Exception as exc:  # a broken responder must fail the request, not hang it
            owner.errors.append(exc)
            self._send_json(500, error_body(500, f"responder raised {exc!r}"))
            return

        n = owner._next_id()
        try:
            if streamed:
                self._stream(body, reply, n, include_usage, fault)
            else:
                self._complete(body, reply, n, fault)
        except OSError:  # client went away (e.g. its timeout fired)
            self.close_connection = True

    def _completion(self, body: dict[str, Any], reply: Reply, n: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None,
                                   "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": _call_id(body, i, tc), "type": "function",
                 "function": {"name": tc.name, "arguments": tc.arguments_text()}}
                for i, tc in enumerate(reply.tool_calls)]
        return {"id": f"chatcmpl-test-{n}", "object": "chat.completion", "created": CREATED,
                "model": body.get("model", "test-model"), "system_fingerprint": None,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": reply.resolved_finish_reason()}],
                "usage": _usage(body, reply)}

    def _complete(self, body: dict[str, Any], reply: Reply, n: int, fault: Fault | None) -> None:
        owner = self.server.owner
        if fault is not None and fault.kind == "slow_first_token" and owner._sleep(fault.delay_s):
            return
        payload = json.dumps(self._completion(body, reply, n)).encode()
        if fault is not None and fault.kind == "malformed_json_body":
            payload = payload[: len(payload) // 2]  # valid prefix, invalid document
            self._send_bytes(200, payload)
            return
        if fault is not None and fault.kind in ("disconnect_mid_stream", "reset_mid_stream",
                                                "stream_error_event"):
            self._start(200, "application/json", {"Content-Length": str(len(payload))})
            self.wfile.write(payload[: len(payload) // 2])
            self._hang_up(reset=fault.kind == "reset_mid_stream")
            return
        self._send_bytes(200, payload)

    def _stream(self, body: dict[str, Any], reply: Reply, n: int, include_usage: bool,
                fault: Fault | None) -> None:
        owner = self.server.owner
        self._start(200, "text/event-stream", {"Transfer-Encoding": "chunked",
                                               "Cache-Control": "no-cache"})
        frames = list(_stream_frames(body, reply, n, include_usage))
        kind = fault.kind if fault is not None else None
        if fault is not None and kind == "slow_first_token" and owner._sleep(fault.delay_s):
            return
        if kind == "malformed_json_body":
            self._write_chunk(b'data: {"id": "chatcmpl-broken", "choices": [\n\n')
            self._write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        cut = None
        if fault is not None and kind in ("disconnect_mid_stream", "reset_mid_stream",
                                          "stream_error_event"):
            cut = fault.after_chunks
        for i, frame in enumerate(frames):
            if cut is not None and i >= cut:
                break
            self._write_chunk(b"data: " + json.dumps(frame).encode() + b"\n\n")
        if kind in ("disconnect_mid_stream", "reset_mid_stream"):
            self._hang_up(reset=kind == "reset_mid_stream")
            return
        if fault is not None and kind == "stream_error_event":
            err = error_body(fault.status, fault.message)
            self._write_chunk(b"data: " + json.dumps(err).encode() + b"\n\n")
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    # -- low-level writing ---------------------------------------------------------
    def _start(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_bytes(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                    content_type: str = "application/json") -> None:
        try:
            self._start(status, content_type,
                        {"Content-Length": str(len(payload)), **(headers or {})})
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(obj).encode(), headers)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _hang_up(self, *, reset: bool) -> None:
        """Close the socket without finishing the HTTP body."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _call_id(body: dict[str, Any], index: int, call: ToolCallSpec) -> str:
    """Deterministic id: same request content + position -> same id (retries, replays)."""
    if call.id is not None:
        return call.id
    seed = json.dumps([body.get("messages"), index, call.name, call.arguments_text()],
                      sort_keys=True, default=str)
    return "call_" + hashlib.sha1(seed.encode()).hexdigest()[:16]


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = _estimate_tokens(json.dumps(body.get("messages") or []))
        completion = _estimate_tokens(
            reply.text + "".join(tc.name + tc.arguments_text() for tc in reply.tool_calls))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _stream_frames(body: dict[str, Any], reply: Reply, n: int,
                   include_usage: bool) -> Iterator[dict[str, Any]]:
    base = {"id": f"chatcmpl-test-{n}", "object": "chat.completion.chunk", "created": CREATED,
            "model": body.get("model", "test-model"), "system_fingerprint": None}
    if include_usage:
        base["usage"] = None  # as OpenAI: null on every chunk but the last

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in split_words(reply.text):
        yield chunk({"content": piece})
    for i, call in enumerate(reply.tool_calls):
        yield chunk({"tool_calls": [{"index": i, "id": _call_id(body, i, call), "type": "function",
                                     "function": {"name": call.name, "arguments": ""}}]})
        for fragment in split_parts(call.arguments_text()):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": fragment}}]})
    yield chunk({}, reply.resolved_finish_reason())
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(body, reply)}


class OpenAITestServer:
    """The loopback server. Use as a context manager (or ``start()`` / ``close()``).

    ``responder`` is a callable ``(request_body) -> Reply | str``, a list of
    replies (wrapped with :func:`script_responder`) or None (echo the last user
    message). ``requests`` holds every chat-completions body received, in order;
    ``records`` the same with streaming flag, tools, headers and applied fault.
    """

    def __init__(self, responder: Responder | list[Reply] | None = None, *,
                 models: tuple[str, ...] = ("test-model",)) -> None:
        self.models = models
        self.records: list[RequestRecord] = []
        self.embedding_requests: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self._responder: Responder = echo_responder
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._ids = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.set_responder(responder)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> OpenAITestServer:
        if self._httpd is None:
            self._httpd = _Server(self)
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a slow fault
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            live = list(self._connections)
        for conn in live:  # end keep-alive handler threads blocked on reading
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            threads = [*self._handlers, self._thread]
        deadline = time.monotonic() + 5
        for thread in threads:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._httpd = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("OpenAITestServer is not started")
        return self._httpd.server_address[1]

    @property
    def thread_name(self) -> str:
        """Name of the serving thread; handler threads get it plus "-handler"."""
        return f"openai-test-server-{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what ``OPENAI_BASE_URL`` / ``base_url`` expect."""
        return f"http://{HOST}:{self.port}/v1"

    # -- configuration ---------------------------------------------------------------
    def set_responder(self, responder: Responder | list[Reply] | None) -> None:
        if responder is None:
            responder = echo_responder
        elif isinstance(responder, list):
            responder = script_responder(responder)
        self._responder = responder

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; queued faults apply in order, each to ``fault.times`` requests."""
        if fault.times < 1:
            raise ValueError("Fault.times must be >= 1")
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Drop the queued faults: the server answers normally again."""
        with self._lock:
            self._faults.clear()

    def inject(self, kind: FaultKind, **options: Any) -> Fault:
        """Shorthand: ``server.inject("status", status=429, retry_after=0.05)``."""
        fault = Fault(kind, **options)
        self.add_fault(fault)
        return fault

    # -- observations ----------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.records]

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.records)

    # -- used by the handler -----------------------------------------------------------
    def _record(self, record: RequestRecord) -> Fault | None:
        """Store the request and take the fault (if any) that applies to it."""
        with self._lock:
            fault = None
            if self._faults:
                head = self._faults[0]
                fault = Fault(**{**head.__dict__, "times": 1})
                head.times -= 1
                if head.times == 0:
                    self._faults.pop(0)
            record.fault = fault
            self.records.append(record)
            return fault

    def _respond(self, body: dict[str, Any]) -> Reply:
        reply = self._responder(body)
        return Reply(text=reply) if isinstance(reply, str) else reply

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server is closing; True means "closing, give up"."""
        return self._stopping.wait(seconds)

    def _track(self, conn: socket.socket, thread: threading.Thread) -> None:
        """Remember live connections and handler threads so close() can end them."""
        with self._lock:
            self._connections.add(conn)
            self._handlers = {t for t in self._handlers if t.is_alive()}
            self._handlers.add(thread)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", help="always reply with this text (default: echo)")
    args = parser.parse_args(argv)
    responder: Responder | None = (lambda _body: Reply(text=args.text)) if args.text else None
    with OpenAITestServer(responder) as server:
        print(server.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
