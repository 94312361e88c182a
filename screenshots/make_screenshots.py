"""Render the real workbench's screens to SVG (and PNG when cairosvg is installed).

Uses the same recorded scenes and fixed clock as the snapshot tests, in a throwaway config and
data folder, so the images are reproducible:

    python screenshots/make_screenshots.py [OUTPUT_DIR] [--only NAME ...]

The PNGs are drawn with an installed monospace font (``PNG_FONT``, Debian/Ubuntu:
``apt-get install fonts-dejavu-core``; ``pip install cairosvg``). Textual's SVGs name
"Fira Code, monospace" and load Fira Code from the web, which a browser does; cairosvg takes
the first family only, and fontconfig answered a missing "Fira Code" with a proportional font,
so box borders and columns no longer lined up.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The recorded scenes are test fixtures (tests/scenes/), not part of the package.
sys.path.insert(0, str(HERE.parent / "tests"))
PNG_FONT = "DejaVu Sans Mono"
SVG_FONT_RULE = "font-family: Fira Code, monospace;"


def png_font() -> str:
    """``PNG_FONT`` if fontconfig has it (else exit with how to install it)."""
    import subprocess

    try:
        found = subprocess.run(["fc-list", PNG_FONT], capture_output=True, text=True).stdout
    except FileNotFoundError:
        found = ""
    if not found.strip():
        sys.exit(f"make_screenshots: the font {PNG_FONT!r} is not installed "
                 "(apt-get install fonts-dejavu-core); the PNGs would be drawn with a "
                 "proportional font")
    return PNG_FONT


def svg_to_png(svg: Path, width: int) -> None:
    import cairosvg

    text = svg.read_text(encoding="utf-8")
    assert SVG_FONT_RULE in text, "Textual's SVG changed: check the font rule"
    text = text.replace(SVG_FONT_RULE, f'font-family: "{png_font()}";')
    cairosvg.svg2png(bytestring=text.encode("utf-8"), write_to=str(svg.with_suffix(".png")),
                     output_width=width)


async def shoot(name: str, out: Path, size: tuple[int, int], theme: str,
                stage: Callable[[object, object], Awaitable[None]]) -> Path:
    from scenes import workbench as scenes

    from openmanus_tui.config import load_settings
    from openmanus_tui.tui.app import OpenManusApp

    # A fresh data folder per shot: each scene seeds its own sessions.
    os.environ["OPENMANUS_DATA_DIR"] = str(Path(os.environ["SHOTS_TMP"]) / name)
    app = OpenManusApp(
        load_settings({"ui": {"theme": theme}}), clock=scenes.FixedClock(),
        wall_clock=lambda: scenes.BASE_TS + 3600, blink=False,
    )
    async with app.run_test(size=size) as pilot:
        await stage(app, pilot)
        await pilot.pause(0.2)
        path = app.save_screenshot(filename=f"{name}.svg", path=str(out))
    return Path(path)


async def main_scene(app, pilot) -> None:
    from scenes import workbench as scenes

    await scenes.stage_main(app)


async def approval_scene(app, pilot) -> None:
    from scenes import workbench as scenes

    from openmanus_tui.tools.file_tools import FileWriteArgs
    from openmanus_tui.tui.screens.approval import ApprovalScreen

    await scenes.stage_main(app, live=False)
    workspace = app.session.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "stats.py").write_text(scenes.OLD_STATS_PY)
    app.push_screen(ApprovalScreen(scenes.write_approval_call(), workspace=workspace,
                                   args_model=FileWriteArgs))
    await pilot.pause(0.6)


async def inspector_scene(app, pilot) -> None:
    await main_scene(app, pilot)
    widget = app.query_one("#stream")._widgets["action:call_demo_2"]
    widget.focus()
    widget.action_select_block()


async def memory_scene(app, pilot) -> None:
    from scenes import workbench as scenes

    # Both runs finished, a turn pinned, a compaction preview open.
    await scenes.stage_memory(app)


async def tools_scene(app, pilot) -> None:
    await main_scene(app, pilot)
    app.query_one("#panel").active = "tab-tools"


async def sources_scene(app, pilot) -> None:
    # Sources read from the fixture corpus (tests/web_corpus/), cited and corroborated.
    from scenes.sources import stage_sources

    await stage_sources(app)


async def research_scene(app, pilot) -> None:
    # A Research session over workspace documents with the offline demo model (no key).
    from scenes.research import stage_research

    await stage_research(app, pilot, Path(os.environ["SHOTS_TMP"]) / "research-workspace")


async def document_scene(app, pilot) -> None:
    # The scene lives with the tests (tests/scenes/document.py), as the Sources one does.
    from scenes.document import stage_document

    await stage_document(app)


async def palette_scene(app, pilot) -> None:
    await main_scene(app, pilot)
    await pilot.press("ctrl+p")
    await pilot.press(*"approval")
    await pilot.pause(0.3)


async def tree_scene(app, pilot) -> None:
    from scenes import history as history_scenes

    await history_scenes.stage_tree(pilot)


async def compare_scene(app, pilot) -> None:
    from scenes import history as history_scenes

    await history_scenes.stage_compare(pilot)


async def replay_scene(app, pilot) -> None:
    from scenes import history as history_scenes

    await history_scenes.stage_replay(pilot)


async def welcome_scene(app, pilot) -> None:
    """The first screen: no session yet, the demo model (no key), a chosen folder."""
    await app.ready.wait()
    app.settings.sandbox.workspace = Path("/home/you/project")
    app._refresh_welcome()
    await pilot.pause(0.3)


async def approval_narrow_scene(app, pilot) -> None:
    await approval_scene(app, pilot)


SHOTS = [
    ("welcome", (140, 40), "openmanus-dark", welcome_scene),
    ("welcome-80x24", (80, 24), "openmanus-dark", welcome_scene),
    ("approval-80x24", (80, 24), "openmanus-dark", approval_narrow_scene),
    ("main", (140, 40), "openmanus-dark", main_scene),
    ("approval", (140, 44), "openmanus-dark", approval_scene),
    ("inspector", (140, 40), "openmanus-dark", inspector_scene),
    ("memory", (140, 40), "openmanus-dark", memory_scene),
    ("tools", (140, 40), "openmanus-dark", tools_scene),
    ("sources", (150, 44), "openmanus-dark", sources_scene),
    ("research", (150, 48), "openmanus-dark", research_scene),
    ("document", (150, 50), "openmanus-dark", document_scene),
    ("palette", (140, 40), "openmanus-dark", palette_scene),
    ("narrow-80x24", (80, 24), "openmanus-dark", main_scene),
    ("theme-light", (140, 40), "openmanus-light", main_scene),
    ("theme-ember", (140, 40), "openmanus-ember", main_scene),
    ("theme-ocean", (140, 40), "openmanus-ocean", main_scene),
    ("tree", (140, 40), "openmanus-dark", tree_scene),
    ("compare", (140, 40), "openmanus-dark", compare_scene),
    ("replay", (140, 40), "openmanus-dark", replay_scene),
]


async def run(out: Path, only: set[str]) -> None:
    from openmanus_tui.runtime.session import AgentSession
    from openmanus_tui.tui.widgets import welcome

    # The sandbox level depends on the machine; the recorded scene says L2.
    AgentSession.isolation = lambda self: "L2"  # type: ignore[method-assign]
    welcome.sandbox_level = lambda settings: "L2"
    for name, size, theme, stage in SHOTS:
        if only and name not in only:
            continue
        svg = await shoot(name, out, size, theme, stage)
        try:
            svg_to_png(svg, size[0] * 10)
        except ImportError:
            pass
        print(svg)


def main() -> None:
    args = sys.argv[1:]
    # --only NAME [NAME ...] renders just those shots (names as in SHOTS).
    only = set(args[args.index("--only") + 1:]) if "--only" in args else set()
    args = args[: args.index("--only")] if "--only" in args else args
    unknown = only - {name for name, *_ in SHOTS}
    if unknown:
        sys.exit(f"unknown shot(s): {', '.join(sorted(unknown))}")
    out = Path(args[0]).resolve() if args else HERE
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text("")
        for key in [k for k in os.environ if k.startswith(("OPENAI_", "OPENMANUS_"))]:
            del os.environ[key]
        os.environ["OPENMANUS_CONFIG"] = str(config)
        os.environ["SHOTS_TMP"] = tmp
        asyncio.run(run(out, only))


if __name__ == "__main__":
    main()
