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
