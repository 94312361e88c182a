"""A research session's sources (``research/registry.py``'s ``SourceRecord.as_dict()``) as
CSL-JSON items, so a document written ``--from-session`` cites what the session read. Works on
plain dicts: the writing package does not depend on the research package."""

from __future__ import annotations

import re
from typing import Any


def _date_parts(value: str | None) -> dict[str, Any] | None:
    match = re.match(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", value or "")
    if not match:
        return None
    return {"date-parts": [[int(p) for p in match.groups() if p]]}


def source_to_csl(source: dict[str, Any]) -> dict[str, Any]:
    """One source record as a CSL item with the id ``s<number>`` (``[@s3]`` in a draft)."""
    web = source.get("kind") == "web"
    item: dict[str, Any] = {
        "id": f"s{source['number']}",
        "type": "webpage" if web else "document",
        "title": source.get("title") or source.get("url") or source.get("key") or "",
    }
    author = source.get("author")
    organisation = source.get("site") or (source.get("domain") if web else None)
    if author:
        item["author"] = [{"literal": author}]
    elif organisation:
        item["author"] = [{"literal": organisation}]
    if organisation:
        item["container-title"] = organisation
    if web and source.get("url"):
        item["URL"] = source["url"]
    issued = _date_parts(source.get("published") or source.get("modified"))
    if issued:
        item["issued"] = issued
    accessed = _date_parts(source.get("fetched"))
    if accessed:
        item["accessed"] = accessed
    return item
