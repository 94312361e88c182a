"""The input of a Writing-profile session's run: the task is the brief; the requirements take
the [writing] settings; the references are the workspace's ``references.json|bib`` (or
``refs.json|bib``) when there is one, so ``[@key]`` citations are formatted and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

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
                          settings: Any) -> dict[str, Any]:
    references = workspace_references(workspace)
    requirements = WritingRequirements(
        brief=text,
        citation_style=settings.writing.citation_style,
        length_tolerance=settings.writing.length_tolerance,
        citations_required=bool(references),
    )
    return writing_input(text, message, requirements=requirements, references=references)
