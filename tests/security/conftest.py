"""The attack suite of issue 12: every case at every isolation level this machine provides.

A case is a test function marked ``@pytest.mark.attack(NAME, TITLE, documented={...})`` that
takes the ``level`` and ``attack`` fixtures. ``level`` is parametrised here over L3..L0 (levels
the machine lacks are skipped with the probe's reason). The test drives the attacker's tool
calls through the loopback model server and the real runtime, then reports with
``attack.result(blocked, detail)``: that records the cell of the table and asserts the
expectation - blocked, unless ``documented`` names the level with the reason it is allowed.

At the end of the session ``pytest_terminal_summary`` prints the table case x level. To add a
case (resource bounds, say), write one more marked test; nothing here needs to change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from openmanus_tui.sandbox import IsolationLevel, probe

ROOT_CONFTEST = str(Path(__file__).resolve().parent.parent / "conftest.py")
LEVEL_ORDER = [str(lvl) for lvl in sorted(IsolationLevel, reverse=True)]


def pytest_plugin_registered(plugin: Any, manager: Any) -> None:
    """pytest imports every package-less ``conftest.py`` as the module ``conftest``; the other
    test modules import helpers with ``from conftest import ...`` and must keep getting
    ``tests/conftest.py`` (this hook is historic: it also sees the plugins registered before)."""
    if getattr(plugin, "__file__", None) == ROOT_CONFTEST:
        sys.modules["conftest"] = plugin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "attack(name, title, documented=None): an attack case of tests/security "
        "(documented: level -> why it is allowed there)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "level" not in metafunc.fixturenames or metafunc.definition.get_closest_marker(
        "attack"
    ) is None:
        return
    report = probe()
    params = []
    for lvl in sorted(IsolationLevel, reverse=True):
        marks = []
        if not report.available(lvl):
            marks.append(pytest.mark.skip(reason=f"{lvl} not available: {report.unavailable[lvl]}"))
        params.append(pytest.param(lvl, id=str(lvl), marks=marks))
    metafunc.parametrize("level", params)


@dataclass
class _Table:
    titles: dict[str, str] = field(default_factory=dict)  # case -> title, in run order
    cells: dict[tuple[str, str], str] = field(default_factory=dict)
    notes: dict[tuple[str, str], str] = field(default_factory=dict)


TABLE = _Table()


def record(node: pytest.Item, cell: str, note: str = "") -> None:
    """Set this test's cell of the table. Kept on the test's report (``user_properties``), so
    that under pytest-xdist the cells reach the process that prints the table."""
    node.user_properties.append(("attack_cell", [cell, note]))


class Attack:
    """Records one cell of the table and checks it against the case's expectation."""

    def __init__(
        self, node: pytest.Item, name: str, level: IsolationLevel, documented: dict[str, str]
    ) -> None:
        self.node, self.name, self.level = node, name, str(level)
        self.documented = documented.get(self.level)

    def result(self, blocked: bool, detail: str = "") -> None:
        if blocked:
            record(self.node, "blocked")
        elif self.documented:
            record(self.node, "allowed (documented)", self.documented)
        else:
            record(self.node, "NOT BLOCKED")
        assert blocked or self.documented, f"{self.name} at {self.level}: not blocked. {detail}"


def _case(item: pytest.Item) -> tuple[str, str, str] | None:
    """(row name, level, title) of an attack test item."""
    marker = item.get_closest_marker("attack")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None or "level" not in callspec.params:
        return None
    name, title = marker.args[0], marker.args[1]
    extra = [str(v) for k, v in callspec.params.items() if k != "level"]
    if extra:  # a case parametrised further is one row per variant
        name = f"{name}[{','.join(extra)}]"
    return name, str(callspec.params["level"]), title


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        case = _case(item)
        if case is not None:  # carried on every report of the test (xdist included)
            item.user_properties.append(("attack_case", list(case)))


@pytest.fixture
def attack_cell(request: pytest.FixtureRequest) -> Any:
    """``attack_cell(cell, note)``: set the cell of a marked case that does not use ``attack``
    (its assertions decide; a pass without a cell reads "blocked")."""
    return lambda cell, note="": record(request.node, cell, note)


