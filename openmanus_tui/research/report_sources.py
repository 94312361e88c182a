"""The sources a report's citations are checked against (``openmanus research verify``).

- With a session: the report's reference entries (``[n] Title — URL or file:path``) are looked
  up in that session's source registry by their normalised key and checked against the stored
  text; an entry the registry does not have is unreadable ("not a source of this session"),
  never fetched. A report without a reference list uses the registry's own numbers.
- Without a session: each entry is fetched through the same network policy (URLs; nothing is
  registered) or read as a file relative to the report's folder (inside it only).
"""

from __future__ import annotations

from pathlib import Path

from openmanus_tui.errors import OpenManusError
from openmanus_tui.research.documents import normalize_url
from openmanus_tui.research.service import SourceService
from openmanus_tui.research.session_library import file_path, is_url
from openmanus_tui.research.verify import SourceText, parse_references


async def report_sources(
    report: str, service: SourceService, *, session_id: str | None, base_dir: Path
) -> dict[int, SourceText]:
    refs = parse_references(report)
    out: dict[int, SourceText] = {}
    if session_id is not None and not refs:
        for record in await service.sources(session_id):
            text = await service.text(record)
            out[record.number] = SourceText(record.number, record.title, record.key, text,
                                            "" if text else "only seen in search results")
        return out
    for number, ref in refs.items():
        location = ref.location
        if session_id is not None:
            key = normalize_url(location) if is_url(location) else f"file:{file_path(location)}"
            record = await service.registry.by_key(session_id, key)
            text = await service.text(record) if record is not None else None
            why = ("not a source of this session" if record is None
                   else "its text is not in the store" if text is None else "")
            out[number] = SourceText(number, ref.title, location, text, why)
            continue
        try:
            if is_url(location):
                fetched = await service.fetch(location)
            else:
                fetched = await service.read_file(base_dir, file_path(location))
            out[number] = SourceText(number, ref.title, location, fetched.document.text)
        except OpenManusError as exc:
            out[number] = SourceText(number, ref.title, location, None, exc.message)
    return out
