"""A configuration as a version: its files and settings with the secrets masked, and a hash.

A configuration is what the files say (the config file and the ``OPENMANUS_ENV`` overlay):
command-line flags (``--workspace``, ``--approval``) belong to one process, not to the
configuration, so they make no new version. A snapshot holds

- ``files``: each file's text (None: not present) with every plain-text secret replaced by
  ``****`` (``tomlkit`` keeps the rest of the file as written: comments, order, layout);
  ``"secret:NAME"`` references stay, they are names, not values;
- ``settings``: the effective settings of those files and the environment, masked as
  ``config show`` masks them (for ``config diff``);
- ``env``: the ``OPENMANUS_ENV`` name; ``hash``: SHA-256 over the masked files and ``env``.

Masked values cannot be written back: ``restore_text`` takes them from the file as it is now,
or refuses (one line) when it has none. ``runtime/config_versions.py`` stores snapshots
(``store/config_versions.py``), lists, compares and rolls back.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openmanus_tui.errors import ConfigError
from openmanus_tui.paths import config_env, config_files
from openmanus_tui.secret_store import secret_name

MASK = "****"
NOT_KEPT = "# (not valid TOML, content not kept: "  # what stands for a file tomlkit cannot read

# Key names whose string values are credentials wherever they appear (MCP server blocks,
# future sections); the SecretStr settings are found from the models themselves.
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_\-])(?:api[_\-]?key|apikey|secret|token|password|passwd|authorization|"
    r"private[_\-]?key|credentials?)$"
)


@dataclass(frozen=True)
class ConfigSnapshot:
    files: dict[str, str | None]
    settings: dict[str, Any]
    env: str | None
    hash: str

    def content(self) -> dict[str, Any]:
        return {"files": self.files, "settings": self.settings, "env": self.env}


def _secret_fields() -> set[tuple[str, str]]:
    """(section, key) of every ``SecretStr`` setting (model.api_key, ...)."""
    from openmanus_tui.config import _Sections

    found: set[tuple[str, str]] = set()
    for section, info in _Sections.model_fields.items():
        model = info.annotation
        fields = getattr(model, "model_fields", None)
        if not fields:
            continue
        for key, field in fields.items():
            if "SecretStr" in str(field.annotation):
                found.add((section, key))
    return found


def _is_secret_path(path: tuple[str, ...], secret_fields: set[tuple[str, str]]) -> bool:
    if len(path) == 2 and (path[0], path[1]) in secret_fields:
        return True
    # MCP servers: every value of an env or headers block (tokens live there).
    if len(path) >= 5 and path[:2] == ("mcp", "servers") and path[3] in ("env", "headers"):
        return True
    return bool(path) and bool(_SECRET_KEY.search(path[-1]))


def _mask_url(value: str) -> str:
    from openmanus_tui.config import _mask_url_password

    return _mask_url_password(value)


def _walk_mask(container: Any, path: tuple[str, ...], secret_fields: set[tuple[str, str]]) -> None:
    for key in list(container.keys()):
        value = container[key]
        here = (*path, str(key))
        if hasattr(value, "keys"):
            _walk_mask(value, here, secret_fields)
        elif isinstance(value, str):
            if secret_name(value) is not None:
                continue  # a reference names a secret, it is not one
            if _is_secret_path(here, secret_fields) and value:
                container[key] = MASK
            elif "://" in value:
                masked = _mask_url(value)
                if masked != value:
                    container[key] = masked


def mask_toml(text: str) -> str:
    """``text`` (a config file) with every plain-text secret replaced by ``****``; a file
    tomlkit cannot parse is stored as a note, never as it is (it may hold a key)."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        return f"{NOT_KEPT}{exc})\n"
    _walk_mask(doc, (), _secret_fields())
    return doc.as_string()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def take_snapshot() -> ConfigSnapshot:
    """The configuration as the files say now (raises ``ConfigError`` when it is invalid)."""
    from openmanus_tui.config import load_settings, settings_as_dict

    files = {str(path): _read(path) for path in config_files()}
    masked = {path: (mask_toml(text) if text is not None else None) for path, text in files.items()}
    settings = load_settings(resolve_secrets=False)
    shown = json.loads(json.dumps(settings_as_dict(settings), default=str))
    env = config_env()
    digest = hashlib.sha256(
        json.dumps({"files": masked, "env": env}, sort_keys=True).encode()
    ).hexdigest()
    return ConfigSnapshot(masked, shown, env, digest)


# ---- comparing --------------------------------------------------------------------------------
def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}`` (lists and empty tables are leaves)."""
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def settings_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old → new`` for every setting that differs, sorted by key."""
    a, b = flatten(old), flatten(new)
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        before, after = a.get(key, missing), b.get(key, missing)
        if before != after:
            lines.append(
                f"{key}: {'(unset)' if before is missing else json.dumps(before)} → "
                f"{'(unset)' if after is missing else json.dumps(after)}"
            )
    return lines


def files_diff(
    old: dict[str, str | None], new: dict[str, str | None], old_label: str, new_label: str
) -> str:
    """A unified diff of the two versions' files (masked), file by file."""
    chunks: list[str] = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        chunks.extend(
            difflib.unified_diff(
                (a or "").splitlines(keepends=True),
                (b or "").splitlines(keepends=True),
                fromfile=f"{old_label}: {path}{'' if a is not None else ' (not present)'}",
                tofile=f"{new_label}: {path}{'' if b is not None else ' (not present)'}",
            )
        )
    text = "".join(chunks)
    return text if not text or text.endswith("\n") else text + "\n"


# ---- restoring --------------------------------------------------------------------------------
def restore_text(stored: str, current: str | None, path: str, version: int) -> str:
    """``stored`` (a masked file of version ``version``) with each ``****`` put back from
    the file as it is now (``current``) at the same key; one line when one cannot be."""
    import tomlkit

    if stored.startswith(NOT_KEPT):
        raise ConfigError(f"version {version}: {path} could not be read as TOML then, so its "
                          "content was not kept; nothing to roll back to")
    doc = tomlkit.parse(stored)
    now = tomlkit.parse(current) if current else tomlkit.document()
    problems: list[str] = []

    def value_at(container: Any, keys: tuple[str, ...]) -> Any:
        for key in keys:
            if not hasattr(container, "keys") or key not in container:
                return None
            container = container[key]
        return container

    def walk(container: Any, keys: tuple[str, ...]) -> None:
        for key in list(container.keys()):
            value = container[key]
            here = (*keys, str(key))
            if hasattr(value, "keys"):
                walk(value, here)
            elif isinstance(value, str) and MASK in value:
                then = value_at(now, here)
                if isinstance(then, str) and MASK not in then and then:
                    if value == MASK:
                        container[key] = str(then)
                    elif "://" in value and "://" in then:
                        password = urlsplit(str(then)).password
                        if password:
                            container[key] = value.replace(f":{MASK}@", f":{password}@", 1)
                        else:
                            problems.append(".".join(here))
                    else:
                        problems.append(".".join(here))
                else:
                    problems.append(".".join(here))

    walk(doc, ())
    if problems:
        raise ConfigError(
            f"version {version}: {path}: {problems[0]} held a plain-text secret, which the "
            "history does not keep, and the file has no value for it now",
            hint="Store it with `openmanus secrets set NAME` and write \"secret:NAME\" instead.",
        )
    return doc.as_string()
