"""Smoke test of ``bench/research_eval.py``: one question end to end, its table and its target
line. Not a timing test: the bench exits non-zero unless verified precision is 100%."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "research_eval.py"


def test_research_eval_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENMANUS_", "OPENAI_"))}
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env.update(TMPDIR=str(tmp))
    proc = subprocess.run([sys.executable, str(BENCH), "--questions", "1"], capture_output=True,
                          text=True, timeout=180, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    out = proc.stdout
    row = re.search(r"^How much did global solar .*?\s+([\d.]+)%\s+100\.0%\s+(\d+)/(\d+)\s+0\s+"
                    r"100%", out, re.M)
    assert row, out
    assert float(row.group(1)) < 100  # the draft had the planted citations
    assert row.group(2) == row.group(3) == "4"  # all four planted ones caught
    assert "target citation precision after verification = 100%: 100.0% PASS" in out
    assert list(tmp.iterdir()) == []  # everything it wrote was removed
