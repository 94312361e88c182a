"""The research graph (research/graph.py) through a real Research session: the real
langchain-openai client against the loopback model server, the real SQLite file, workspace
documents as sources. The model here fabricates a source, cites a number no source has and
misquotes a page: the verifier must catch each one and the final report must not keep them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAITestServer, Reply

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.research.prompts import stage_of
from openmanus_tui.research.store import ResearchResults
from openmanus_tui.runtime.session import Runtime

DOCS = {
    "bridge.md": "# Harbour bridge history\n\nThe harbour bridge opened in 1932 after eight "
    "years of work. Today it carries about 160,000 vehicles a day. At the opening the mayor "
    "called it \u201ca marvel of steel and nerve\u201d.\n",
    "tolls.md": "# Toll report\n\nTolls on the harbour bridge were introduced in 1935. "
    "Bridge tolls rose by 12 percent in 2020.\n",
    "gazette.md": "# Old gazette\n\nThe harbour bridge opened in 1934, the gazette wrote, "
    "after a long delay.\n",
}
# What the model "finds" in each document (the last quote of bridge.md is not in it).
FINDINGS = {
    "bridge.md": [
        ("The harbour bridge opened in 1932.", "The harbour bridge opened in 1932 after eight "
         "years of work."),
        ("It carries about 160,000 vehicles a day.", "Today it carries about 160,000 vehicles "
         "a day."),
        ("The bridge is painted every year.", "The bridge is repainted every single year."),
    ],
    "tolls.md": [("Bridge tolls rose by 12 percent in 2020.",
                  "Bridge tolls rose by 12 percent in 2020.")],
    "gazette.md": [("The harbour bridge opened in 1934.",
                    "The harbour bridge opened in 1934, the gazette wrote")],
}


def _numbers(user: str) -> dict[str, int]:
    return {m.group(2): int(m.group(1))
            for m in re.finditer(r"^\[(\d+)\] .*? — file:(\S+)$", user, re.M)}


def responder(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    stage = stage_of(messages[0]["content"])
    user = messages[-1]["content"]
    if stage == "plan":
        return Reply(text=json.dumps({"sub_questions": ["When did the harbour bridge open?",
                                                         "How did the bridge tolls change?"]}))
    if stage == "queries":
        q = "bridge opened" if "open" in user else "tolls"
        return Reply(text=f'```json\n{{"queries": ["{q}"]}}\n```')
    if stage == "extract":
        name = re.search(r"\(file:(\S+)\)", user).group(1)  # type: ignore[union-attr]
        found = [{"claim": c, "quote": q, "relevance": 0.9} for c, q in FINDINGS[name]]
        return Reply(text="Here you are: " + json.dumps({"findings": found}))
    if stage == "report":
        n = {name: 99 for name in DOCS} | _numbers(user)  # a document not read: a bad number
        return Reply(text=(
            f"The harbour bridge opened in 1932 [{n['bridge.md']}], though an old gazette says "
            f"1934 [{n['gazette.md']}]. It carries about 160,000 vehicles a day "
            f"[{n['bridge.md']}]. Bridge tolls rose by 12 percent in 2020 [{n['tolls.md']}].\n"
            f"Tolls doubled to 40 dollars in 2021 [{n['tolls.md']}]. The mayor called it "
            f"\"a marvel of glass\" [{n['bridge.md']}]. Engineers from Mars designed it [9].\n"
        ))
    return Reply(text="{}")


class _NoWeb:
    """A web search backend that finds nothing: no test may reach the internet (the default
    backend, ddgs, would try)."""

    name = "none"

    async def search(self, query: str, max_results: int) -> list[Any]:
        return []


@pytest.fixture(autouse=True)
def no_web_search(monkeypatch: pytest.MonkeyPatch) -> None:
    from openmanus_tui.tools import search_backends

    search_backends.register_backend("none", lambda **_: _NoWeb())
    monkeypatch.setenv("OPENMANUS_SEARCH__BACKEND", "none")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    for name, text in DOCS.items():
        (ws / name).write_text(text)
    return ws


async def _research(workspace: Path, server: OpenAITestServer, **options: Any) -> Any:
    settings = load_settings({
        "approval": {"mode": "yolo"},
        "model": {"base_url": server.base_url, "api_key": "sk-test", "name": "test-model"},
    })
    events: list[ev.Event] = []

    def collect(e: ev.Event) -> None:
        events.append(e)

    async with await Runtime.open(settings) as runtime:
        session = await runtime.create_session(workspace=workspace, profile="research")
        outcome = await session.run("When did the harbour bridge open, and what do tolls cost?",
                                    on_event=collect, research=options or None)
        result = await ResearchResults(runtime.db).latest(session.id)
    return outcome, result, events


async def test_research_run_catches_fabricated_number_and_misquote(workspace: Path) -> None:
    with OpenAITestServer(responder) as server:
        outcome, result, events = await _research(workspace, server, depth="standard")
    assert outcome.status == "completed", outcome.reason
    report = outcome.final_answer
    caught = {(v["status"], v["number"]) for v in result.verification["verdicts"]
              if v["status"] != "supported"}
    statuses = sorted(s for s, _ in caught)
    assert statuses == ["fabricated", "misquote", "number_not_found"]
    body = report.split("## References")[0]
    assert "[9]" not in body and body.count("[unverified]") == 3
    # Supported citations survive, renumbered gap-free; the reference list is the cited ones.
    cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", body)})
    assert cited == list(range(1, len(cited) + 1)) and len(cited) == 3
    refs = re.findall(r"^\[(\d+)\] .* — (file:\S+)$", report, re.M)
    assert [int(n) for n, _ in refs] == cited
    # The invented quote was dropped before it could become a finding.
    assert not any("painted" in f.content for f in result.findings)
    # Cross-referencing: the opening year is contradicted, and the report lists it.
    contradicted = [c for c in result.cross_references if c.status == "contradicted"]
    assert contradicted and "1932" in contradicted[0].conflict
    assert "## Contradictions" in report and "gazette" in report.lower()
    assert all(f.supporting_evidence for f in result.findings)
    assert 0 < result.confidence <= 1
    # The stream: the research steps and the answer, as events.
    stages = [e.stage for e in events if isinstance(e, ev.ResearchStep)]
    assert stages[0] == "plan" and "verify" in stages and "cross_reference" in stages
    assert any(isinstance(e, ev.FinalAnswer) and e.text == report for e in events)
    usage = [e for e in events if isinstance(e, ev.Usage)]
    assert usage and usage[-1].total_tokens_in > 0 and usage[-1].total_tokens_out > 0


def _asking(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    if stage_of(messages[0]["content"]) == "plan" and "answered" not in messages[-1]["content"]:
        return Reply(text=json.dumps({"sub_questions": [], "clarify": "Which bridge?"}))
    return responder(body)


async def test_clarifying_question_pauses_and_resumes_with_the_answer(workspace: Path) -> None:
    with OpenAITestServer(_asking) as server:
        settings = load_settings({
            "approval": {"mode": "yolo"},
            "model": {"base_url": server.base_url, "api_key": "sk-test", "name": "test-model"},
        })
        async with await Runtime.open(settings) as runtime:
            session = await runtime.create_session(workspace=workspace, profile="research")
            first = await session.run("When did the bridge open?")
            assert first.status == "awaiting_approval" and "Which bridge?" in first.reason
        # Another process answers it (the checkpoint is in the SQLite file).
        asked: list[str] = []

        async def answer(question: str) -> str:
            asked.append(question)
            return "the harbour bridge"

        async with await Runtime.open(settings) as runtime:
            session = await runtime.open_session(session.id)
            events: list[ev.Event] = []

            def collect(e: ev.Event) -> None:
                events.append(e)

            second = await session.resume(ask_human=answer, on_event=collect)
        plans = [r for r in server.records if stage_of(r.body["messages"][0]["content"]) == "plan"]
    assert asked == ["Which bridge?"]
    assert second.status == "completed", second.reason
    assert "the harbour bridge" in plans[-1].body["messages"][-1]["content"]
    assert any(isinstance(e, ev.Clarification) and e.answer == "the harbour bridge"
               for e in events)


async def test_offline_demo_model_researches_workspace_documents(workspace: Path) -> None:
    settings = load_settings({"approval": {"mode": "yolo"},
                              "model": {"provider": "scripted", "name": "demo"}})
    async with await Runtime.open(settings) as runtime:
        session = await runtime.create_session(workspace=workspace, profile="research")
        outcome = await session.run(
            "When did the harbour bridge open?", research={"reading_list": ["tolls.md"]}
        )
        result = await ResearchResults(runtime.db).latest(session.id)
        registry = await runtime.sources.sources(session.id)
        labels = [n.label for n in (await session.history.tree()).nodes.values()]
    assert outcome.status == "completed", outcome.reason
    # Every citation the offline model wrote is a sentence of the cited file: all supported.
    assert result.verification["ok"] and result.verification["citations"] >= 2
    assert "1932" in outcome.final_answer and "[1]" in outcome.final_answer
    # The reading list is read first: source 1 even though it does not answer the question.
    assert result.sources[0].location == "file:tolls.md" and result.sources[0].from_reading_list
    assert any(c.status == "contradicted" for c in result.cross_references)
    # The registry knows every source read and which ones the report cites.
    assert {r.key for r in registry} >= {"file:bridge.md", "file:gazette.md", "file:tolls.md"}
    assert any(r.cited_by for r in registry if r.key == "file:bridge.md")
    # The branch tree names each research step.
    assert any(label.startswith("… plan: 1 sub-question") for label in labels)
    assert any(label.startswith("■ This report answers") for label in labels)


async def test_depth_sources_and_timeout_bound_the_work(workspace: Path) -> None:
    from openmanus_tui.runtime import api

    with OpenAITestServer(responder) as server:
        base = {"approval": {"mode": "yolo"},
                "model": {"base_url": server.base_url, "api_key": "sk", "name": "m"}}
        async with await Runtime.open(load_settings(
            {**base, "research": {"max_research_sources": 1}}
        )) as runtime:
            session = await runtime.create_session(workspace=workspace, profile="research")
            await session.run("When did the harbour bridge open?", research={"depth": "quick"})
            bounded = await ResearchResults(runtime.db).latest(session.id)
            # Deleting the session deletes its stored results too.
            await api.delete_session(runtime, session.id)
            assert await ResearchResults(runtime.db).latest(session.id) is None
        async with await Runtime.open(load_settings(
            {**base, "research": {"research_timeout": 0.001}}
        )) as runtime:
            session = await runtime.create_session(workspace=workspace, profile="research")
            await session.run("When did the harbour bridge open?",
                              research={"reading_list": ["gazette.md"]})
            timed_out = await ResearchResults(runtime.db).latest(session.id)
    # quick: one sub-question although the model proposed two; one new source at most.
    assert bounded.metadata["sub_questions"] == ["When did the harbour bridge open?"]
    assert len(bounded.sources) == 1
    # Past research_timeout no search round starts: only the reading list was read.
    assert [s.location for s in timed_out.sources] == ["file:gazette.md"]


async def test_cross_referencing_can_be_turned_off(workspace: Path) -> None:
    settings = load_settings({"approval": {"mode": "yolo"},
                              "model": {"provider": "scripted", "name": "demo"},
                              "research": {"enable_cross_referencing": False}})
    async with await Runtime.open(settings) as runtime:
        session = await runtime.create_session(workspace=workspace, profile="research")
        outcome = await session.run("When did the harbour bridge open?")
        result = await ResearchResults(runtime.db).latest(session.id)
    assert outcome.status == "completed", outcome.reason
    assert result.cross_references == [] and "## Contradictions" not in outcome.final_answer
    assert result.verification["ok"] and all(f.confidence > 0 for f in result.findings)


async def test_a_second_run_in_the_session_starts_from_nothing(workspace: Path) -> None:
    settings = load_settings({"approval": {"mode": "yolo"},
                              "model": {"provider": "scripted", "name": "demo"}})
    async with await Runtime.open(settings) as runtime:
        session = await runtime.create_session(workspace=workspace, profile="research")
        await session.run("When did the harbour bridge open?",
                          research={"reading_list": ["gazette.md"]})
        first = await ResearchResults(runtime.db).latest(session.id)
        await session.run("How did the bridge tolls change?",
                          research={"reading_list": ["tolls.md"]})
        second = await ResearchResults(runtime.db).latest(session.id)
        state = (await session.graph.aget_state(await session.current_config())).values
    assert [s.location for s in first.sources if s.from_reading_list] == ["file:gazette.md"]
    assert [s.location for s in second.sources if s.from_reading_list] == ["file:tolls.md"]
    assert second.query == "How did the bridge tolls change?"
    assert all("toll" in f.sub_question.lower() for f in second.findings)
    assert {r["stage"] for r in state["research_log"]} >= {"plan", "verify"}
    assert not any("harbour bridge open" in r["text"] for r in state["research_log"])


async def test_a_copied_session_takes_its_research_results(workspace: Path) -> None:
    from openmanus_tui.runtime import api

    settings = load_settings({"approval": {"mode": "yolo"},
                              "model": {"provider": "scripted", "name": "demo"}})
    async with await Runtime.open(settings) as runtime:
        session = await runtime.create_session(workspace=workspace, profile="research")
        await session.run("When did the harbour bridge open?")
        copy = await api.copy_branch(session)
        original = await ResearchResults(runtime.db).latest(session.id)
        copied = await ResearchResults(runtime.db).latest(copy.id)
        await api.delete_session(runtime, session.id)
        kept = await ResearchResults(runtime.db).latest(copy.id)
    assert copied is not None and copied.report == original.report
    assert kept is not None  # deleting the original leaves the copy's own
