"""The Document tab's recorded scene: the demo session whose workspace holds a draft with a
citation problem, its references and the rubric of the writing run that wrote it — for the
snapshot test and the screenshot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from openmanus_tui.writing.records import WritingRecords
from openmanus_tui.writing.requirements import GeneratedContent, RubricResult, SectionReview
from scenes import workbench as scenes
from scenes.sources import settle

FIXTURES = Path(__file__).parent.parent / "writing_fixtures"
DRAFT = """# Writing Plainly

Readers finish documents that respect their time [@smith2020]. Short sentences and common
words help people act on what they read.

## How to write plainly

Start with the reader's question and answer it first. Use the active voice, name who does what,
and test the text with a real reader before you publish it [@madeup1999].

## What it costs

Very little: an afternoon with a reader saves weeks of letters and calls.
"""


async def stage_document(app: Any) -> None:
    """The main scene with the Document tab open on the draft."""
    await scenes.stage_main(app, live=False)
    workspace = app.session.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "draft.md").write_text(DRAFT, encoding="utf-8")
    refs = json.loads((FIXTURES / "refs.json").read_text())[:2]
    (workspace / "references.json").write_text(json.dumps(refs), encoding="utf-8")
    records = WritingRecords(app.runtime.db)
    await records.setup()
    reviews = [
        SectionReview(section="How to write plainly", round=1, results=[
            RubricResult(criterion="citations resolve", passed=False,
                         reason="cites unknown keys: @madeup1999"),
            RubricResult(criterion="tone", passed=True, reason="direct and warm"),
            RubricResult(criterion="audience", passed=True, reason="no jargon")]),
        SectionReview(section="What it costs", round=0, results=[
            RubricResult(criterion="length", passed=False, reason="12 words, target 40"),
            RubricResult(criterion="clarity", passed=True, reason="one clear claim")]),
    ]
    await records.add(GeneratedContent(content=DRAFT, reviews=reviews), brief="a guide",
                      path=str((workspace / "draft.md").resolve()), fmt="md",
                      session_id=app.session.id)
    app.query_one("#panel").active = "tab-document"
    pane = app.query_one("#document")
    await pane.ensure_built()
    app.refresh_document()
    await settle(app)
    await asyncio.sleep(0.2)
    await settle(app)
