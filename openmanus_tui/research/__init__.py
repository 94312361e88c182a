"""Research sources: reading the web through one network policy, storing what was read once,
registering each source per session, and scoring it with visible factors.

Modules (each owns one thing):

* ``policy``    — :class:`NetworkPolicy`: allowed / blocked domains, the private-address (SSRF)
  guard; ``PolicyRefusal`` is its one-line "no".
* ``fetch``     — :func:`http_get`: one URL over HTTP(S), every redirect hop checked, bounded.
* ``documents`` — :func:`normalize_url`, :func:`extract` (HTML, PDF, text → :class:`Document`),
  :class:`DocumentStore` (content-addressed text + the page cache with its TTL).
* ``registry``  — :class:`SourceRegistry`, the ``sources`` table: one :class:`SourceRecord` per
  normalised URL or workspace file per session.
* ``scoring``   — credibility and freshness, each a :class:`Score` with its factors.
* ``service``   — :class:`SourceService`: the pipeline the tools, the CLI and the research graph
  use (fetch → extract → store → register → score; read a workspace file; screen search hits).

Using it (the research graph, the writing tools)::

    service = runtime.sources                      # a SourceService built from the settings
    got = await service.fetch(url, session_id=sid, half_life_days=30)   # Fetched
    got.record.number, got.record.credibility.value, got.record.freshness.factors
    got.document.text                              # the extracted text (stored once)
    await service.read_file(workspace, "notes.md", session_id=sid)      # a reading-list file
    kept, refused = await service.screen_hits(hits, session_id=sid, query=q)
    records = await service.sources(sid)           # SourceRecord list, by number
    await service.text(record)                     # a record's stored text (None: snippet only)
    await service.registry.cite(sid, number, "report [2]")
    await service.registry.set_corroboration(sid, number, other_domains)
    service.policy.with_allowed(["example.org"])   # --allow-domain

``SourceRecord.as_dict()`` is the plain form (``openmanus fetch --json``): number, key, kind
("web" | "file"), url, title, author, site, domain, published, modified (ISO dates or None),
fetched, content_hash, chars, snippets, cited_by, credibility / freshness ``{value, factors}``.
Errors are ``PolicyRefusal`` (refused by the policy), ``FetchError`` and ``ExtractError``, all
``OpenManusError`` with one-line messages.

The research graph (``graph.py``) plans sub-questions, researches them in parallel, extracts
findings with exact quotes, cross-references them (``crossref.py``), writes a report with
numbered citations and verifies every citation against the stored source text (``verify.py``);
its data is ``models.py``, its results are stored by ``store.py``.

The core never imports Textual; front ends reach this package through ``openmanus_tui.runtime``.
"""

from __future__ import annotations

from openmanus_tui.research.documents import Document, ExtractError, normalize_url
from openmanus_tui.research.fetch import FetchError
from openmanus_tui.research.policy import NetworkPolicy, PolicyRefusal
from openmanus_tui.research.registry import SourceRecord, SourceRegistry
from openmanus_tui.research.scoring import Factor, Score
from openmanus_tui.research.service import Fetched, SourceService

__all__ = [
    "Document",
    "ExtractError",
    "Factor",
    "FetchError",
    "Fetched",
    "NetworkPolicy",
    "PolicyRefusal",
    "Score",
    "SourceRecord",
    "SourceRegistry",
    "SourceService",
    "normalize_url",
]
