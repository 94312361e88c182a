"""Theme files shipped with OpenManus TUI (TOML, one theme a file); see tui/themes.py."""
