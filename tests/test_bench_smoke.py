"""Smoke test of ``bench/step_overhead.py``: it runs end to end at tiny sizes and prints its report.

Not a timing test: only that both graphs did the work (the bench exits non-zero otherwise), that
every report line is there, and that it keeps to its temporary directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "step_overhead.py"


def test_step_overhead_bench_runs_and_reports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tmp = tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENMANUS_", "XDG_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp))
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--steps", "2,5", "--repeat", "2"],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout

    for steps in (2, 5):
        # bare: the user message, then per step an AI call and a tool result, then the answer
        assert re.search(rf"^\s*{steps} bare .*\({2 * steps + 2} messages\)$", out, re.M), out
        ours = re.search(rf"^\s*{steps} ours .*\((\d+) events\)$", out, re.M)
        assert ours and int(ours.group(1)) > 2 * steps, out
        assert re.search(rf"^\s*{steps} ratio time ours/bare [\d.]+ +cpu [\d.]+ +"
                         rf"size bare/ours [\d.]+x$", out, re.M), out
        assert re.search(rf"^target time at {steps} steps: ours/bare <= 1\.00: [\d.]+ "
                         r"(PASS|MISS) \(cpu [\d.]+\)$", out, re.M), out
    assert re.search(r"^growth 2 -> 5 steps .*bare saver size x[\d.]+, ours x[\d.]+", out, re.M)
    assert re.search(r"^target size at 5 steps: bare/ours >= 10x: [\d.]+x (PASS|MISS)$", out, re.M)
    # Everything the bench wrote was in its own temporary directory, now removed.
    assert list(tmp.iterdir()) == []
    assert list(home.iterdir()) == []
