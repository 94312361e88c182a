"""Packaging: every package and the shipped data (themes, demo script) install with pip."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "openmanus_tui").rglob("__init__.py")
    }
    assert on_disk | {"openmanus_tui.themes"} == listed


def test_wheel_ships_themes_and_demo(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("openmanus_tui-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    themes = [n for n in names if n.startswith("openmanus_tui/themes/") and n.endswith(".toml")]
    assert len(themes) >= 4
    assert "openmanus_tui/models/scripts/demo.json" in names
    assert "openmanus_tui/tui/app.tcss" in names


def test_the_package_does_not_import_the_test_scenes() -> None:
    # The recorded scenes (tests/scenes/) are test fixtures; an installed package has no tests/.
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "openmanus_tui").rglob("*.py")
        if "from scenes" in p.read_text() or "import scenes" in p.read_text()
    ]
    assert offenders == []
