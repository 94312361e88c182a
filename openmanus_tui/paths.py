"""Where things live, without importing the validated configuration.

``config.py`` builds the settings with pydantic, which costs a third of a second to import;
the workbench paints its first frame before that (``tui/app.py``) and needs only these
locations and defaults to guess the theme it will start with.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "openmanus"
ENV_PREFIX = "OPENMANUS_"
DEFAULT_THEME = "openmanus-dark"


def config_path() -> Path:
    """The config file: ``OPENMANUS_CONFIG``, else the platform's config folder."""
    env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    """The platform's data folder for the app (``data_dir`` in the settings overrides it)."""
    return Path(platformdirs.user_data_dir(APP_NAME)).expanduser()


def probable_data_dir() -> Path:
    """The data folder as the environment names it, before the config file is read: right
    unless the file sets ``data_dir`` (only used for guesses that the settings confirm)."""
    env = os.environ.get(f"{ENV_PREFIX}DATA_DIR")
    return Path(env).expanduser() if env else default_data_dir()


# ---- environment overlays (OPENMANUS_ENV) --------------------------------------------------
ENV_VAR = f"{ENV_PREFIX}ENV"


def config_env() -> str | None:
    """The environment named by ``OPENMANUS_ENV`` (``dev``, ``staging``, ``prod``...), or None."""
    value = os.environ.get(ENV_VAR, "").strip()
    return value or None


def overlay_path(env: str | None = None) -> Path | None:
    """``config.<env>.toml`` next to the config file, merged over it when ``OPENMANUS_ENV``
    names ``env``; None without an environment."""
    env = config_env() if env is None else env
    if not env:
        return None
    base = config_path()
    return base.with_name(f"{base.stem}.{env}{base.suffix or '.toml'}")


def config_files() -> list[Path]:
    """The files the settings are read from, lowest first: the config file, then the
    environment's overlay (each whether or not it exists; ``config.py`` says which must)."""
    overlay = overlay_path()
    return [config_path(), *([overlay] if overlay is not None else [])]
