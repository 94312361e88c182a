"""Fetching, extraction, storage, the source registry and the scores, through the real fetch path
against the loopback fixture web server (tests/web_fixture.py; nothing reaches the internet)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_fixture import DOMAINS_FILE, PUBLIC, WebFixture

from openmanus_tui.errors import ConfigError
from openmanus_tui.research import FetchError, PolicyRefusal, normalize_url
from openmanus_tui.research.documents import ExtractError, extract
from openmanus_tui.research.scoring import (
    CredibilityInputs,
    credibility,
    domain_classes,
    freshness,
)
from openmanus_tui.research.service import SourceService
from openmanus_tui.store.db import Database

AGENCY = ("stats.energy-agency.gov", "/report-2024.html")
NEWS = ("news.dailyclarion.com", "/solar-boom.html")
FARM = ("solar-tips-hub.com", "/best-solar-facts.html")
WIKI = ("wiki.opensolar.org", "/solar-power.html")
PDF = ("journal.example.edu", "/paper.pdf")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "sources.db")
    try:
        yield database
    finally:
        await database.close()


def names(factors: list[Any]) -> dict[str, Any]:
    return {f.name: f for f in factors}


# ---- fetch and extraction -----------------------------------------------------------------
async def test_a_dated_government_page_with_every_field(web: WebFixture, db: Database) -> None:
    service = web.service(db)
    fetched = await service.fetch(web.url(*AGENCY), session_id="s1")
    doc, record = fetched.document, fetched.record
    assert record.number == 1
    assert record.title == "Renewables 2024: solar capacity statistics"
    assert (record.author, record.site) == ("Maria Okafor", "Energy Statistics Agency")
    assert (record.published, record.domain) == ("2024-03-05", "energy-agency.gov")
    assert "grew by 24% in 2023" in doc.text and "<p>" not in doc.text
    assert "Home | Data" not in doc.text  # navigation is not the text
    factors = names(record.credibility.factors)
    assert factors["domain class"].detail == "stats.energy-agency.gov: government (gov)"
    assert factors["domain class"].effect == 0.9
    assert {"data", "methods"} <= factors.keys()
    assert factors["author"].effect > 0 and factors["date"].effect > 0
    # the value is the sum of the visible effects, clamped to 0–1
    total = sum(f.effect or 0 for f in record.credibility.factors)
    assert record.credibility.value == round(min(1.0, total), 2)
    fresh = record.freshness
    assert fresh.value is not None and 0 < fresh.value <= 1
    assert names(fresh.factors)["date"].detail == "published 2024-03-05"


async def test_an_undated_page_has_unknown_freshness_not_a_guess(
    web: WebFixture, db: Database
) -> None:
    record = (await web.service(db).fetch(web.url(*WIKI), session_id="s1")).record
    assert record.published is None and record.modified is None
    assert record.freshness.value is None
    assert names(record.freshness.factors)["date"].detail.startswith("unknown")
    assert names(record.credibility.factors)["date"].effect < 0


async def test_credibility_orders_the_corpus_and_names_the_content_farm(
    web: WebFixture, db: Database
) -> None:
    service = web.service(db)
    scores = {}
    for host, path in (AGENCY, NEWS, WIKI, FARM):
        scores[host] = (await service.fetch(web.url(host, path))).record.credibility
    farm = scores["solar-tips-hub.com"]
    assert "known content farm" in names(farm.factors)["domain class"].detail
    values = [scores[h].value for h in (AGENCY[0], NEWS[0], WIKI[0], FARM[0])]
    assert values == sorted(values, reverse=True) and values[-1] < 0.2 < values[0]


async def test_two_sources_disagree_on_a_number(web: WebFixture, db: Database) -> None:
    service = web.service(db)
    agency = (await service.fetch(web.url(*AGENCY))).document.text
    news = (await service.fetch(web.url(*NEWS))).document.text
    assert "24%" in agency and "32%" not in agency
    assert "32%" in news and "24%" not in news


async def test_a_pdf_is_read_with_its_metadata_and_doi(web: WebFixture, db: Database) -> None:
    fetched = await web.service(db).fetch(web.url(*PDF), session_id="s1")
    doc, record = fetched.document, fetched.record
    assert doc.kind == "pdf" and doc.content_type == "application/pdf"
    assert (record.title, record.author, record.published) == (
        "PV efficiency field study", "A. Researcher", "2023-09-15",
    )  # fmt: skip
    assert "median module efficiency was 21.4 percent" in doc.text
    factors = names(record.credibility.factors)
    assert factors["DOI"].detail == "10.5555/pv.2023.117"
    assert "methods" in factors


async def test_a_redirect_to_a_private_address_is_refused_before_connecting(
    web: WebFixture, db: Database
) -> None:
    service = web.service(db)
    for path, target in (("/to-loopback", "127.0.0.1"), ("/to-metadata", "169.254.169.254")):
        with pytest.raises(PolicyRefusal) as info:
            await service.fetch(web.url("redirector.example.net", path), session_id="s1")
        message = str(info.value)
        assert f"{target} is" in message
        assert "a redirect from https://redirector.example.net" in message
        assert "\n" not in message
    assert ("127.0.0.1", "/internal") not in web.requests
    assert await service.sources("s1") == []


async def test_a_blocked_domain_is_refused_before_any_request(
    web: WebFixture, db: Database
) -> None:
    service = web.service(db, policy=web.policy(blocked_domains=["example.com"]))
    with pytest.raises(PolicyRefusal, match=r"blocked domain example\.com"):
        await service.fetch(web.url("blocked.example.com", "/"))
    assert not [r for r in web.requests if r[0] == "blocked.example.com"]


async def test_private_addresses_are_reachable_only_when_allowed(
    web: WebFixture, db: Database
) -> None:
    url = web.url("127.0.0.1", "/page")
    with pytest.raises(PolicyRefusal, match=r"127\.0\.0\.1 is loopback"):
        await web.service(db).fetch(url)
    assert web.requests == []
    allowed = web.service(db, policy=web.policy(allow_private_addresses=True))
    record = (await allowed.fetch(url)).record
    assert record.title == "Loopback fixture page" and record.published == "2025-06-01"
    # the same setting lets the private redirect through, as asked
    followed = await allowed.fetch(web.url("redirector.example.net", "/to-loopback"))
    assert "SECRET-INTERNAL-TOKEN" in followed.document.text


async def test_redirect_loops_and_missing_pages_fail_in_one_line(
    web: WebFixture, db: Database
) -> None:
    service = web.service(db, max_redirects=3)
    with pytest.raises(FetchError, match="more than 3 redirects"):
        await service.fetch(web.url("redirector.example.net", "/loop"))
    with pytest.raises(FetchError, match="answered HTTP 404"):
        await service.fetch(web.url("wiki.opensolar.org", "/missing"))


async def test_size_cap_and_unreadable_types(web: WebFixture, db: Database) -> None:
    web.serve("wiki.opensolar.org", "/big.html", b"<html><body><p>" + b"word " * 50_000 + b"</p>")
    web.serve("wiki.opensolar.org", "/image.png", b"\x89PNG\r\n\x1a\n....", "image/png")
    service = web.service(db, max_bytes=10_000)
    doc = (await service.fetch(web.url("wiki.opensolar.org", "/big.html"))).document
    assert doc.truncated and len(doc.text) < 10_000
    with pytest.raises(ExtractError, match="cannot read content of type 'image/png'"):
        await service.fetch(web.url("wiki.opensolar.org", "/image.png"))


# ---- storage and the cache ----------------------------------------------------------------
async def test_pages_are_cached_with_a_ttl_and_text_is_stored_once(
    web: WebFixture, db: Database
) -> None:
    service = web.service(db)
    url = web.url(*WIKI)
    first = await service.fetch(url)
    again = await service.fetch(url.replace("https://wiki", "https://WIKI") + "?utm_source=x")
    assert again.document.from_cache and not first.document.from_cache
    assert web.requests.count(WIKI) == 1
    # a second URL serving the same text: another page, the same stored document
    body = (Path(__file__).parent / "web_corpus" / "wiki.opensolar.org" / "solar-power.html")
    web.serve("wiki.opensolar.org", "/copy.html", body.read_bytes())
    copy = await service.fetch(web.url("wiki.opensolar.org", "/copy.html"))
    assert copy.document.content_hash == first.document.content_hash
    async with db.conn.execute("SELECT COUNT(*) FROM research_documents") as cur:
        assert (await cur.fetchone())[0] == 1
    expired = web.service(db, cache_ttl=0)
    assert not (await expired.fetch(url)).document.from_cache
    assert web.requests.count(WIKI) == 2


async def test_a_moved_page_is_one_source_under_either_url(web: WebFixture, db: Database) -> None:
    service = web.service(db)
    moved = web.url("news.dailyclarion.com", "/moved")
    hits = [{"title": "Solar boom", "url": moved, "snippet": "capacity jumps", "source": "x"}]
    kept, refused = await service.screen_hits(hits, session_id="s1", query="solar")
    assert refused == [] and kept[0]["source_number"] == 1
    fetched = await service.fetch(moved, session_id="s1")
    assert fetched.record.number == 1 and fetched.record.url == web.url(*NEWS)
    direct = await service.fetch(web.url(*NEWS), session_id="s1")
    assert direct.document.from_cache  # found under the final URL too
    assert [r.number for r in await service.sources("s1")] == [1]  # one page, one source


def test_normalize_url() -> None:
    assert normalize_url("HTTPS://Example.COM:443/a/../b/?utm_source=x&z=1&a=2#part") == (
        "https://example.com/b/?a=2&z=1"
    )
    assert normalize_url("http://example.com") == "http://example.com/"


# ---- the registry -------------------------------------------------------------------------
async def test_search_snippets_and_a_fetch_merge_into_one_record(
    web: WebFixture, db: Database
) -> None:
    service = web.service(db, policy=web.policy(blocked_domains=["blocked.example.com"]))
    hits = [
        {"title": "Agency stats", "url": web.url(*AGENCY), "snippet": "grew by 24%",
         "date": "2024-03-05T00:00:00", "source": "searxng"},
        {"title": "Nope", "url": web.url("blocked.example.com", "/"), "snippet": "x",
         "source": "searxng"},
        {"title": "notes.md (1 hit)", "url": "notes.md:3", "snippet": "local", "source":
         "workspace"},
    ]  # fmt: skip
    kept, refused = await service.screen_hits(hits, session_id="s1", query="solar growth")
    assert [h["title"] for h in kept] == ["Agency stats", "notes.md (1 hit)"]
    assert len(refused) == 1 and "blocked domain blocked.example.com" in refused[0]
    snippet_only = (await service.sources("s1"))[0]
    assert snippet_only.fetched is None and snippet_only.published == "2024-03-05"
    assert snippet_only.snippets[0]["query"] == "solar growth"
    author = names(snippet_only.credibility.factors)["author"]
    assert (author.detail, author.effect) == ("unknown until the page is read", 0.0)
    await service.screen_hits(hits[:1], session_id="s1", query="solar again")  # same URL
    fetched = await service.fetch(web.url(*AGENCY) + "#methodology", session_id="s1")
    [record] = await service.sources("s1")
    assert record.number == fetched.record.number == 1
    assert record.fetched is not None and record.author == "Maria Okafor"
    assert names(record.credibility.factors)["author"].detail == "named"
    assert [s["query"] for s in record.snippets] == ["solar growth", "solar again"]
    assert await service.text(record) == fetched.document.text
    assert await service.sources("s2") == []  # per session


async def test_corroboration_and_citations_update_the_record(
    web: WebFixture, db: Database
) -> None:
    service = web.service(db)
    number = (await service.fetch(web.url(*NEWS), session_id="s1")).record.number
    before = (await service.registry.get("s1", number)).credibility.value
    after = await service.registry.set_corroboration("s1", number, 2)
    assert after is not None
    assert names(after.credibility.factors)["corroboration"].detail == "2 other domains agree"
    assert after.credibility.value == pytest.approx(min(1.0, before + 0.10))
    cited = await service.registry.cite("s1", number, "report [1]")
    cited = await service.registry.cite("s1", number, "report [1]")
    assert cited is not None and cited.cited_by == ["report [1]"]
    assert await service.registry.cite("s1", 99, "x") is None
    data = cited.as_dict()
    assert data["corroboration"] == 2 and data["credibility"]["value"] == after.credibility.value
    assert data["fetched"].endswith("+00:00")


async def test_workspace_files_are_sources_too(
    web: WebFixture, db: Database, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.md").write_text("# Field notes\n\nThe inverter failed twice in 2022.\n")
    service = web.service(db)
    fetched = await service.read_file(ws, "notes.md", session_id="s1")
    record = fetched.record
    assert (record.key, record.kind, record.title) == ("file:notes.md", "file", "Field notes")
    assert names(record.credibility.factors)["domain class"].detail.startswith("the user's own")
    assert record.freshness.value is None  # a file's mtime is not its date
    same = await service.read_file(ws, str(ws / "notes.md"), session_id="s1")
    assert same.record.number == record.number
    with pytest.raises(ExtractError, match="cannot read"):
        await service.read_file(ws, "../outside.txt")


# ---- the scores ---------------------------------------------------------------------------
def test_freshness_halves_every_half_life() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert freshness("2025-01-01", half_life_days=365, now=now).value == 0.5
    assert freshness("2024-01-01", half_life_days=365, now=now).value == 0.25
    assert freshness("2025-12-02", half_life_days=30, now=now).value == 0.5
    newer = freshness("2020-01-01", "2025-01-01", half_life_days=365, now=now)
    assert newer.value == 0.5 and newer.factors[0].detail == "modified 2025-01-01"
    future = freshness("2027-01-01", now=now)
    assert future.value == 1.0 and "future" in future.factors[1].detail
    assert freshness(None, None).value is None


def test_credibility_is_the_sum_of_its_factors() -> None:
    inputs = CredibilityInputs(
        host="blog.medium.com", domain_class="blog", matched="medium.com", https=False,
        author=True, dated=False, corroboration=5, model_rating=1.0,
    )  # fmt: skip
    score = credibility(inputs)
    effects = {f.name: f.effect for f in score.factors}
    assert effects == {
        "domain class": 0.40, "primary signals": 0.0, "author": 0.03, "date": -0.05,
        "HTTPS": -0.05, "corroboration": 0.15, "model rating": 0.05,
    }  # fmt: skip
    assert score.value == 0.53


def test_domain_classes_longest_suffix_and_user_file(tmp_path: Path) -> None:
    shipped = domain_classes()
    assert shipped.classify("www.bbc.co.uk") == ("news", "bbc.co.uk")
    assert shipped.classify("data.census.gov") == ("government", "gov")
    assert shipped.classify("pubmed.ncbi.nlm.nih.gov") == ("academic", "ncbi.nlm.nih.gov")
    assert shipped.classify("example.org") == ("unknown", None)
    assert domain_classes(DOMAINS_FILE).classify("news.dailyclarion.com")[0] == "news"
    user = tmp_path / "domains.toml"
    user.write_text('[scores]\nblog = 0.2\n[classes]\ncontent_farm = ["medium.com"]\n')
    mine = domain_classes(user)
    assert mine.classify("x.medium.com")[0] == "content_farm" and mine.score("blog") == 0.2
    user.write_text('[classes]\nsatire = ["onion.com"]\n')
    with pytest.raises(ConfigError, match=r"classes.satire: unknown class"):
        domain_classes(user)


def test_extract_refuses_empty_and_binary() -> None:
    with pytest.raises(ExtractError, match="no readable text"):
        extract(b"<html><body></body></html>", url="https://x.test/", content_type="text/html")
    with pytest.raises(ExtractError, match="not a readable PDF"):
        extract(b"%PDF-1.4 broken", url="https://x.test/a.pdf", content_type="application/pdf")


# ---- HTTPS: the connection goes to the checked address, TLS still checks the host's name ----
class _TlsRoute(httpx.AsyncBaseTransport):
    """Send the pinned connection (to the fixture's stand-in address) to a TLS server on
    127.0.0.1, keeping https, the Host header and the TLS server name the fetcher set."""

    def __init__(self, port: int, verify: ssl.SSLContext) -> None:
        self.port = port
        self.inner = httpx.AsyncHTTPTransport(verify=verify)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.scheme == "https" and request.url.host in PUBLIC.values()
        assert request.extensions["sni_hostname"] == "stats.energy-agency.gov"
        request.url = request.url.copy_with(host="127.0.0.1", port=self.port)
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("cert_for", ["stats.energy-agency.gov", "someone-else.example"])
async def test_https_to_the_pinned_address_verifies_the_hosts_certificate(
    web: WebFixture, db: Database, cert_for: str
) -> None:
    import threading

    import trustme

    ca = trustme.CA()
    server = web.server.__class__()  # the same corpus, over TLS this time
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(cert_for).configure_cert(server_ctx)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    try:
        service = SourceService(
            db, policy=web.policy(), transport=_TlsRoute(server.server_port, client_ctx)
        )
        url = "https://stats.energy-agency.gov/report-2024.html"
        if cert_for == "stats.energy-agency.gov":
            record = (await service.fetch(url)).record
            assert record.title == "Renewables 2024: solar capacity statistics"
            assert names(record.credibility.factors)["HTTPS"].effect == 0
            assert server.requests == [("stats.energy-agency.gov", "/report-2024.html")]
        else:  # a certificate for another name is refused, though the address was checked
            with pytest.raises(FetchError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
                await service.fetch(url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_parallel_registrations_of_one_url_make_one_record(
    web: WebFixture, db: Database
) -> None:
    import asyncio

    service = web.service(db)
    url = web.url(*AGENCY)
    hit = {"title": "Agency", "url": url, "snippet": "s", "source": "searxng"}
    results = await asyncio.gather(
        *(service.screen_hits([hit], session_id="s1", query=f"q{i}") for i in range(5)),
        *(service.fetch(url, session_id="s1") for _ in range(3)),
    )
    [record] = await service.sources("s1")
    assert record.fetched is not None and len(record.snippets) == 5
    assert web.requests.count(AGENCY) == 1  # the parallel fetches shared one request
    assert {r.record.number for r in results[5:]} == {1}


@pytest.mark.parametrize(
    ("page", "url_path", "dates"),
    [
        # a date only mentioned in the prose is not the page's date
        ("<p>On 12 May 2021 the plant opened; by 2023-04-01 it made twice the power.</p>",
         "/plant", (None, None)),
        ("<p>Prose about 2023-04-01.</p>", "/2022/03/15/plant", ("2022-03-15", None)),
        ('<p>Prose.</p><p>By A, <time datetime="2024-02-10">10 Feb</time></p>', "/t",
         ("2024-02-10", None)),
        ('<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": '
         '"2024-05-06T10:00:00Z", "dateModified": "2024-05-08"}</script><p>Prose.</p>', "/t",
         ("2024-05-06", "2024-05-08")),
    ],
)  # fmt: skip
def test_dates_come_from_the_pages_own_date_markup(
    page: str, url_path: str, dates: tuple[str | None, str | None]
) -> None:
    filler = "<p>" + "Enough words for the extractor to keep this paragraph. " * 4 + "</p>"
    html = f"<html><head><title>T</title></head><body><article>{page}{filler}</article></body>"
    doc = extract(html.encode(), url="https://x.test" + url_path, content_type="text/html")
    assert (doc.published, doc.modified) == dates


async def test_the_cache_obeys_the_policy_as_it_is_now(web: WebFixture, db: Database) -> None:
    allowed = web.service(db, policy=web.policy(allow_private_addresses=True))
    moved = web.url("redirector.example.net", "/to-news")
    await allowed.fetch(web.url("redirector.example.net", "/to-loopback"))
    await allowed.fetch(moved)
    strict = web.service(db, policy=web.policy(blocked_domains=["dailyclarion.com"]))
    # read through 127.0.0.1 while that was allowed: not handed out from the cache now
    with pytest.raises(PolicyRefusal, match=r"127\.0\.0\.1 is loopback"):
        await strict.fetch(web.url("redirector.example.net", "/to-loopback"))
    # cached under the redirecting URL, but its final URL is on a domain blocked since
    with pytest.raises(PolicyRefusal, match=r"blocked domain dailyclarion\.com"):
        await strict.fetch(moved)
