"""Themes as data: TOML files turned into ``textual.theme.Theme``.

Shipped themes live in the top-level ``themes/`` folder; user themes in the ``themes/`` folder
beside the config file (``platformdirs.user_config_dir("openmanus")/themes`` by default). A
broken file is skipped and reported; a user theme with a shipped name replaces it. Format::

    name = "openmanus-dark"
    dark = true
    primary = "#4f9cf9"        # required; any other Theme colour field is optional
    [variables]                # optional Textual design variables
    "footer-key-foreground" = "#4f9cf9"
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

COLOR_FIELDS = (
    "primary", "secondary", "warning", "error", "success", "accent", "foreground",
    "background", "surface", "panel", "boost",
)
ALLOWED = {f.name for f in fields(Theme)}


def shipped_theme_dir() -> Path:
    """The theme files shipped in the top-level ``themes/`` folder, installed with the
    package as ``openmanus_tui.themes`` (see ``package-dir`` in pyproject.toml)."""
    # find_spec, not importlib.resources: that one imports zipfile and friends, a few
    # milliseconds of the first frame. The folder is a plain package in every install.
    from importlib.util import find_spec

    spec = find_spec("openmanus_tui.themes")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def user_theme_dir() -> Path:
    from openmanus_tui.paths import config_path

    return config_path().parent / "themes"


def theme_from_data(data: dict[str, Any], source: str) -> Theme:
    """Validate one theme's data; raises ``ValueError`` naming the file and the problem."""
    unknown = sorted(set(data) - ALLOWED)
    if unknown:
        raise ValueError(f"{source}: unknown key {unknown[0]!r}")
    for key in ("name", "primary"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{source}: {key} is required (a string)")
    for key in COLOR_FIELDS:
        if key in data:
            try:
                Color.parse(data[key])
            except ColorParseError:
                raise ValueError(f"{source}: {key}: not a colour: {data[key]!r}") from None
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ValueError(f"{source}: [variables] must map names to strings")
    return Theme(**data)


def load_theme_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: broken TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: cannot read: {exc}") from None
    return theme_from_data(data, path.name)


def load_themes(dirs: list[Path]) -> tuple[dict[str, Theme], list[str]]:
    """All themes in ``dirs`` (later folders win a name clash), and one error line per bad file."""
    themes: dict[str, Theme] = {}
    errors: list[str] = []
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            themes[theme.name] = theme
    return themes, errors
