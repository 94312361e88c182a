"""Smoke test of ``bench/writing_eval.py``: it runs end to end at a small size and prints its
report (not a timing test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_writing_bench_runs_and_reports(tmp_path: Path) -> None:
    bench = Path(__file__).resolve().parent.parent / "bench" / "writing_eval.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENMANUS_", "XDG_"))}
    proc = subprocess.run([sys.executable, str(bench), "--words", "1500", "--repeat", "1"],
                          capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"^document: \d+ words, \d+ sentences", out, re.M), out
    assert re.search(r"^target (command|first call) < 1\.0 s: wall [\d.]+ s (PASS|MISS)", out,
                     re.M), out
    for name in ("easy", "medium", "hard"):
        assert re.search(rf"^{name} +\d+ +-?[\d.]+ +-?[\d.]+", out, re.M), out
