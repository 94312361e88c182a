"""The workbench on a Research session: the clarifying question is asked in a prompt and the
run continues with the answer; web access is one request in the approval modal; the report
block shows the verified report with its citation check and the contradiction list (the real
app under ``run_test``, the loopback model server)."""

from __future__ import annotations

from pathlib import Path

from openai_server import OpenAITestServer
from test_research_graph import DOCS, _asking, no_web_search
from tui_helpers import make_app, send, type_text, wait_for

from openmanus_tui.tui.screens.approval import ApprovalScreen
from openmanus_tui.tui.screens.dialogs import TextPromptScreen
from openmanus_tui.tui.widgets.stream import StreamView


async def test_workbench_asks_the_clarifying_question_and_shows_the_contradictions(
    tmp_path: Path,
) -> None:
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text)
    with OpenAITestServer(_asking) as server:
        app = make_app(
            approval={"mode": "auto"}, agent={"profile": "research"},
            sandbox={"workspace": str(tmp_path)},
            model={"base_url": server.base_url, "api_key": "sk-test", "name": "test-model"},
        )
        async with app.run_test(size=(140, 45)) as pilot:
            await app.ready.wait()
            await send(pilot, "When did the bridge open?")
            await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen), 60)
            assert "Which bridge?" in str(app.screen.question)
            await type_text(pilot, "the harbour bridge")
            await pilot.press("enter")
            # Web access: one request through the approval modal (auto mode asks for network).
            await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), 60)
            screen = app.screen
            assert screen.call.tool == "web_fetch" and screen.call.args["sub_questions"]
            await wait_for(pilot, lambda: screen.armed)  # type-ahead cannot approve
            await pilot.click("#approve")

            def blocks() -> list:
                return list(app.query_one(StreamView).transcript.blocks)

            await wait_for(pilot, lambda: any(b.kind == "answer" for b in blocks())
                           and not app.run_in_progress(), 60)
            answer = next(b.text for b in blocks() if b.kind == "answer")
            # the report's citations map to the Sources tab's numbers (its links follow them)
            citations = next(b.citations for b in blocks() if b.kind == "answer")
            assert citations and all(isinstance(n, int) for n in citations.values())
            notices = [b.text for b in blocks() if b.kind == "notice"]
    assert "## Contradictions" in answer and "1934" in answer
    assert "## Citation check" in answer and "[9]" not in answer.split("## References")[0]
    assert any("Which bridge?" in n and "the harbour bridge" in n for n in notices)
    assert any(n.startswith("research · verify") for n in notices)
    assert any(n == "research · approve: web access approved" for n in notices)


_ = no_web_search  # autouse, from test_research_graph: no test here searches the internet
