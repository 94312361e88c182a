"""The writing system's entry points for front ends (``openmanus write``, ``write check``,
``cite``, the workbench's Document tab): they read files, turn library errors into one-line
user errors, run the writing graph with the configured model, write the output file and store
the result. Domain logic lives in ``openmanus_tui/writing``."""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openmanus_tui.config import Settings
from openmanus_tui.errors import OpenManusError
from openmanus_tui.writing.citations import (
    REFERENCE_NAMES,
    STYLE_LABELS,
    STYLES,
    CitationError,
    CitationManager,
    load_references,
    style_name,
)
from openmanus_tui.writing.output import OutputError, write_document
from openmanus_tui.writing.quality import DocumentReport, check_document
from openmanus_tui.writing.requirements import (
    EDIT_TYPES,
    FORMATS,
    GeneratedContent,
    WritingRequirements,
)
from openmanus_tui.writing.requirements import (
    STYLES as WRITING_STYLES,
)

__all__ = [
    "EDIT_TYPES",
    "FORMATS",
    "STYLES",
    "STYLE_LABELS",
    "WRITING_STYLES",
    "DocumentReport",
    "DocumentView",
    "GeneratedContent",
    "WritingRequirements",
    "build_requirements",
    "check_file",
    "document_view",
    "edit_file",
    "format_reference_file",
    "read_text",
    "references_for",
    "save_text",
    "session_references",
    "session_write_options",
    "workspace_documents",
    "write_from_brief",
]


def _user(message: str) -> OpenManusError:
    return OpenManusError(message, error_class="user")


