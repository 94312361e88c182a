"""``openmanus write "BRIEF" -o FILE``, ``write --edit FILE --edit-type T [-o FILE]`` and
``write check FILE.md``: the writing system from the command line (issue 14). Parsing and
printing only; the work is ``runtime/writing.py``'s."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from openmanus_tui.cli.common import EXIT_ERROR, EXIT_OK, handles
from openmanus_tui.errors import ConfigError

# Kept here, not imported: every ``openmanus`` start builds this parser (runtime/writing.py
# has the same tuples; tests/test_writing_cli.py checks they agree).
STYLES = ("professional", "academic", "technical", "conversational", "persuasive", "creative")
FORMATS = ("md", "html", "pdf", "docx")
EDIT_TYPES = ("proofread", "shorten", "expand", "simplify", "restyle")


def add_parser(sub: Any) -> None:
    write = sub.add_parser(
        "write", help="write a document from a brief, edit one, or check one (write check FILE)",
        description='openmanus write "BRIEF" -o FILE | write --edit FILE --edit-type T | '
                    "write check FILE.md")
    write.add_argument("brief", nargs="*", metavar="BRIEF",
                       help='what to write; or "check FILE.md" to score an existing document')
    write.add_argument("-o", "--output", metavar="FILE", help="the file to write")
    write.add_argument("--style", choices=STYLES, help="writing style (professional)")
    write.add_argument("--tone", help="tone, e.g. neutral, warm, formal")
    write.add_argument("--audience", help="who reads it")
    write.add_argument("--length", type=int, metavar="WORDS", help="target length in words")
    write.add_argument("--level", choices=("general", "professional", "expert"),
                       help="technical level (sets the readability band)")
    write.add_argument("--citation-style", metavar="STYLE",
                       help="apa, mla, chicago-author-date or chicago-notes")
    write.add_argument("--references", metavar="FILE", help="CSL-JSON or BibTeX references")
    write.add_argument("--cite", action="store_true",
                       help="every section must cite the references")
    write.add_argument("--style-guide", metavar="FILE", help="a file of rules to follow")
    write.add_argument("--from-session", metavar="ID", help="cite a research session's sources")
    write.add_argument("--format", choices=FORMATS, help="md, html, pdf or docx (from -o)")
    write.add_argument("--model", metavar="SPEC", help="model spec, e.g. openai:gpt-4.1-mini")
    write.add_argument("--edit", metavar="FILE", help="edit an existing Markdown file")
    write.add_argument("--edit-type", choices=EDIT_TYPES, help="the kind of edit")
    write.add_argument("--json", action="store_true", help="print the result as JSON")
    handles(write, handle, needs="settings")


async def handle(args: argparse.Namespace, settings: Any) -> int:
    if args.brief[:1] == ["check"]:
        return _check(args, settings)
    if args.edit:
        return await _edit(args, settings)
    return await _write(args, settings)


def _only(args: argparse.Namespace, allowed: set[str], mode: str) -> None:
    """Refuse options that mean nothing in ``mode`` (one line, exit 2)."""
    given = {name for name in ("output", "style", "tone", "audience", "level", "cite",
                               "style_guide", "from_session", "format", "model", "edit",
                               "edit_type", "references", "citation_style", "length", "json")
             if getattr(args, name) not in (None, False)}
    extra = sorted(given - allowed)
    if extra:
        flags = ", ".join("--" + name.replace("_", "-") for name in extra)
        raise ConfigError(f"write {mode}: {flags} does not apply here")


# ---- write check ------------------------------------------------------------------------
def _check(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.writing import check_file

    if len(args.brief) != 2:
        raise ConfigError("write check takes one Markdown file: openmanus write check FILE.md")
    _only(args, {"references", "citation_style", "length", "json"}, "check")
    report = check_file(Path(args.brief[1]), settings,
                        references=Path(args.references) if args.references else None,
                        citation_style=args.citation_style, length_words=args.length)
    if args.json:
        print(json.dumps({"file": args.brief[1], **report.as_dict()}, indent=2,
                         ensure_ascii=False))
    else:
        print(render_report(args.brief[1], report))
    return EXIT_OK if report.ok else EXIT_ERROR


def render_report(name: str, report: Any) -> str:
    r, s, t = report.readability, report.style, report.structure
    from openmanus_tui.runtime.writing import STYLE_LABELS

    lines = [f"{name}: {report.words} words · quality {report.quality_score:.2f}"]
    lines.append(f"  readability  Flesch reading ease {r.flesch_reading_ease:.1f} · "
                 f"Flesch–Kincaid grade {r.flesch_kincaid_grade:.1f} · Gunning fog "
                 f"{r.gunning_fog:.1f} · SMOG {r.smog:.1f} · {r.avg_sentence_length:.1f} words "
                 "a sentence")
    lines.append(f"  style        {len(s.findings)}{'+' if s.findings_capped else ''} "
                 f"proselint findings · {s.passive_sentences} of {s.sentences} sentences "
                 f"passive · {s.long_sentences} over {s.long_sentence_words} words")
    lines.append(f"  structure    {t.headings} headings · {t.paragraphs['count']} paragraphs "
                 f"(mean {t.paragraphs['mean']:.0f} words) · {t.lists} lists · {t.tables} "
                 f"tables · {t.figures} figures · {t.code_blocks} code blocks")
    for skip in t.heading_level_skips:
        lines.append(f"               heading level skipped: {skip}")
    if report.target_words:
        low, high = report.target_words
        lines.append(f"  length       {report.words} words, target {low}–{high}")
    errors = report.citation_errors
    lines.append(f"  citations    {STYLE_LABELS[report.citation_style]}: "
                 f"{report.citation_count} citations, {report.reference_count} references, "
                 f"{len(errors)} errors")
    for problem in report.citation_problems:
        lines.append(f"    {problem.level:7} {problem.message}")
    lines.append("  quality      " + " + ".join(
        f"{p.name} {p.score:.2f}×{p.weight:g}" for p in report.parts)
        + f" (÷ {sum(p.weight for p in report.parts):g}) = {report.quality_score:.2f}")
    for part in report.parts:
        lines.append(f"    {part.name:16} {part.score:.2f}  {part.detail}")
    if s.findings:
        lines.append("  findings")
        for finding in s.findings[:20]:
            lines.append(f"    line {finding.line}:{finding.column}  {finding.check}: "
                         f"{finding.message}")
        if len(s.findings) > 20:
            lines.append(f"    … {len(s.findings) - 20} more (--json lists them all)")
    return "\n".join(lines)


# ---- write --edit -----------------------------------------------------------------------
async def _edit(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.writing import edit_file

    _only(args, {"edit", "edit_type", "output", "model", "style", "tone", "audience", "json"},
          "--edit")
    if args.brief:
        raise ConfigError("write --edit takes no BRIEF: openmanus write --edit FILE "
                          "--edit-type TYPE [-o FILE]")
    if not args.edit_type:
        raise ConfigError("write --edit needs --edit-type proofread|shorten|expand|simplify|"
                          "restyle")
    requirements = _requirements(args, settings, brief="") if args.edit_type == "restyle" else None
    edited, diff = await edit_file(settings, Path(args.edit), args.edit_type,
                                   model_spec=args.model, requirements=requirements)
    if args.output:
        from openmanus_tui.runtime.writing import save_text

        save_text(Path(args.output), edited)
    if args.json:
        print(json.dumps({"file": args.edit, "edit_type": args.edit_type,
                          "output": args.output, "diff": diff, "content": edited},
                         ensure_ascii=False))
    else:
        sys.stdout.write(diff or "(no change)\n")
        if args.output:
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            print("nothing written: add -o FILE to keep the edit", file=sys.stderr)
    return EXIT_OK


# ---- write "BRIEF" ----------------------------------------------------------------------
def _requirements(args: argparse.Namespace, settings: Any, *, brief: str) -> Any:
    from openmanus_tui.runtime.writing import build_requirements

    return build_requirements(
        settings, brief=brief, output=args.output, fmt=args.format, style=args.style,
        tone=args.tone, audience=args.audience, length=args.length, level=args.level,
        citation_style=args.citation_style, cite=args.cite, style_guide=args.style_guide)


async def _write(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.runtime.writing import write_from_brief

    brief = " ".join(args.brief).strip()
    if not brief:
        raise ConfigError('write needs a BRIEF: openmanus write "what to write" -o FILE')
    if not args.output:
        raise ConfigError("write needs -o FILE (the document is the output, not the terminal)")
    requirements = _requirements(args, settings, brief=brief)
    def progress(step: str) -> None:
        print(f"writing: {step}", file=sys.stderr)

    generated = await write_from_brief(
        settings, requirements, Path(args.output),
        references=Path(args.references) if args.references else None,
        from_session=args.from_session, model_spec=args.model, progress=progress)
    report = generated.report
    if args.json:
        print(generated.model_dump_json(indent=2))
    else:
        problems = report["citations"]["problems"]
        print(f"{args.output}: {report['words']} words · quality {generated.quality_score:.2f}"
              f" · {len(generated.citations)} references cited · "
              f"{generated.metadata.get('rounds', 0)} revision rounds")
        for review in generated.reviews:
            failed = [r for r in review.results if not r.passed]
            state = "passed" if not failed else "failed: " + "; ".join(
                f"{r.criterion} ({r.reason})" for r in failed)
            print(f"  {review.section}: {state}")
        for problem in problems:
            print(f"  {problem['level']}: {problem['message']}")
    return EXIT_OK if report["ok"] else EXIT_ERROR
