"""The Sources tab's recorded scene: the demo session with sources read from the fixture corpus
(real extraction and scoring, fixed times), for the snapshot test and the screenshot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from web_fixture import CORPUS, DOMAINS_FILE, PDF_TEXT, make_pdf

from openmanus_tui.research.documents import DocumentStore, extract
from openmanus_tui.research.registry import Scorer, SourceRegistry
from openmanus_tui.research.scoring import domain_classes
from scenes import workbench as scenes

NOW = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)  # the scenes' BASE_TS
PAGES = [
    ("https://" + rel, rel)
    for rel in (
        "stats.energy-agency.gov/report-2024.html", "news.dailyclarion.com/solar-boom.html",
        "wiki.opensolar.org/solar-power.html", "solar-tips-hub.com/best-solar-facts.html",
    )
]  # fmt: skip


async def seed_sources(db: Any, session_id: str) -> None:
    """Register the corpus's pages, the PDF and one search hit never fetched, as a research run
    would: corroboration for the agreeing sources, citations from the report."""
    scorer = Scorer(domain_classes(DOMAINS_FILE), 365.0, now=lambda: NOW)
    registry, store = SourceRegistry(db, scorer), DocumentStore(db)
    bodies = [(url, (CORPUS / rel).read_bytes(), "text/html") for url, rel in PAGES]
    pdf = make_pdf(PDF_TEXT, title="PV efficiency field study", author="A. Researcher",
                   created="20230915")
    bodies.insert(2, ("https://journal.example.edu/paper.pdf", pdf, "application/pdf"))
    for url, body, kind in bodies:
        doc = extract(body, url=url, content_type=kind, fetched=scenes.BASE_TS)
        await store.put(doc)
        await registry.add_document(session_id, doc)
    await registry.add_snippet(
        session_id, key="https://www.iea.org/reports/renewables-2023",
        url="https://www.iea.org/reports/renewables-2023", title="Renewables 2023 – Analysis",
        domain="iea.org", snippet="Renewable capacity additions grew by 50% in 2023…",
        query="solar capacity growth 2023", date="2024-01-11", backend="searxng",
    )
    await registry.set_corroboration(session_id, 1, 1)
    await registry.set_corroboration(session_id, 3, 0)
    await registry.cite(session_id, 1, "report [1]")
    await registry.cite(session_id, 3, "report [2]")
    await registry.cite(session_id, 1, "report [3]")


async def stage_sources(app: Any) -> None:
    """The main scene with the Sources tab open and the government report selected."""
    import asyncio

    await scenes.stage_main(app, live=False)
    await seed_sources(app.runtime.db, scenes.SESSION_ID)
    app.query_one("#panel").active = "tab-sources"
    pane = app.query_one("#sources")
    await pane.ensure_built()
    from textual.worker import WorkerCancelled

    try:
        await pane.reload().wait()
    except WorkerCancelled:  # a newer reload (the app's own) replaced it: settle() waits for it
        pass
    await settle(app)
    await asyncio.sleep(0.2)
    await settle(app)


async def settle(app: Any) -> None:
    """Wait until no worker runs (an exclusive worker replaced by a newer one ends cancelled:
    that is fine here, not an error)."""
    import asyncio

    from textual.worker import WorkerState

    for _ in range(500):
        running = [w for w in app.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        if not running:
            return
        await asyncio.gather(*(w.wait() for w in running), return_exceptions=True)
        await asyncio.sleep(0)
    raise AssertionError("the app's workers never settled")
