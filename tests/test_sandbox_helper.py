"""The helper mount namespace (root) starts however slowly its output is read: both of its lines,
the mount report and "ready", may already be in the pipe when the first one is read. A buffered
read took both at once and select() then waited out its timeout for a line already read, so the
helper was killed ("the helper exited with -9") on a loaded machine."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

import pytest

from openmanus_tui.sandbox import IsolationLevel, Sandbox, hostview, probe

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not probe().available(IsolationLevel.L1),
    reason="the helper mount namespace is used as root, at L1 and above",
)


async def test_helper_starts_when_both_lines_wait_in_the_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_select = select.select

    def late_reader(r: list, w: list, x: list, timeout: float | None = None) -> tuple:
        time.sleep(0.5)  # the helper writes both of its lines meanwhile
        return real_select(r, w, x, 5)  # 5 s stands in for the real 30 s

    monkeypatch.setattr(hostview.select, "select", late_reader)
    sb = Sandbox(tmp_path / "ws", level=IsolationLevel.L1)
    try:
        res = await sb.exec("echo inside", timeout=20)
    finally:
        sb.close()
    assert res.exit_code == 0 and "inside" in res.stdout


async def test_naming_the_level_starts_no_helper_and_names_the_level_commands_get(
    tmp_path: Path,
) -> None:
    """The system prompt names the isolation level without waiting for the helper (~60 ms per
    run, before the first model call); the first command starts it, at that very level."""
    from openmanus_tui.config import load_settings
    from openmanus_tui.runtime.session import Runtime

    for configured in ("auto", "L1"):
        runtime = await Runtime.open(load_settings({"sandbox": {"level": configured}}))
        try:
            session = await runtime.create_session(workspace=tmp_path / configured)
            level = session.isolation()
            expected = str(probe().level) if configured == "auto" else configured
            assert level == expected
            assert f"isolation level {level};" in session._system_prompt()
            sandbox = session.sandbox()
            assert sandbox._view._helper is None  # named, not started
            res = await sandbox.exec("echo inside", timeout=20)
            assert res.exit_code == 0 and "inside" in res.stdout
            assert str(res.level) == level  # the level the prompt named
            assert sandbox._view.started
        finally:
            await runtime.close()


async def test_concurrent_first_commands_share_one_helper(tmp_path: Path) -> None:
    """Commands started together before the helper is up wait for the same helper."""
    import asyncio

    sb = Sandbox(tmp_path / "ws", level=IsolationLevel.L1)
    try:
        results = await asyncio.gather(*(sb.exec(f"echo run{i}", timeout=20) for i in range(3)))
        helper = sb._view._helper
        assert helper is not None
        pid = helper.pid
        await sb.exec("true", timeout=20)
        assert sb._view._helper is not None and sb._view._helper.pid == pid
        assert sb.ownership_mode in ("id-mapped mount", "handed over per command, restored")
    finally:
        sb.close()
    assert [r.exit_code for r in results] == [0, 0, 0]
    assert [r.stdout.strip() for r in results] == ["run0", "run1", "run2"]
