"""Long-term memory: saved in one session, recalled and found in another (full-text and
semantic through the loopback embeddings endpoint), with namespaces and last-used times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec, assistant_turns_since_user

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.errors import OpenManusError
from openmanus_tui.memory.longterm import fts_query
from openmanus_tui.runtime.session import Runtime


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    return llm_server


async def test_memories_saved_in_one_session_are_found_in_another(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        k = assistant_turns_since_user(body["messages"])
        if user.startswith("Remember") and k == 0:
            return Reply(
                tool_calls=[
                    ToolCallSpec(
                        "memory_save",
                        {
                            "text": "The user prefers tabs over spaces for indentation.",
                            "scope": "user",
                            "kind": "preference",
                        },
                    ),
                    ToolCallSpec(
                        "memory_save",
                        {"text": "The staging database is on port 6543.", "scope": "project"},
                    ),
                    ToolCallSpec(
                        "memory_save", {"text": "This chat is about lunch.", "scope": "session"}
                    ),
                ]
            )
        if user.startswith("Which") and k == 0:
            return Reply(tool_calls=[ToolCallSpec("memory_search", {"query": "staging port"})])
        return Reply(text="ok")

    server.set_responder(responder)
    settings = load_settings({"approval": {"mode": "yolo"}})
    project = tmp_path / "proj"
    runtime = await Runtime.open(settings)
    seen: list[ev.Event] = []
    try:
        first = await runtime.create_session(workspace=project)
        await first.run("Remember my preferences and the staging port.", on_event=seen.append)
    finally:
        await runtime.close()
    saved = [e for e in seen if isinstance(e, ev.Memory) and e.action == "saved"]
    assert len(saved) == 3

    # A new process: a new runtime on the same database file.
    runtime = await Runtime.open(settings)
    seen = []
    try:
        second = await runtime.create_session(workspace=project)
        outcome = await second.run(
            "Which port does the staging database use?", on_event=seen.append
        )
        other = await runtime.create_session()  # another project, another session
        everything = await second.memory.memories()
        elsewhere = await other.memory.memories()
        found, mode = await other.memory.search("indentation tabs")
        nothing, _ = await other.memory.search("staging database port")
        with pytest.raises(OpenManusError, match="unknown memory scope"):
            await other.memory.save("x", scope="team")
    finally:
        await runtime.close()

    assert outcome.status == "completed"
    first_call = server.requests[-2]  # the second session's first model call
    system = first_call["messages"][0]["content"]
    # Recalled automatically: relevant to the request, from the user and project namespaces.
    assert "Long-term memories" in system and "port 6543" in system
    assert "lunch" not in system  # the first session's own notes stay with it
    tool_result = next(m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool")
    assert "port 6543" in tool_result and "fts search" in tool_result
    assert any(isinstance(e, ev.Memory) and e.action == "recalled" for e in seen)
    assert {m.scope for m in everything} == {"user", "project"}
    assert all(m.created > 0 and m.last_used >= m.created for m in everything)
    # The user scope follows the person to another project; the project scope does not.
    assert [m.scope for m in elsewhere] == ["user"]
    assert mode == "fts" and found[0].text.startswith("The user prefers tabs")
    assert nothing == []


async def test_semantic_search_through_an_embeddings_endpoint(server: OpenAITestServer) -> None:
    runtime = await Runtime.open(load_settings({"memory": {"embeddings_model": "test-embedding"}}))
    try:
        session = await runtime.create_session()
        memory = session.memory
        await memory.save("Our brand colour is teal.", scope="user")
        await memory.save("Deployments happen on Fridays.", scope="user")
        semantic, mode = await memory.search("which color is the logo", limit=1)
        fts_only, _ = await _without_embeddings(memory.longterm).search(
            "which color is the logo", memory.namespaces()
        )
    finally:
        await runtime.close()
    assert mode == "semantic"
    assert [m.text for m in semantic] == ["Our brand colour is teal."]
    assert fts_only == []  # "color" and "colour" share no word: full text alone finds nothing
    inputs = [b["input"] for b in server.embedding_requests]
    assert any("Our brand colour is teal." in i for i in inputs)
    assert any(i == ["which color is the logo"] or i == "which color is the logo" for i in inputs)


async def test_semantic_search_falls_back_to_full_text(server: OpenAITestServer) -> None:
    runtime = await Runtime.open(
        load_settings(
            {
                "memory": {
                    "embeddings_model": "test-embedding",
                    "embeddings_base_url": server.base_url + "/missing",
                }
            }
        )
    )
    try:
        session = await runtime.create_session()
        await session.memory.save("Deployments happen on Fridays.", scope="project")
        found, mode = await session.memory.search("when are deployments")
    finally:
        await runtime.close()
    assert mode.startswith("fts (semantic search unavailable")
    assert [m.text for m in found] == ["Deployments happen on Fridays."]


def test_fts_query_drops_stopwords_and_quotes_words() -> None:
    assert fts_query("What is the staging port?") == '"staging" OR "port"'
    assert fts_query("the of and") == ""
    assert fts_query('a "quoted" AND NOT x*') == '"quoted" OR "not"'


def _without_embeddings(longterm: Any) -> Any:
    clone = type(longterm).__new__(type(longterm))
    clone.__dict__.update(longterm.__dict__)
    clone.embeddings = None
    return clone