@pytest.fixture
def attack(request: pytest.FixtureRequest, level: IsolationLevel) -> Attack:
    case = _case(request.node)
    assert case is not None, "an attack test needs @pytest.mark.attack(name, title)"
    marker = request.node.get_closest_marker("attack")
    return Attack(request.node, case[0], level, marker.kwargs.get("documented") or {})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Fill the table from the reports: the cell a case recorded (``record``); a marked test
    that passed without recording one is "blocked" (its assertions are the bound); a failed
    one without a cell is "error"; a skipped one says why (a level this machine lacks...)."""
    props = dict(report.user_properties)
    case = props.get("attack_case")
    if case is None:
        return
    name, level, title = case
    TABLE.titles.setdefault(name, title)
    key = (name, level)
    if "attack_cell" in props:
        TABLE.cells[key], note = props["attack_cell"]
        if note:
            TABLE.notes[key] = note
    elif report.skipped and key not in TABLE.cells:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
        TABLE.cells[key] = "skipped"
        TABLE.notes[key] = f"skipped: {str(reason).removeprefix('Skipped: ')}"
    elif report.failed:
        TABLE.cells[key] = "error"
    elif report.when == "call" and report.passed and key not in TABLE.cells:
        TABLE.cells[key] = "blocked"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # rows that ran (or were skipped) in this session; deselected cases are left out
    shown = {n: t for n, t in sorted(TABLE.titles.items())
             if any((n, lv) in TABLE.cells for lv in LEVEL_ORDER)}
    if not shown:
        return
    tr = terminalreporter
    width = max(len(n) for n in shown) + 2
    tr.write_sep("=", "attack suite (issue 12): case x level")
    tr.write_line(f"{'case':<{width}}" + "".join(f"{lvl:<24}" for lvl in LEVEL_ORDER))
    for name in shown:
        cells = [TABLE.cells.get((name, lvl), "not run") for lvl in LEVEL_ORDER]
        tr.write_line(f"{name:<{width}}" + "".join(f"{c:<24}" for c in cells))
    tr.write_line("")
    for name, title in shown.items():
        tr.write_line(f"  {name}: {title}")
    for (name, lvl), why in sorted(TABLE.notes.items()):
        if why.startswith("skipped: "):
            tr.write_line(f"  {name} at {lvl}: {why}")
        else:
            tr.write_line(f"  allowed {name} at {lvl}: {why}")


# --- driving the attacker -----------------------------------------------------------------


@pytest.fixture
def sec_server() -> Iterator[Any]:
    from openai_server import OpenAITestServer

    with OpenAITestServer() as server:
        yield server


@pytest.fixture
def attacker(
    sec_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    """``await attacker(level, ws, [[calls of reply 1], ...], **settings)``: one run of the
    real runtime whose model (the loopback server) issues the attacker's tool calls, in yolo
    mode (containment, not approval, is under test). Returns (events, runtime notices)."""
    from openai_server import Reply, ToolCallSpec

    monkeypatch.setenv("OPENAI_BASE_URL", sec_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key")
    monkeypatch.setenv("OPENMANUS_MODEL__NAME", "test-model")

    async def run(
        level: IsolationLevel,
        ws: Path,
        replies: list[list[tuple[str, dict[str, Any]]]],
        **overrides: Any,
    ) -> list[Any]:
        from openmanus_tui.config import load_settings
        from openmanus_tui.runtime.session import Runtime

        sec_server.set_responder(
            [Reply(tool_calls=[ToolCallSpec(n, a) for n, a in calls]) for calls in replies]
            + [Reply(text="done")]
        )
        sandbox = {"level": str(level), "workspace": str(ws), **overrides.pop("sandbox", {})}
        settings = load_settings({"approval": {"mode": "yolo"}, "sandbox": sandbox, **overrides})
        runtime = await Runtime.open(settings)
        seen: list[Any] = []
        try:
            session = await runtime.create_session()
            await session.run("attack", on_event=seen.append)
        finally:
            await runtime.close()
        return seen

    yield run


def run_openmanus(
    *args: str, env: dict[str, str] | None = None, inherit: bool = True
) -> subprocess.CompletedProcess[str]:
    """``openmanus ARGS`` in a subprocess, no terminal (``inherit=False``: ``env`` only)."""
    return subprocess.run(
        [sys.executable, "-m", "openmanus_tui", *args],
        capture_output=True,
        text=True,
        env={**(os.environ if inherit else {}), **(env or {})},
        timeout=120,
        input="",
    )


@pytest.fixture
def openmanus_cli() -> Any:
    return run_openmanus


def tool_results(events: list[Any]) -> list[Any]:
    from openmanus_tui import events as ev

    return [e for e in events if isinstance(e, ev.ToolFinished)]


def notices(events: list[Any]) -> list[str]:
    from openmanus_tui import events as ev

    return [e.text for e in events if isinstance(e, ev.Notice)]


@pytest.fixture
def inspect_events() -> Any:
    """Helpers on a run's events: ``.results(events)``, ``.notices(events)``, ``.dump``."""

    class _Inspect:
        results = staticmethod(tool_results)
        notices = staticmethod(notices)

        @staticmethod
        def dump(events: list[Any]) -> str:
            return json.dumps([json.loads(e.to_json()) for e in events], indent=1)[:6000]

    return _Inspect()
