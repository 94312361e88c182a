"""Tests for tests/openai_server.py, driven through the real langchain-openai client.

Besides checking the server, these tests pin down what langchain-openai 1.7.3 /
openai 3.54 actually do with each failure, because the runtime's retry logic
depends on it (see the individual docstrings).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import openai
import pytest
from langchain_core.exceptions import ModelConnectionError, ModelTimeoutError
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from openai_server import (
    Fault,
    OpenAITestServer,
    Reply,
    ToolCallSpec,
    assistant_turns_since_user,
    script_responder,
)
from pydantic import BaseModel, Field


def chat(server: OpenAITestServer, **kwargs: object) -> ChatOpenAI:
    options: dict[str, object] = {"model": "test-model", "api_key": "test",
                                  "base_url": server.base_url, "streaming": True,
                                  "stream_usage": True, "max_retries": 0}
    options.update(kwargs)
    return ChatOpenAI(**options)  # type: ignore[arg-type]


def cause_chain(exc: BaseException) -> list[type[BaseException]]:
    chain: list[type[BaseException]] = []
    current: BaseException | None = exc
    while current is not None:
        chain.append(type(current))
        current = current.__cause__ or current.__context__
    return chain


PARALLEL = Reply(text="Listing two dirs.", tool_calls=[
    ToolCallSpec("list_dir", {"path": "/tmp/a", "recursive": True}),
    ToolCallSpec("read_file", {"path": "notes.txt", "max_bytes": 4096}),
])


# -- happy paths -------------------------------------------------------------------

def test_streamed_text_arrives_as_several_deltas_with_role_first() -> None:
    text = "The quick brown fox jumps over the lazy dog"
    with OpenAITestServer([Reply(text=text)]) as server:
        chunks = list(chat(server).stream("hi"))
        content_chunks = [c for c in chunks if c.content]
        assert len(content_chunks) == len(text.split())
        assert "".join(c.content for c in chunks) == text  # type: ignore[misc]
        record = server.records[0]
        assert record.streamed and record.include_usage
        assert record.body["messages"][-1] == {"role": "user", "content": "hi"}


def test_streamed_parallel_tool_calls_with_fragmented_arguments() -> None:
    with OpenAITestServer([PARALLEL]) as server:
        llm = chat(server)
        fragments: dict[int, int] = {}
        for chunk in llm.stream("go"):
            for tc in chunk.tool_call_chunks:
                if tc["args"]:
                    fragments[tc["index"]] = fragments.get(tc["index"], 0) + 1
        assert set(fragments) == {0, 1}
        assert all(count > 1 for count in fragments.values()), fragments

        message = llm.invoke("go")
        assert message.content == "Listing two dirs."
        assert [(c["name"], c["args"]) for c in message.tool_calls] == [
            ("list_dir", {"path": "/tmp/a", "recursive": True}),
            ("read_file", {"path": "notes.txt", "max_bytes": 4096}),
        ]
        ids = [c["id"] for c in message.tool_calls]
        assert len(set(ids)) == 2 and all(i and i.startswith("call_") for i in ids)
        assert message.invalid_tool_calls == []
        assert message.response_metadata["finish_reason"] == "tool_calls"


def test_usage_is_reported_streamed_and_not_streamed() -> None:
    with OpenAITestServer(lambda body: Reply(text="counted", usage=(11, 7))) as server:
        for streaming in (True, False):
            message = chat(server, streaming=streaming).invoke("hi")
            assert message.usage_metadata is not None
            assert (message.usage_metadata["input_tokens"],
                    message.usage_metadata["output_tokens"],
                    message.usage_metadata["total_tokens"]) == (11, 7, 18)
        # Without stream_usage a custom base_url gets no usage chunk (LANGGRAPH.md).
        message = chat(server, stream_usage=False).invoke("hi")
        assert message.usage_metadata is None
        assert not server.records[-1].include_usage


def test_estimated_usage_grows_with_prompt_size() -> None:
    with OpenAITestServer(lambda body: Reply(text="x")) as server:
        small = chat(server).invoke("hi").usage_metadata
        large = chat(server).invoke("hi " * 400).usage_metadata
        assert small is not None and large is not None
        assert large["input_tokens"] > small["input_tokens"] >= 1


def test_non_streamed_reply() -> None:
    with OpenAITestServer([PARALLEL]) as server:
        message = chat(server, streaming=False).invoke("go")
        assert message.content == "Listing two dirs."
        assert [c["name"] for c in message.tool_calls] == ["list_dir", "read_file"]
        assert message.response_metadata["finish_reason"] == "tool_calls"
        assert server.records[0].streamed is False
        assert "stream" not in server.requests[0] or not server.requests[0]["stream"]


def test_length_finish_reason_is_passed_through() -> None:
    with OpenAITestServer([Reply(text="cut sh", finish_reason="length")]) as server:
        for streaming in (True, False):
            message = chat(server, streaming=streaming).invoke("hi")
            assert message.content == "cut sh"
            assert message.response_metadata["finish_reason"] == "length"


def test_malformed_tool_call_arguments_streamed_vs_not() -> None:
    """Observed with langchain-openai 1.7.3:

    * truncated JSON ``{"path": "/tm``: streamed -> "repaired" into a valid call
      ``{"path": "/tm"}`` (no invalid_tool_calls!); non-streamed -> invalid_tool_calls
      with a JSONDecodeError message. Same with or without finish_reason="length".
    * not JSON at all: invalid_tool_calls both ways (streamed: ``error`` is None).
    * JSON that is not an object (``[1, 2]``): streamed -> invalid_tool_calls;
      non-streamed -> langchain raises a raw pydantic ``ValidationError`` while
      building the AIMessage (not an openai error!).
    * empty string: a valid call with ``{}`` both ways.
    """
    truncated = '{"path": "/tm'
    replies = {
        "truncated": Reply(tool_calls=[ToolCallSpec("ls", truncated)], finish_reason="length"),
        "garbage": Reply(tool_calls=[ToolCallSpec("ls", "not json at all")]),
        "array": Reply(tool_calls=[ToolCallSpec("ls", "[1, 2]")]),
        "empty": Reply(tool_calls=[ToolCallSpec("ls", "")]),
    }
    with OpenAITestServer(lambda body: replies[body["messages"][-1]["content"]]) as server:
        streamed, plain = chat(server), chat(server, streaming=False)

        repaired = streamed.invoke("truncated")
        assert repaired.tool_calls[0]["args"] == {"path": "/tm"}
        assert repaired.invalid_tool_calls == []
        assert repaired.response_metadata["finish_reason"] == "length"
        invalid = plain.invoke("truncated")
        assert invalid.tool_calls == []
        assert invalid.invalid_tool_calls[0]["args"] == truncated
        assert "not valid JSON" in (invalid.invalid_tool_calls[0]["error"] or "")

        for llm in (streamed, plain):
            garbage = llm.invoke("garbage")
            assert garbage.tool_calls == []
            assert garbage.invalid_tool_calls[0]["args"] == "not json at all"
            assert llm.invoke("empty").tool_calls[0]["args"] == {}

        assert streamed.invoke("array").invalid_tool_calls[0]["args"] == "[1, 2]"
        with pytest.raises(Exception) as raised:
            plain.invoke("array")
        assert type(raised.value).__name__ == "ValidationError"


class ReadFile(BaseModel):
    """Read a text file."""

    path: str = Field(description="file to read")
    max_bytes: int = 4096


def test_bind_tools_schema_is_recorded() -> None:
    with OpenAITestServer([Reply(tool_calls=[ToolCallSpec("ReadFile", {"path": "a.txt"})])]) \
            as server:
        message = chat(server).bind_tools([ReadFile]).invoke("read a.txt")
        assert message.tool_calls[0]["name"] == "ReadFile"
        tools = server.records[0].tools
        assert len(tools) == 1 and tools[0]["type"] == "function"
        function = tools[0]["function"]
        assert function["name"] == "ReadFile"
        assert function["description"] == "Read a text file."
        assert set(function["parameters"]["properties"]) == {"path", "max_bytes"}
        assert function["parameters"]["required"] == ["path"]


def test_script_responder_picks_by_conversation_state_not_call_order() -> None:
    replies = [Reply(tool_calls=[ToolCallSpec("ls", {"path": "."})]), Reply(text="two files")]
    with OpenAITestServer(replies) as server:
        llm = chat(server)
        first = llm.invoke([HumanMessage("list")])
        again = llm.invoke([HumanMessage("list")])  # a retry/replay of the same state
        assert first.tool_calls == again.tool_calls  # same ids too: derived from content
        call_id = first.tool_calls[0]["id"]
        history = [HumanMessage("list"), first, ToolMessage("a b", tool_call_id=call_id)]
        assert llm.invoke(history).content == "two files"
        after_end = [*history, AIMessage("two files"), ToolMessage("x", tool_call_id=call_id)]
        assert llm.invoke(after_end).content == "done"
        # A new user message restarts the script.
        restart = llm.invoke([*history, AIMessage("two files"), HumanMessage("again")])
        assert restart.tool_calls[0]["name"] == "ls"
        assert server.request_count == 5


def test_assistant_turn_counting() -> None:
    assert assistant_turns_since_user([]) == 0
    messages = [{"role": "system"}, {"role": "user"}, {"role": "assistant"}, {"role": "tool"},
                {"role": "assistant"}, {"role": "tool"}]
    assert assistant_turns_since_user(messages) == 2
    assert assistant_turns_since_user([*messages, {"role": "user"}]) == 0
    respond = script_responder([Reply(text="a")], when_done=Reply(text="end"))
    assert respond({"messages": messages}).text == "end"


# -- faults -------------------------------------------------------------------------

def test_rate_limit_then_success_is_retried_by_the_client() -> None:
    with OpenAITestServer([Reply(text="after retry")]) as server:
        server.add_fault(Fault("status", status=429, retry_after=0.05))
        message = chat(server, max_retries=1).invoke("hi")
        assert message.content == "after retry"
        assert server.request_count == 2
        assert server.records[0].fault is not None and server.records[1].fault is None


def test_rate_limit_without_retries_raises_rate_limit_error() -> None:
    with OpenAITestServer([Reply(text="unused")]) as server:
        server.inject("status", status=429, retry_after=0.05, times=2)
        with pytest.raises(openai.RateLimitError) as raised:
            chat(server).invoke("hi")
        assert raised.value.status_code == 429
        assert raised.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        assert server.request_count == 1
        assert chat(server, max_retries=1).invoke("hi").content == "unused"  # 2nd use, then ok
        assert server.request_count == 3


@pytest.mark.parametrize(("status", "error_class"), [
    (400, openai.BadRequestError),
    (401, openai.AuthenticationError),
    (404, openai.NotFoundError),
])
def test_client_errors_are_not_retried(status: int, error_class: type[Exception]) -> None:
    with OpenAITestServer([Reply(text="unused")]) as server:
        server.inject("status", status=status, message="nope")
        with pytest.raises(error_class) as raised:
            chat(server, max_retries=2).invoke("hi")
        assert "nope" in str(raised.value)
        assert server.request_count == 1


def test_server_errors_are_retried_up_to_max_retries() -> None:
    with OpenAITestServer([Reply(text="unused")]) as server:
        server.inject("status", status=503, retry_after=0.01, times=5)
        with pytest.raises(openai.InternalServerError):
            chat(server, max_retries=2).invoke("hi")
        assert server.request_count == 3


@pytest.mark.parametrize(("kind", "transport_error"), [
    ("disconnect_mid_stream", httpx2.RemoteProtocolError),
    ("reset_mid_stream", httpx2.ReadError),
])
def test_mid_stream_disconnect_raises_connection_error_and_is_not_retried(
        kind: str, transport_error: type[Exception]) -> None:
    """A stream cut after the headers raises langchain_openai's OpenAIConnectionError
    (subclass of openai.APIConnectionError and langchain_core ModelConnectionError),
    caused by httpx2.RemoteProtocolError (FIN) or httpx2.ReadError (RST). The openai
    client does NOT retry it, even with max_retries=2: retrying is the runtime's job.
    """
    with OpenAITestServer([Reply(text="one two three four five six")]) as server:
        server.add_fault(Fault(kind, after_chunks=3))  # type: ignore[arg-type]
        received: list[str] = []
        with pytest.raises(openai.APIConnectionError) as raised:
            for chunk in chat(server, max_retries=2).stream("hi"):
                received.append(str(chunk.content))
        assert "".join(received) == "one two "  # role frame + two content frames arrived
        assert isinstance(raised.value, ModelConnectionError)
        assert type(raised.value).__name__ == "OpenAIConnectionError"
        assert transport_error in cause_chain(raised.value)
        assert server.request_count == 1


def test_non_streamed_disconnect_is_retried_by_the_client() -> None:
    with OpenAITestServer([Reply(text="second try")]) as server:
        server.inject("disconnect_mid_stream")
        assert chat(server, streaming=False, max_retries=1).invoke("hi").content == "second try"
        assert server.request_count == 2


def test_slow_first_token_times_out() -> None:
    """A client ``timeout`` shorter than the first token raises langchain_openai's
    OpenAITimeoutError (subclass of openai.APITimeoutError -> APIConnectionError,
    and of langchain_core ModelTimeoutError), caused by httpx2.ReadTimeout.
    Streamed, the headers already arrived so the client does not retry;
    a stall before the headers ("slow_response") is retried.
    """
    with OpenAITestServer([Reply(text="late")]) as server:
        server.inject("slow_first_token", delay_s=10)
        with pytest.raises(openai.APITimeoutError) as raised:
            chat(server, timeout=0.3, max_retries=1).invoke("hi")
        assert isinstance(raised.value, ModelTimeoutError)
        assert type(raised.value).__name__ == "OpenAITimeoutError"
        assert httpx2.ReadTimeout in cause_chain(raised.value)
        assert server.request_count == 1

        server.inject("slow_response", delay_s=10)
        assert chat(server, timeout=0.3, max_retries=1).invoke("hi").content == "late"
        assert server.request_count == 3


def test_error_event_and_malformed_body() -> None:
    """An ``data: {"error": ...}`` frame mid-stream raises a bare openai.APIError (not
    wrapped by langchain, not retried); an unparsable body raises a bare
    json.JSONDecodeError, streamed or not."""
    with OpenAITestServer([Reply(text="a b c")]) as server:
        server.inject("stream_error_event", status=503, message="overloaded", after_chunks=2)
        with pytest.raises(openai.APIError, match="overloaded") as raised:
            chat(server, max_retries=2).invoke("hi")
        assert not isinstance(raised.value, openai.APIConnectionError)
        assert server.request_count == 1
        for streaming in (True, False):
            server.inject("malformed_json_body")
            with pytest.raises(json.JSONDecodeError):
                chat(server, streaming=streaming, max_retries=2).invoke("hi")
        assert server.request_count == 3


def test_faults_are_consumed_in_order_and_counted() -> None:
    with OpenAITestServer([Reply(text="ok")]) as server:
        server.inject("status", status=500, times=2)
        server.inject("status", status=400)
        kinds = []
        for _ in range(4):
            try:
                chat(server).invoke("hi")
                kinds.append("ok")
            except openai.APIStatusError as exc:
                kinds.append(str(exc.status_code))
        assert kinds == ["500", "500", "400", "ok"]
        with pytest.raises(ValueError):
            server.add_fault(Fault("status", times=0))


# -- transport, other endpoints, lifecycle -------------------------------------------------

def test_models_endpoint_and_unknown_paths() -> None:
    with OpenAITestServer(models=("alpha", "beta")) as server:
        client = openai.OpenAI(api_key="test", base_url=server.base_url, max_retries=0)
        assert [m.id for m in client.models.list()] == ["alpha", "beta"]
        for method, data in (("GET", None), ("POST", b"{}")):
            request = urllib.request.Request(server.base_url + "/nope", data=data, method=method)
            with pytest.raises(urllib.error.HTTPError) as raised:
                urllib.request.urlopen(request, timeout=5)
            assert raised.value.code == 404
            assert json.loads(raised.value.read())["error"]["type"] == "invalid_request_error"
        bad = urllib.request.Request(server.base_url + "/chat/completions", data=b"{nope",
                                     method="POST")
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(bad, timeout=5)
        assert raised.value.code == 400
        assert server.request_count == 0


def test_default_responder_echoes_and_errors_surface_as_500() -> None:
    with OpenAITestServer() as server:
        assert chat(server).invoke("ping").content == "echo: ping"

        def broken(body: dict) -> Reply:
            raise RuntimeError("responder bug")

        server.set_responder(broken)
        with pytest.raises(openai.InternalServerError, match="responder bug"):
            chat(server).invoke("ping")
        assert len(server.errors) == 1


def test_reachable_from_a_subprocess_via_openai_base_url(tmp_path: Path) -> None:
    code = (
        "from langchain_openai import ChatOpenAI\n"
        "m = ChatOpenAI(model='test-model', streaming=True, stream_usage=True).invoke('hi')\n"
        "print(m.content, m.tool_calls[0]['name'], m.usage_metadata['total_tokens'])\n"
    )
    reply = Reply(text="from subprocess", tool_calls=[ToolCallSpec("ls", {})], usage=(3, 4))
    with OpenAITestServer([reply]) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test"}
        env.pop("OPENAI_API_BASE", None)
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "from subprocess ls 7"
        assert server.records[0].streamed


def test_binds_loopback_only_and_shuts_down_cleanly() -> None:
    server = OpenAITestServer([Reply(text="x")])
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        port, thread_name = server.port, server.thread_name
        assert chat(server).invoke("warm up a keep-alive connection").content == "x"
        server.inject("slow_first_token", delay_s=60)
        outcome: list[BaseException | str] = []

        def call() -> None:
            try:
                outcome.append(str(chat(server, timeout=30).invoke("hi").content))
            except BaseException as exc:
                outcome.append(exc)

        client = threading.Thread(target=call, daemon=True)
        client.start()
        deadline = time.monotonic() + 10
        while server.request_count < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.request_count == 2
    # Closing wakes the handler stuck in the 60 s fault: the client fails instead of hanging.
    client.join(timeout=10)
    assert not client.is_alive()
    assert isinstance(outcome[0], openai.APIConnectionError)
    assert not [t for t in threading.enumerate() if t.name.startswith(thread_name)]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    server.close()  # idempotent


# -- one process, many event loops ---------------------------------------------------
def test_the_cached_async_client_belongs_to_the_first_event_loop() -> None:
    """langchain-openai keeps one async httpx client per (base URL, timeout) for the whole
    process, bound to the event loop it first ran in. A program has one loop; the test process
    has one per async test, and a loopback server can get the port an earlier test's server
    had: the later test's model calls then fail with "Event loop is closed" (a run that ends
    after its request; test_memory's compaction preview came back None this way). conftest's
    autouse ``forget_async_http_clients`` forgets the client after every test."""
    from conftest import _forget_async_http_clients

    with OpenAITestServer([Reply(text="one"), Reply(text="two")]) as server:
        async def ask() -> str:
            reply = await chat(server, streaming=False).ainvoke([HumanMessage("hi")])
            return str(reply.content)

        _forget_async_http_clients()
        assert asyncio.run(ask()) == "one"
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            asyncio.run(ask())  # a second loop, the first loop's client
        _forget_async_http_clients()
        assert asyncio.run(ask()) == "one"  # a new client: fine
