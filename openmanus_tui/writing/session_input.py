"""The input of a Writing-profile session's run: the task is the brief; the requirements take
the [writing] settings (or the workbench form's); the references are the workspace's
``references.json|bib`` (or ``refs.json|bib``) when there is one, or the form's file, so
``[@key]`` citations are formatted and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from openmanus_tui.errors import OpenManusError
from openmanus_tui.writing.citations import REFERENCE_NAMES, CitationError, load_references
from openmanus_tui.writing.graph import writing_input
from openmanus_tui.writing.requirements import WritingRequirements


def workspace_references(workspace: Path) -> list[dict[str, Any]]:
    for name in REFERENCE_NAMES:
        path = workspace / name
        if path.is_file():
            try:
                return load_references(path)
            except CitationError:
                return []  # a broken file is reported by `write check`, not here
    return []


def writing_session_input(text: str, message: BaseMessage, workspace: Path,
                          settings: Any, options: dict[str, Any] | None = None,
                          ) -> dict[str, Any]:
    """``options`` (the workbench's /write form, ``runtime.writing.session_write_options``):
    the requirements, a references file and an output file; citations are required when
    there are references, as without options."""
    options = options or {}
    if options.get("references"):
        try:
            references = load_references(Path(options["references"]))
        except CitationError as exc:  # checked when the form was sent; changed since
            raise OpenManusError(str(exc), error_class="user") from None
    else:
        references = workspace_references(workspace)
    base = {"citation_style": settings.writing.citation_style,
            "length_tolerance": settings.writing.length_tolerance}
    requirements = WritingRequirements(**{**base, **(options.get("requirements") or {}),
                                          "brief": text})
    if references and not requirements.citations_required:
        requirements = requirements.model_copy(update={"citations_required": True})
    return writing_input(text, message, requirements=requirements, references=references,
                         output=options.get("output"))
