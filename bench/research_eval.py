"""Research evaluation on the fixture corpus: citation precision before and after verification,
the planted bad citations the verifier caught, source recall, and time per question.

Everything is real but the model's judgement: the research graph runs in a Research session
(SQLite file, approval mode yolo) with the real langchain-openai client against the loopback
model server (tests/openai_server.py), and reads the fixture web corpus (tests/web_fixture.py)
through the sources service (network policy, extraction, store, registry). A search backend
ranks the corpus pages by shared words with the query.

The "model" extracts findings as the offline scripted model does (source sentences sharing the
most words with the sub-question), and its report states each finding with its citation plus
four planted bad citations per question, of known kinds: a fabricated source number, a changed
figure, a misquote, and a claim the cited source does not make. Ground truth is therefore known
per sentence, independently of the verifier:

- precision = citations on true sentences / all citations, in the draft (the baseline: what a
  prompt-only agent publishes) and in the verified report;
- caught = planted citations removed by the verifier / planted; wrongly removed = citations of
  true sentences removed;
- source recall = relevant corpus pages read / relevant pages (per question, by hand).

    python bench/research_eval.py [--depth quick|standard|deep] [--questions N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from openai_server import OpenAITestServer, Reply  # noqa: E402
from web_fixture import CORPUS, PDF_TEXT, WebFixture  # noqa: E402

QUESTIONS: list[dict[str, Any]] = [
    {
        "question": "How much did global solar capacity grow in 2023?",
        "relevant": {"stats.energy-agency.gov", "news.dailyclarion.com"},
    },
    {
        "question": "What was the median photovoltaic module efficiency measured in 2023?",
        "relevant": {"journal.example.edu", "wiki.opensolar.org"},
    },
    {
        "question": "Which country accounted for most of the solar capacity added in 2023?",
        "relevant": {"stats.energy-agency.gov"},
    },
]
PAGES = [
    ("stats.energy-agency.gov", "/report-2024.html"),
    ("news.dailyclarion.com", "/solar-boom.html"),
    ("solar-tips-hub.com", "/best-solar-facts.html"),
    ("wiki.opensolar.org", "/solar-power.html"),
    ("journal.example.edu", "/paper.pdf"),
    ("redirector.example.net", "/to-loopback"),
]


def _page_words(host: str, path: str) -> set[str]:
    from openmanus_tui.research.text import content_words

    if path.endswith(".pdf"):
        return content_words(" ".join(PDF_TEXT))
    file = CORPUS / host / path.lstrip("/")
    text = re.sub(r"<[^>]+>", " ", file.read_text()) if file.exists() else host
    return content_words(text)


def _responder(planted: list[str], drafts: list[str]) -> Any:
    from openmanus_tui.models.scripted_research import scripted_research
    from openmanus_tui.research.prompts import stage_of

    def respond(body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        system, user = messages[0]["content"], messages[-1]["content"]
        stage = stage_of(system) or ""
        if stage != "report":
            return Reply(text=scripted_research(stage, system, user))
        findings = re.findall(r"^\[(\d+)\] \(\w+\) (.*)$", user, re.M)
        quotes = re.findall(r'^    quote: "(.*)"$', user, re.M)
        lines = [f"{claim.rstrip('.')} [{n}]." for n, claim in findings]
        if findings:
            n, claim = findings[0]
            changed = re.sub(r"\d+", lambda m: str(int(m.group()) + 7), claim, count=1)
            if changed == claim:
                changed = claim.rstrip(".") + " by 77 percent"
            quote = (quotes[0] if quotes else claim).split()
            misquote = " ".join(quote[: max(3, len(quote) // 2)]) + " beyond all doubt"
            bad = [
                f"Independent auditors confirmed these results in 2019 [{len(findings) + 40}].",
                f"{changed.rstrip('.')} [{n}].",
                f'One source put it as "{misquote}" [{n}].',
                f"Tidal turbines in Norway produced most of this power at night [{n}].",
            ]
            planted.extend(bad)
            lines += bad
        drafts.append("\n".join(lines))
        return Reply(text=drafts[-1])

    return respond


def _precision(report: str, planted: list[str]) -> tuple[int, int]:
    """(citations on true sentences, all citations) in the report's body."""
    body = report.split("\n## ")[0]
    good = total = 0
    for line in body.splitlines():
        for sentence in re.split(r"(?<=[.!?])\s+", line):
            n = len(re.findall(r"\[\d+\]", sentence))
            if not n:
                continue
            total += n
            bare = re.sub(r"\s*\[(\d+|unverified)\]", "", sentence).strip()
            if not any(re.sub(r"\s*\[\d+\]", "", p).strip() == bare for p in planted):
                good += n
    return good, total


