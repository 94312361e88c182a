"""The Writing profile runs the writing graph inside a session (the hook beside the research
graph's: ``Runtime.graph_for``): the real langchain-openai client against the loopback server,
the session's checkpoints, its events, the document written to the workspace and stored."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import use_server
from writing_model import WriterModel

from openmanus_tui import events as ev
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.tools.builtin import build_registry
from openmanus_tui.writing.records import WritingRecords

FIXTURES = Path(__file__).parent / "writing_fixtures"


async def test_a_writing_session_writes_the_document_into_its_workspace(
        tmp_path: Path, monkeypatch, llm_server) -> None:
    use_server(monkeypatch, llm_server)
    writer = WriterModel(bad_first_draft=True)
    llm_server.set_responder(writer)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    refs = json.loads((FIXTURES / "refs.json").read_text())[:2]
    (workspace / "references.json").write_text(json.dumps(refs))

    runtime = await Runtime.open(load_settings(), build_registry())
    try:
        session = await runtime.create_session(workspace=workspace, profile="writing")
        seen: list[ev.Event] = []
        outcome = await session.run("Why and how to write plainly", on_event=seen.append)
        assert outcome.status == "completed", outcome
        assert writer.tasks[:3] == ["TASK: outline", "TASK: draft", "TASK: draft"]
        assert writer.tasks.count("TASK: draft") == 3  # one revision of the failing section

        document = workspace / "writing-plainly.md"
        text = document.read_text()
        assert text.startswith("# Writing Plainly\n")
        assert "(Smith & Okafor, 2020)" in text and "## References" in text

        notices = [e.text for e in seen if isinstance(e, ev.Notice)]
        assert "writing: outline" in notices and "writing: assemble" in notices
        final = [e for e in seen if isinstance(e, ev.FinalAnswer)]
        assert len(final) == 1
        assert final[0].text.startswith("Wrote writing-plainly.md: ")
        assert not any(isinstance(e, ev.ToolCall) for e in seen)
        # The answer points at the file; the document is the file, not the chat.
        assert "- How to write plainly (" in final[0].text
        assert "Readers finish documents" not in final[0].text
        sections = sorted(p.name for p in (workspace / "writing-plainly.sections").iterdir())
        assert sections == ["01-why-plain-language-matters.md", "02-how-to-write-plainly.md"]

        rows = await WritingRecords(runtime.db).list(session.id)
        assert [Path(r.path) for r in rows] == [document.resolve()]
        stored = await WritingRecords(runtime.db).get(rows[0].id)
        assert stored.metadata["rounds"] == 1 and stored.report["ok"] is True

        # The run is checkpointed like any other: the state holds the answer.
        snapshot = await session.graph.aget_state(await session.current_config())
        assert snapshot.values["final_answer"] == final[0].text

        # A second run in the same session starts afresh and writes a second file.
        writer.tasks.clear()
        again = await session.run("Why and how to write plainly", on_event=seen.append)
        assert again.status == "completed"
        assert writer.tasks.count("TASK: outline") == 1
        assert (workspace / "writing-plainly-2.md").is_file()
    finally:
        await runtime.close()


async def test_the_offline_demo_model_writes_a_cited_document(tmp_path: Path) -> None:
    # No API key: the scripted demo model answers the writing graph's steps (offline).
    workspace = tmp_path / "ws"
    workspace.mkdir()
    refs = json.loads((FIXTURES / "refs.json").read_text())[:1]
    (workspace / "references.json").write_text(json.dumps(refs))
    runtime = await Runtime.open(load_settings(), build_registry())
    try:
        session = await runtime.create_session(workspace=workspace, profile="writing")
        assert (await session.run("a guide to plain language")).status == "completed"
        text = (workspace / "a-guide-to-plain-language.md").read_text()
        assert [line for line in text.splitlines() if line.startswith("#")] == [
            "# A guide to plain language", "## Background", "## Main points",
            "## Next steps", "## References"]
        assert "with confidence (Smith & Okafor, 2020)." in text
        rows = await WritingRecords(runtime.db).list(session.id)
        stored = await WritingRecords(runtime.db).get(rows[0].id)
        assert stored.report["ok"] is True
    finally:
        await runtime.close()
