"""Secret redaction for exports: known secrets and common credential shapes become ``[REDACTED]``.

Exports leave the machine (shared in issues, attached to reports), so every free-text field of
every event, the session record and the branch labels pass through here before any format is
written. Identifiers and schema fields (event type, status, decision, ...) are never touched:
rewriting them would break the document, and they never carry credentials.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from openmanus_tui.events import parse_event

if TYPE_CHECKING:
    from openmanus_tui.export.document import ExportDoc

REDACTED = "[REDACTED]"

# Placeholder keys for local servers ("x", "ollama", "none") are not credentials, and
# replacing such short strings everywhere would make the transcript unreadable.
MIN_SECRET_LEN = 6

# Event fields that are identifiers or closed vocabularies: never rewritten.
_KEEP_FIELDS = frozenset(
    {
        "type",
        "session_id",
        "run_id",
        "checkpoint_id",
        "parent_id",
        "call_id",
        "message_id",
        "status",
        "decision",
        "by",
        "error_class",
        "stream",
        "level",
        "risk",
        "source",
        "isolation",
    }
)
_KEEP_SESSION_FIELDS = frozenset({"id", "parent_session", "parent_checkpoint", "status"})

# Credential shapes that are recognisable without being told the value.
_SHAPES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        REDACTED,
    ),
    # OpenAI / Anthropic / most "sk-" style keys (sk-proj-..., sk-ant-...).
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"), REDACTED),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), REDACTED),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"), REDACTED),
    (re.compile(r"(?i)\b(Bearer|Basic|Token)(\s+)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1\2{REDACTED}"),
    # user:password@ in URLs
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]+:)[^\s@/]+@"), rf"\1{REDACTED}@"),
    # NAME=value / "name": "value" where the name says it is a credential.
    (
        re.compile(
            r"(?i)\b([A-Za-z0-9_.\-]*(?:api[_\-]?key|apikey|secret|token|password|passwd|"
            r"private[_\-]?key))([\"']?\s*[:=]\s*[\"']?)([^\s\"',;}{]{6,})"
        ),
        rf"\1\2{REDACTED}",
    ),
]

# Dict keys (tool args, meta, memory data) whose string values are credentials.
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_\-])(?:api[_\-]?key|apikey|secret(?:[_\-]?key)?|token|password|passwd|"
    r"authorization|private[_\-]?key|credentials?)$|^(?:api[_\-]?key|apikey|secret|token|password)$"
)


class Redactor:
    """Replaces the given secrets and the recognisable credential shapes in strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        needles: set[str] = set()
        for secret in secrets:
            if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET_LEN:
                continue
            needles.add(secret)
            # A secret inside a JSON string (raw tool-call arguments) appears escaped.
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
            needles.add(escaped)
            needles.add(json.dumps(secret)[1:-1])
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(needles, key=len, reverse=True)
        self._literal = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def text(self, value: str) -> str:
        if self._literal is not None:
            value = self._literal.sub(REDACTED, value)
        for pattern, replacement in _SHAPES:
            value = pattern.sub(replacement, value)
        return value

    def value(self, value: Any, key: str | None = None) -> Any:
        """Redact a JSON-like value; a string under a credential-named key is dropped whole."""
        if isinstance(value, str):
            if key is not None and value and _SECRET_KEY.search(key):
                return REDACTED
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def fields(self, data: Mapping[str, Any], keep: frozenset[str]) -> dict[str, Any]:
        return {k: (v if k in keep else self.value(v)) for k, v in data.items()}


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """One string with the secrets and credential shapes replaced."""
    return Redactor(secrets).text(text)


def redact(doc: ExportDoc, secrets: Iterable[str]) -> ExportDoc:
    """A copy of ``doc`` with every secret (and every recognisable credential) replaced by
    ``[REDACTED]`` in every string field of every event, the session record and branch labels."""
    r = Redactor(secrets)
    events = [
        parse_event(r.fields(e.model_dump(mode="json"), _KEEP_FIELDS)) for e in doc.events
    ]
    branches = [
        {**b, "label": r.text(b["label"])} if isinstance(b.get("label"), str) else dict(b)
        for b in doc.branches
    ]
    return replace(
        doc, session=r.fields(doc.session, _KEEP_SESSION_FIELDS), events=events, branches=branches
    )


_SECRET_ENV = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|AUTH)$|API_KEY")


def secrets_from_environ(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say they hold credentials."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= MIN_SECRET_LEN]


def secrets_from_settings(settings: Any) -> list[str]:
    """Every ``SecretStr`` in the settings, MCP server env/header values, URL passwords."""
    found: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, dict):
            for k, v in value.items():
                if str(k) in ("env", "headers") and isinstance(v, dict):
                    found.extend(str(x) for x in v.values() if isinstance(x, str))
                walk(v, str(k))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found.append(password)

    walk(settings.model_dump(mode="python") if hasattr(settings, "model_dump") else settings)
    return [s for s in found if s and len(s) >= MIN_SECRET_LEN]