def read_text(path: Path, what: str = "document") -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _user(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise _user(f"{what} is a directory: {path}") from None
    except UnicodeDecodeError:
        raise _user(f"{what} is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise _user(f"cannot read {path}: {exc.strerror or exc}") from None


def save_text(path: Path, text: str) -> None:
    try:
        write_document(text, path, "md")
    except OutputError as exc:
        raise _user(str(exc)) from None


async def session_references(settings: Settings, session_id: str,
                             ) -> tuple[str, list[dict[str, Any]]]:
    """(the session's id, the sources it read as CSL items ``s1``, ``s2``…):
    ``--from-session``."""
    try:
        from openmanus_tui.research.registry import SourceRegistry  # the research package
    except ImportError:
        raise _user("--from-session: not yet available in this build (it needs the research "
                    "source registry); export the sources as CSL-JSON and use --references"
                    ) from None
    from openmanus_tui.store.db import Database
    from openmanus_tui.writing.sources import source_to_csl

    db = await Database.open(settings.db_path)
    try:
        record = await db.get_session(session_id)
        registry = SourceRegistry(db)
        await registry.setup()
        sources = await registry.list(record.id)
    finally:
        await db.close()
    if not sources:
        raise _user(f"--from-session {session_id}: the session has no sources")
    return record.id, [source_to_csl(source.as_dict()) for source in sources]


def _references(path: Path | None) -> list[dict[str, Any]] | None:
    if path is None:
        return None
    try:
        return load_references(path)
    except CitationError as exc:
        raise _user(str(exc)) from None


def _style(style: str | None, settings: Settings) -> str:
    try:
        return style_name(style or settings.writing.citation_style)
    except CitationError as exc:
        raise _user(str(exc)) from None


def format_reference_file(path: Path, style: str | None, fmt: str, settings: Settings,
                          ) -> list[str]:
    """The formatted reference list of a CSL-JSON or BibTeX file (``openmanus cite``)."""
    items = _references(path) or []
    manager = CitationManager(items, _style(style, settings))
    if fmt not in ("text", "html"):
        raise _user(f"unknown format {fmt!r}: use text or html")
    return manager.reference_list(fmt=fmt)


def check_file(path: Path, settings: Settings, *, references: Path | None = None,
               citation_style: str | None = None, length_words: int | None = None,
               ) -> DocumentReport:
    """Every score and citation problem of a Markdown file (``openmanus write check``)."""
    text = read_text(path)
    style = _style(citation_style, settings)
    requirements = WritingRequirements(citation_style=style, length_words=length_words,
                                       length_tolerance=settings.writing.length_tolerance)
    return check_document(text, references=_references(references), citation_style=style,
                          requirements=requirements,
                          long_sentence_words=settings.writing.long_sentence_words)


def build_requirements(settings: Settings, *, brief: str, output: str | None = None,
                       fmt: str | None = None, style: str | None = None,
                       tone: str | None = None, audience: str | None = None,
                       length: int | str | None = None, level: str | None = None,
                       citation_style: str | None = None, cite: bool = False,
                       style_guide: str | None = None) -> WritingRequirements:
    """A writer's requirements from ``openmanus write``'s flags or the workbench's form: the
    one validation of both (unset values take the [writing] settings or the defaults; the
    format comes from ``output``'s suffix unless given, and they must agree). Raises
    ``ConfigError`` with one line naming the field."""
    from openmanus_tui.errors import ConfigError

    values: dict[str, Any] = {
        "brief": brief,
        "citation_style": citation_style or settings.writing.citation_style,
        "length_tolerance": settings.writing.length_tolerance,
        "citations_required": bool(cite),
    }
    for key, value in (("style", style), ("tone", tone), ("audience", audience),
                       ("length_words", length), ("technical_level", level)):
        if value is not None and value != "":
            values[key] = value
    if style_guide:
        values["style_guide"] = read_text(Path(style_guide), "style guide")
    suffix = Path(output).suffix.lstrip(".").lower() if output else ""
    suffix = {"markdown": "md", "htm": "html"}.get(suffix, suffix)
    if fmt and suffix not in ("", fmt):
        raise ConfigError(f"the output file {output} and the format {fmt} disagree")
    values["format"] = fmt or suffix or "md"
    if values["format"] not in FORMATS:
        raise ConfigError(f"output file {output}: unknown format {values['format']!r}; use "
                          ".md, .html, .pdf or .docx (or choose the format)")
    try:
        return WritingRequirements(**values)
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") else {"msg": str(exc), "loc": ()}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ConfigError(f"write: {where + ': ' if where else ''}{first['msg']}") from None


def session_write_options(settings: Settings, *, brief: str, folder: Path,
                          references: str | None = None, output: str | None = None,
                          **requirements: Any) -> dict[str, Any]:
    """What ``Session.run(brief, writing=...)`` takes (JSON, kept for a resume), validated as
    ``openmanus write`` validates its flags: the requirements (``build_requirements``), the
    references file read now (relative to ``folder``), the output file (relative paths are
    in the session's workspace when the run writes it; none: named after the title there).
    Raises ``OpenManusError`` with one line."""
    from openmanus_tui.errors import ConfigError

    if not brief.strip():
        raise ConfigError("write needs a brief: what to write")
    req = build_requirements(settings, brief=brief.strip(), output=output or None,
                             **requirements)
    ref_path: str | None = None
    if references:
        path = Path(references).expanduser()
        path = path if path.is_absolute() else folder / path
        _references(path)  # one line now, not an error in the middle of the run
        ref_path = str(path.resolve())
    if req.citations_required and not ref_path:
        raise ConfigError("citations are required but no references were given")
    return {"requirements": req.model_dump(), "references": ref_path,
            "output": str(Path(output).expanduser()) if output else None}


Progress = Callable[[str], Awaitable[None] | None]
NEEDS_MODEL = ("{what} needs a real model (the offline demo model cannot write): set "
               "OPENAI_API_KEY, and OPENAI_BASE_URL for Ollama, vLLM, LM Studio or Gemini")


async def write_from_brief(settings: Settings, requirements: WritingRequirements, output: Path,
                           *, references: Path | None = None, from_session: str | None = None,
                           model_spec: str | None = None, progress: Progress | None = None,
                           ) -> GeneratedContent:
    """Run the writing graph, write ``output`` in ``requirements.format``, store the result
    (under the session given by ``from_session``, whose sources it may cite)."""
    from openmanus_tui.models.factory import make_model
    from openmanus_tui.store.db import Database
    from openmanus_tui.writing.graph import WritingError, WritingGraph
    from openmanus_tui.writing.records import WritingRecords

    items = _references(references) or []
    session_id = None
    if from_session:
        session_id, session_items = await session_references(settings, from_session)
        items = [*items, *session_items]
    if requirements.citations_required and not items:
        raise _user("citations are required but no references were given: --references FILE")
    model, info = make_model(settings, model_spec)
    if info.offline_reason:
        raise _user(NEEDS_MODEL.format(what="writing"))
    graph = WritingGraph(model, max_rounds=settings.writing.max_revision_rounds,
                         progress=progress, **_standalone_calls(settings, model_spec, progress))
    try:
        generated = await graph.run(requirements, items)
    except WritingError as exc:
        raise OpenManusError(str(exc)) from None
    try:
        write_document(generated.content, output, requirements.format)
    except (OutputError, ValueError) as exc:
        raise _user(str(exc)) from None
    generated.metadata["output"] = str(output)
    db = await Database.open(settings.db_path)
    try:
        records = WritingRecords(db)
        await records.setup()
        generated.metadata["document_id"] = await records.add(
            generated, brief=requirements.brief, path=str(output.resolve()),
            fmt=requirements.format,
            session_id=session_id)
    finally:
        await db.close()
    return generated


def _standalone_calls(settings: Settings, model_spec: str | None,
                      progress: Progress | None) -> dict[str, Any]:
    """The model path of a write outside a session (``openmanus write``): the configured
    fallbacks and breakers as a session's runs have them, a fallback said in the progress."""
    from openmanus_tui.models.factory import make_chain
    from openmanus_tui.resilience.breakers import BreakerBoard

    async def on_fallback(failed: Any, to: Any, error: Any) -> None:
        if progress is not None:
            result = progress(f"{failed.spec} failed ({error.message}): using {to.spec}")
            if result is not None:
                await result

    return {"chain": make_chain(settings, model_spec),
            "breakers": BreakerBoard(
                failure_threshold=settings.resilience.failure_threshold,
                recovery_timeout=settings.resilience.recovery_timeout),
            "on_fallback": on_fallback, "max_retries": settings.model.max_retries,
            "retry_backoff": settings.model.retry_backoff}


async def edit_file(settings: Settings, path: Path, edit_type: str, *,
                    model_spec: str | None = None,
                    requirements: WritingRequirements | None = None) -> tuple[str, str]:
    """One editing pass over a Markdown file: the edited text and a unified diff."""
    from openmanus_tui.models.factory import make_model
    from openmanus_tui.writing.citations import find_markers
    from openmanus_tui.writing.graph import edit_content

    if edit_type not in EDIT_TYPES:
        raise _user(f"unknown edit type {edit_type!r}: use {', '.join(EDIT_TYPES)}")
    text = read_text(path)
    model, info = make_model(settings, model_spec)
    if info.offline_reason:
        raise _user(NEEDS_MODEL.format(what="editing"))
    edited = await edit_content(model, text, edit_type, requirements,
                                **_standalone_calls(settings, model_spec, None))
    before = {r.key for m in find_markers(text) for r in m.refs}
    after = {r.key for m in find_markers(edited) for r in m.refs}
    lost = sorted(before - after)
    if lost:
        raise OpenManusError(
            f"the edit dropped citations {', '.join('@' + k for k in lost)}: nothing written",
            hint="run the edit again, or edit by hand")
    diff = "".join(difflib.unified_diff(
        text.splitlines(keepends=True), edited.splitlines(keepends=True),
        fromfile=str(path), tofile=f"{path} ({edit_type})"))
    return edited, diff


# ---- the workbench's Document tab ---------------------------------------------------------


def workspace_documents(folder: Path, limit: int = 50) -> list[Path]:
    """The Markdown files of a workspace (not hidden, not in hidden folders, not the section
    drafts of a document the writing graph wrote: ``<title>.sections/``), newest first."""
    found: list[tuple[float, Path]] = []
    try:
        for path in folder.rglob("*.md"):
            relative = path.relative_to(folder)
            if any(part.startswith(".") or part.endswith(".sections")
                   for part in relative.parts) or not path.is_file():
                continue
            found.append((path.stat().st_mtime, path))
    except OSError:
        return []
    return [p for _, p in sorted(found, key=lambda item: (-item[0], str(item[1])))[:limit]]


def references_for(document: Path) -> Path | None:
    """The reference file a document uses: ``<its name>.bib|.json`` beside it, else
    ``references.json|bib`` or ``refs.json|bib`` in its folder."""
    for candidate in (document.with_suffix(".bib"), document.with_suffix(".json"),
                      *(document.parent / name for name in REFERENCE_NAMES)):
        if candidate.is_file():
            return candidate
    return None


@dataclass
class DocumentView:
    """What the Document tab shows for one file."""

    path: Path
    text: str
    report: DocumentReport | None
    reviews: list[Any]  # SectionReview of the writing graph's last run on this file
    references: Path | None
    error: str = ""


async def document_view(runtime: Any, path: Path) -> DocumentView:
    """Check ``path`` (with the references found beside it) and find the review rubric of the
    run that wrote it, if the writing graph did. Errors become ``error``, never exceptions."""
    import asyncio

    from openmanus_tui.writing.records import WritingRecords

    settings = runtime.settings
    references = references_for(path)
    try:
        text = read_text(path)
        report = await asyncio.to_thread(check_file, path, settings, references=references)
    except OpenManusError as exc:
        return DocumentView(path, "", None, [], references, error=str(exc))
    reviews: list[Any] = []
    if runtime.db.damaged is None:
        records = WritingRecords(runtime.db)
        await records.setup()
        for row in await records.list():
            if Path(row.path).resolve() == path.resolve():
                generated = await records.get(row.id)
                reviews = list(generated.reviews) if generated else []
                break
    return DocumentView(path, text, report, reviews, references)
