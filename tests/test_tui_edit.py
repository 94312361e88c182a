"""``/edit FILE TYPE`` in the workbench under ``run_test``: the real langchain-openai client
against the loopback server playing a writer (``writing_model.py``); the diff modal's Accept
writes exactly the edited text, Reject writes nothing, a dropped citation is one line."""

from __future__ import annotations

from pathlib import Path

from conftest import use_server
from openai_server import Reply
from tui_helpers import make_app, notices, send, wait_for
from writing_model import WriterModel

from openmanus_tui.tui.screens.edit_diff import EditDiffScreen

ORIGINAL = "# Note\n\nWe utilize a very unique method [@smith2020].\n"
EDITED = "# Note\n\nWe use a unique method [@smith2020].\n"


async def _edit(tmp_path: Path, monkeypatch, llm_server, answer: str) -> Path:
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(WriterModel())
    source = tmp_path / "note.md"
    source.write_text(ORIGINAL)
    app = make_app()
    async with app.run_test(size=(110, 40)) as pilot:
        await app.ready.wait()
        await send(pilot, f"/edit {source} proofread", close_menu=True)
        await wait_for(pilot, lambda: isinstance(app.screen, EditDiffScreen))
        diff = app.screen.diff_text
        assert "-We utilize a very unique method [@smith2020].\n" in diff
        assert "+We use a unique method [@smith2020].\n" in diff
        await pilot.click(f"#{answer}")
        await wait_for(pilot, lambda: not isinstance(app.screen, EditDiffScreen))
        word = "Wrote" if answer == "accept" else "Edit rejected"
        await wait_for(pilot, lambda: any(word in n.message for n in notices(app)))
    return source


async def test_edit_accept_writes_the_edited_text(tmp_path: Path, monkeypatch,
                                                  llm_server) -> None:
    source = await _edit(tmp_path, monkeypatch, llm_server, "accept")
    assert source.read_text() == EDITED


async def test_edit_reject_writes_nothing(tmp_path: Path, monkeypatch, llm_server) -> None:
    source = await _edit(tmp_path, monkeypatch, llm_server, "reject")
    assert source.read_text() == ORIGINAL


async def test_edit_that_drops_a_citation_is_refused_in_one_line(tmp_path: Path, monkeypatch,
                                                                 llm_server) -> None:
    use_server(monkeypatch, llm_server)
    llm_server.set_responder(lambda body: Reply(text="# Note\n\nWe use a unique method.\n"))
    source = tmp_path / "note.md"
    source.write_text(ORIGINAL)
    app = make_app()
    async with app.run_test(size=(110, 40)) as pilot:
        await app.ready.wait()
        await send(pilot, f"/edit {source} shorten", close_menu=True)
        await wait_for(pilot, lambda: any("dropped citations" in n.message
                                          for n in notices(app)))
        refusal = next(n for n in notices(app) if "dropped citations" in n.message)
        assert refusal.message == ("/edit: the edit dropped citations @smith2020: "
                                   "nothing written")
        assert refusal.severity == "error"
        assert not isinstance(app.screen, EditDiffScreen)
    assert source.read_text() == ORIGINAL


async def test_document_tab_edit_button_accept_refreshes_the_tab(tmp_path: Path, monkeypatch,
                                                                  llm_server) -> None:
    from textual.widgets import Button, Select, TextArea

    use_server(monkeypatch, llm_server)
    llm_server.set_responder(WriterModel())
    source = tmp_path / "note.md"
    source.write_text(ORIGINAL)
    app = make_app()
    async with app.run_test(size=(110, 40)) as pilot:
        await app.ready.wait()
        pane = app.query_one("#document")
        await pane.ensure_built()
        pane.shown = True
        pane.show_workspace(app.runtime, tmp_path)
        text = pane.query_one("#doc-text", TextArea)
        await wait_for(pilot, lambda: "utilize" in text.text)
        pane.query_one("#doc-edit-type", Select).value = "simplify"
        pane.query_one("#doc-edit", Button).press()
        await wait_for(pilot, lambda: isinstance(app.screen, EditDiffScreen))
        assert "(simplify)" in app.screen.diff_text
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "We use a unique method" in text.text)
    assert source.read_text() == EDITED
