"""A research result as a file: Markdown (the verified report plus a source table with scores),
JSON (the whole ``ResearchResult``), HTML (the Markdown rendered, escaped) and PDF
(``manus-md-to-pdf``'s converter, offline).
"""

from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path

from openmanus_tui.errors import OpenManusError
from openmanus_tui.research.models import ResearchResult

FORMATS = ("md", "html", "pdf", "json")


def _score(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def to_markdown(result: ResearchResult) -> str:
    lines = [result.report.rstrip(), "", "## Sources and scores", "",
             "| # | source | date | credibility | freshness | cited |",
             "| --- | --- | --- | --- | --- | --- |"]
    for s in result.sources:
        title = s.title.replace("|", "\\|")
        lines.append(
            f"| {s.number} | {title} ({s.domain or 'workspace'}) | {s.published or 'unknown'} "
            f"| {_score(s.credibility)} | {_score(s.freshness)} | {'yes' if s.cited else 'no'} |"
        )
    verified = result.verification
    lines += ["", f"Confidence: {result.confidence:.2f}. Citations checked: "
              f"{verified.get('supported', 0)} of {verified.get('citations', 0)} supported "
              f"(support threshold {verified.get('threshold', 0.5)})."]
    return "\n".join(lines) + "\n"


def to_html(result: ResearchResult) -> str:
    from markdown_it import MarkdownIt

    # html=False: a source's text or the model's report cannot inject markup.
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(to_markdown(result))
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{escape(result.query)}</title></head>\n<body>\n"
        f"<h1>{escape(result.query)}</h1>\n{body}</body></html>\n"
    )


def write_research(result: ResearchResult, fmt: str, target: Path) -> None:
    """Write ``result`` as ``fmt`` to ``target`` (``OpenManusError`` on failure, one line)."""
    if fmt not in FORMATS:
        raise OpenManusError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}",
                             error_class="user")
    try:
        if fmt == "pdf":
            from openmanus_tui.utilities._cli import Failure, UsageError
            from openmanus_tui.utilities.md_to_pdf import convert

            with tempfile.TemporaryDirectory() as tmp:
                source = Path(tmp) / "report.md"
                source.write_text(f"# {result.query}\n\n" + to_markdown(result), encoding="utf-8")
                try:
                    convert(source, target)
                except (Failure, UsageError) as exc:
                    raise OpenManusError(str(exc), error_class="permanent") from None
            return
        text = {"md": to_markdown, "html": to_html,
                "json": lambda r: r.model_dump_json(indent=2) + "\n"}[fmt](result)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OpenManusError(f"cannot write {target}: {exc.strerror or exc}",
                             error_class="user") from None


def render_research(result: ResearchResult, fmt: str) -> str:
    """The text of ``result`` as ``fmt`` (md, html, json), for standard output."""
    if fmt == "json":
        return result.model_dump_json(indent=2) + "\n"
    return to_html(result) if fmt == "html" else to_markdown(result)
