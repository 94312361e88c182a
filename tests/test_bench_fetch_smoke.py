"""Smoke test of ``bench/fetch_cost.py``: it runs end to end once and prints every row.
Not a timing test: the bench itself asserts that each fetch did its work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "fetch_cost.py"


def test_fetch_cost_bench_runs_and_reports(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--repeat", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = re.findall(r"^(\S+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+x\s+[\d.]+x$", proc.stdout, re.M)
    assert rows[-1] == "total" and len(rows) == 6, proc.stdout
    assert "journal.example.edu/paper.pdf" in rows
