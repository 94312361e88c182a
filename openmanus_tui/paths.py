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
