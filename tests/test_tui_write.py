"""``/write [BRIEF]`` and ``/edit FILE restyle --style …`` in the workbench under ``run_test``:
the write form driven with keys, its validation (the one ``openmanus write`` uses), Escape,
the palette entry, the run in the session (the real langchain-openai client against the
loopback server playing a writer) and the file it writes with the requirements asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import use_server
from openai_server import Reply
from tui_helpers import make_app, notices, screen_text, send, type_text, wait_for
from writing_model import WriterModel, last_user

from openmanus_tui.tui.screens.write_form import WriteFormScreen
from openmanus_tui.writing.records import WritingRecords

SIZE = (110, 40)
FIXTURES = Path(__file__).parent / "writing_fixtures"


class PromptsSeen(WriterModel):
    """The writer, keeping every prompt it was sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompts: list[str] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.prompts.append(last_user(body))
        return super().__call__(body)


async def _focus(pilot: Any, selector: str) -> None:
    """Tab through the form (as a person does) until ``selector`` has focus."""
    for _ in range(20):
        if pilot.app.focused is not None and pilot.app.focused.id == selector.lstrip("#"):
            return
        await pilot.press("tab")
    raise AssertionError(f"{selector} never got focus")


async def test_write_form_runs_the_write_with_the_requirements(
        tmp_path: Path, monkeypatch, llm_server) -> None:
    use_server(monkeypatch, llm_server)
    writer = PromptsSeen()
    llm_server.set_responder(writer)
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps(json.loads((FIXTURES / "refs.json").read_text())[:2]))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "/write Why and how to write plainly", close_menu=True)
        await wait_for(pilot, lambda: isinstance(app.screen, WriteFormScreen))
        form = app.screen
        assert form.query_one("#brief").text == "Why and how to write plainly"
        await _focus(pilot, "#style")
        await pilot.press("enter", "down", "enter")  # professional → academic
        await _focus(pilot, "#tone")
        await type_text(pilot, "formal")
        await _focus(pilot, "#audience")
        await type_text(pilot, "new engineers")
        await _focus(pilot, "#references")
        await type_text(pilot, str(refs))
        await _focus(pilot, "#output")
        await type_text(pilot, "docs/plain.md")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, WriteFormScreen))
        await wait_for(pilot, lambda: not app.run_in_progress()
                       and app.session is not None and "Wrote docs/plain.md" in screen_text(app))

        session = app.session
        assert session.record.profile == "writing"  # a new session starts as a Writing one
        document = session.workspace / "docs" / "plain.md"
        text = document.read_text()
        assert text.startswith("# Writing Plainly\n")
        assert "(Smith & Okafor, 2020)" in text and "## References" in text
        # The requirements reached the model: every draft was asked in that style and tone.
        drafts = [p for p in writer.prompts if p.startswith("TASK: draft")]
        assert drafts and all("Style: academic" in p and "Tone: formal" in p
                              and "Audience: new engineers" in p for p in drafts)
        rows = await WritingRecords(app.runtime.db).list(session.id)
        assert [Path(r.path) for r in rows] == [document.resolve()]
        stored = await WritingRecords(app.runtime.db).get(rows[0].id)
        req = stored.metadata["requirements"]
        assert (req["style"], req["tone"], req["audience"]) == (
            "academic", "formal", "new engineers")
        assert req["citations_required"] is True  # references given
        assert "quality" in screen_text(app)  # the answer's scores, in the stream


async def test_write_form_validates_like_the_cli_and_escape_cancels() -> None:
    app = make_app()  # the offline demo model: nothing runs here
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        # The palette's entry opens the same form.
        await pilot.press("ctrl+p")
        await type_text(pilot, "Write a doc")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, WriteFormScreen))
        form = app.screen
        await pilot.press("ctrl+s")  # no brief
        assert "write needs a brief" in str(form.query_one("#write-error").render())
        await type_text(pilot, "a short note")
        await _focus(pilot, "#length")
        await type_text(pilot, "12")
        await pilot.press("ctrl+s")
        error = str(form.query_one("#write-error").render())
        assert error == "write: length_words: Input should be greater than or equal to 50"
        await _focus(pilot, "#length")
        await pilot.press("backspace", "backspace")
        await type_text(pilot, "300")
        await _focus(pilot, "#output")
        await type_text(pilot, "note.txt")
        await pilot.press("ctrl+s")
        assert "unknown format 'txt'" in str(form.query_one("#write-error").render())
        assert app.screen is form and app.session is None
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, WriteFormScreen))
        await pilot.pause()
        assert app.session is None and not app.run_in_progress()


async def test_write_in_a_manus_session_makes_it_a_writing_session() -> None:
    """The offline demo model (no key): a chat first, then /write in the same session."""
    app = make_app(approval={"mode": "yolo"})  # the demo's tool calls run unasked
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, "hello")
        await wait_for(pilot, lambda: app.session is not None and not app.run_in_progress())
        session = app.session
        assert session.record.profile != "writing"
        await send(pilot, "/write a guide to plain language", close_menu=True)
        await wait_for(pilot, lambda: isinstance(app.screen, WriteFormScreen))
        await pilot.click("#submit")
        await wait_for(pilot, lambda: "Wrote a-guide-to-plain-language.md" in screen_text(app)
                       and not app.run_in_progress())
        assert app.session is session and session.record.profile == "writing"
        assert any(n.message.startswith("Agent: Writing") for n in notices(app))
        text = (session.workspace / "a-guide-to-plain-language.md").read_text()
        assert text.startswith("# A guide to plain language\n")


async def test_edit_restyle_takes_style_tone_and_audience(
        tmp_path: Path, monkeypatch, llm_server) -> None:
    from openmanus_tui.tui.screens.edit_diff import EditDiffScreen

    use_server(monkeypatch, llm_server)
    writer = PromptsSeen()
    llm_server.set_responder(writer)
    source = tmp_path / "note.md"
    source.write_text("# Note\n\nWe utilize a method.\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await send(pilot, f'/edit {source} restyle --style persuasive --tone "warm and direct"',
                   close_menu=True)
        await wait_for(pilot, lambda: isinstance(app.screen, EditDiffScreen))
        (prompt,) = writer.prompts
        assert "Style: persuasive" in prompt and "Tone: warm and direct" in prompt
        await pilot.click("#accept")
        await wait_for(pilot, lambda: any("Wrote" in n.message for n in notices(app)))
        assert source.read_text() == "# Note\n\nWe use a method.\n"

        # Validated as `openmanus write` validates: one line, no model call.
        await send(pilot, f"/edit {source} restyle --style loud", close_menu=True)
        await wait_for(pilot, lambda: any("/edit: write: style" in n.message
                                          for n in notices(app)))
        await send(pilot, f"/edit {source} proofread --tone formal", close_menu=True)
        await wait_for(pilot, lambda: any("apply to restyle only" in n.message
                                          for n in notices(app)))
        assert len(writer.prompts) == 1
