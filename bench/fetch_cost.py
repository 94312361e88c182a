"""What reading a page costs: ``SourceService.fetch`` (policy on every hop, extraction, storage,
registry, scores) against a bare ``httpx`` GET of the same bytes, on the loopback fixture corpus.

    python bench/fetch_cost.py [--repeat 3]

Per page of ``tests/web_corpus`` (and the generated PDF), best of ``--repeat``:

- **bare**: ``httpx.AsyncClient.get`` through the same loopback route, nothing else;
- **cold**: a first fetch into an empty database (policy, HTTP, trafilatura / pypdf, htmldate,
  content-addressed storage, the session's registry, credibility and freshness);
- **warm**: the same fetch again within the cache TTL (no request: the stored copy).

It prints ms for each and the ratios cold/bare and warm/bare, then the totals. The first
extraction also pays for importing trafilatura and pypdf: that is timed once, apart
("imports"). Everything runs in a temporary directory; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fixture web server and its corpus

PAGES = [
    ("stats.energy-agency.gov", "/report-2024.html"),
    ("news.dailyclarion.com", "/solar-boom.html"),
    ("solar-tips-hub.com", "/best-solar-facts.html"),
    ("wiki.opensolar.org", "/solar-power.html"),
    ("journal.example.edu", "/paper.pdf"),
]


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def run(repeat: int) -> int:
    import httpx
    from web_fixture import PUBLIC, WebFixture

    from openmanus_tui.store.db import Database

    start = time.perf_counter()
    import pypdf  # noqa: F401
    import trafilatura  # noqa: F401

    print(f"imports (trafilatura, pypdf): {ms_since(start):.0f} ms, once per process")
    print(f"{'page':<45} {'bare ms':>8} {'cold ms':>8} {'warm ms':>8} {'cold/bare':>10} "
          f"{'warm/bare':>10}")
    totals = [0.0, 0.0, 0.0]
    with WebFixture() as web, tempfile.TemporaryDirectory() as tmp:
        async with httpx.AsyncClient(transport=web.transport()) as client:
            for host, path in PAGES:
                url = web.url(host, path)
                bare, cold, warm = [], [], []
                for i in range(repeat):
                    start = time.perf_counter()
                    resp = await client.get(f"http://{PUBLIC[host]}{path}", headers={"Host": host})
                    bare.append(ms_since(start))
                    assert resp.status_code == 200 and resp.content
                    # an empty database each time (opened before the clock starts)
                    db = await Database.open(Path(tmp) / f"{host}-{i}.db")
                    service = web.service(db)
                    await service.registry.setup()
                    await service.documents.setup()
                    start = time.perf_counter()
                    got = await service.fetch(url, session_id="bench")
                    cold.append(ms_since(start))
                    assert got.record.number == 1 and got.document.text
                    start = time.perf_counter()
                    again = await service.fetch(url, session_id="bench")
                    warm.append(ms_since(start))
                    assert again.document.from_cache
                    await db.close()
                times = [min(bare), min(cold), min(warm)]
                totals = [a + b for a, b in zip(totals, times, strict=True)]
                b, c, w = times
                print(f"{host + path:<45} {b:8.1f} {c:8.1f} {w:8.1f} {c / b:9.1f}x {w / b:9.1f}x")
    b, c, w = totals
    print(f"{'total':<45} {b:8.1f} {c:8.1f} {w:8.1f} {c / b:9.1f}x {w / b:9.1f}x")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text("")
        os.environ["OPENMANUS_CONFIG"] = str(config)
        os.environ["OPENMANUS_DATA_DIR"] = str(Path(tmp) / "data")
        sys.exit(asyncio.run(run(max(1, args.repeat))))


if __name__ == "__main__":
    main()