async def _one(item: dict[str, Any], server: OpenAITestServer, web: WebFixture,
               depth: str, planted: list[str], drafts: list[str]) -> dict[str, Any]:
    from openmanus_tui.config import load_settings
    from openmanus_tui.research.store import ResearchResults
    from openmanus_tui.runtime.session import Runtime

    settings = load_settings({
        "approval": {"mode": "yolo"},
        "model": {"base_url": server.base_url, "api_key": "sk-bench", "name": "bench-model"},
    })
    workspace = Path(tempfile.mkdtemp(prefix="ws-"))
    async with await Runtime.open(settings) as runtime:
        # Wired as the runtime wires its own: through the per-host fetch breakers.
        runtime.sources = web.service(runtime.db, breakers=runtime.breakers)
        session = await runtime.create_session(workspace=workspace, profile="research")
        started = time.perf_counter()
        outcome = await session.run(item["question"], research={"depth": depth})
        seconds = time.perf_counter() - started
        result = await ResearchResults(runtime.db).latest(session.id)
    if outcome.status != "completed" or result is None:
        raise SystemExit(f"research failed for {item['question']!r}: {outcome.reason}")
    draft_good, draft_total = _precision(drafts[-1], planted)
    good, total = _precision(result.report, planted)
    verdicts = result.verification["verdicts"]
    caught = sum(1 for v in verdicts if v["status"] != "supported"
                 and any(v["passage"].rstrip(".") in p for p in planted))
    wrongly = sum(1 for v in verdicts if v["status"] != "supported"
                  and not any(v["passage"].rstrip(".") in p for p in planted))
    read = {s.domain for s in result.sources} | {
        host for host, _ in PAGES for s in result.sources if host in s.location
    }
    relevant = item["relevant"]
    return {
        "question": item["question"],
        "draft": (draft_good, draft_total),
        "final": (good, total),
        "planted": len(planted),
        "caught": caught,
        "wrongly_removed": wrongly,
        "recall": len({h for h in relevant if h in read}) / len(relevant),
        "seconds": seconds,
        "sources": len(result.sources),
    }


async def main_async(depth: str, limit: int | None = None) -> int:
    from openmanus_tui.tools import search_backends
    from openmanus_tui.tools.search_backends import SearchHit

    with WebFixture() as web:
        words = {page: _page_words(*page) for page in PAGES}

        class Backend:
            name = "fixture"

            async def search(self, query: str, max_results: int) -> list[SearchHit]:
                from openmanus_tui.research.text import content_words

                wanted = content_words(query)
                ranked = sorted(PAGES, key=lambda p: -len(words[p] & wanted))
                return [SearchHit(title=h, url=web.url(h, p), snippet="", date=None,
                                  source="fixture") for h, p in ranked[:max_results]]

        search_backends.register_backend("fixture", lambda **_: Backend())
        os.environ["OPENMANUS_SEARCH__BACKEND"] = "fixture"
        rows = []
        for item in QUESTIONS[:limit]:
            planted: list[str] = []
            drafts: list[str] = []
            with OpenAITestServer(_responder(planted, drafts)) as server:
                rows.append(await _one(item, server, web, depth, planted, drafts))
    _print(rows, depth)
    final_good = sum(r["final"][0] for r in rows)
    final_total = sum(r["final"][1] for r in rows)
    return 0 if final_total and final_good == final_total else 1


def _pct(good: int, total: int) -> str:
    return f"{100 * good / total:5.1f}%" if total else "   n/a"


def _print(rows: list[dict[str, Any]], depth: str) -> None:
    print(f"research_eval: {len(rows)} questions on the fixture corpus, depth {depth}")
    head = (f"{'question':<44} {'precision draft':>15} {'precision final':>15} "
            f"{'caught':>8} {'wrongly removed':>15} {'recall':>7} {'sources':>7} "
            f"{'s/question':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        q = r["question"] if len(r["question"]) <= 44 else r["question"][:43] + "…"
        print(f"{q:<44} {_pct(*r['draft']):>15} {_pct(*r['final']):>15} "
              f"{r['caught']:>3}/{r['planted']:<4} {r['wrongly_removed']:>15} "
              f"{r['recall']:>6.0%} {r['sources']:>7} {r['seconds']:>10.2f}")
    dg = sum(r["draft"][0] for r in rows)
    dt = sum(r["draft"][1] for r in rows)
    fg = sum(r["final"][0] for r in rows)
    ft = sum(r["final"][1] for r in rows)
    caught = sum(r["caught"] for r in rows)
    planted = sum(r["planted"] for r in rows)
    print("-" * len(head))
    print(f"{'all':<44} {_pct(dg, dt):>15} {_pct(fg, ft):>15} {caught:>3}/{planted:<4} "
          f"{sum(r['wrongly_removed'] for r in rows):>15} "
          f"{sum(r['recall'] for r in rows) / len(rows):>6.0%} "
          f"{sum(r['sources'] for r in rows):>7} "
          f"{sum(r['seconds'] for r in rows) / len(rows):>10.2f}")
    print(f"target citation precision after verification = 100%: {_pct(fg, ft).strip()} "
          + ("PASS" if ft and fg == ft else "MISS"))
    print(json.dumps({"precision_draft": dg / dt if dt else None,
                      "precision_final": fg / ft if ft else None,
                      "caught": caught, "planted": planted}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", default="quick", choices=["quick", "standard", "deep"])
    parser.add_argument("--questions", type=int, metavar="N", help="only the first N questions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="research-eval-") as tmp:
        (Path(tmp) / "config.toml").write_text("")
        os.environ["OPENMANUS_CONFIG"] = str(Path(tmp) / "config.toml")
        os.environ["OPENMANUS_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["OPENMANUS_MODEL__RETRY_BACKOFF"] = "0.01"
        tempfile.tempdir = tmp
        try:
            code = asyncio.run(main_async(args.depth, args.questions))
        finally:
            tempfile.tempdir = None
    raise SystemExit(code)


if __name__ == "__main__":
    main()
