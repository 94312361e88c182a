"""Session export (Markdown, JSON, HTML) and import parsing.

Build a document with ``prepare_export`` (which drops live-only events and redacts secrets),
then write it with ``to_json``, ``to_markdown`` or ``to_html``. ``from_json`` reads a JSON
export back, or the JSONL of ``openmanus run --json`` / ``openmanus sessions show ID --json``.
"""

from openmanus_tui.export.document import (
    EXPORT_VERSION,
    ExportDoc,
    from_json,
    is_live_only,
    prepare_export,
    to_json,
)
from openmanus_tui.export.html import to_html
from openmanus_tui.export.lineage import branches_from_events, find_branch, select_branch
from openmanus_tui.export.markdown import to_markdown
from openmanus_tui.export.redact import (
    REDACTED,
    redact,
    redact_text,
    secrets_from_environ,
    secrets_from_settings,
)

__all__ = [
    "EXPORT_VERSION",
    "REDACTED",
    "ExportDoc",
    "branches_from_events",
    "find_branch",
    "from_json",
    "is_live_only",
    "prepare_export",
    "redact",
    "redact_text",
    "secrets_from_environ",
    "secrets_from_settings",
    "select_branch",
    "to_html",
    "to_json",
    "to_markdown",
]
