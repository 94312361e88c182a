"""Smoke tests of ``bench/tui_stream.py`` and ``bench/startup.py`` at tiny sizes: they run end to
end, do the work (every token shown, every event stored, a first frame from both apps) and print
every report line. Not timing tests: PASS and MISS are both accepted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench_env(tmp_path: Path) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENMANUS_", "OPENAI_"))}
    env.update(HOME=str(tmp_path), TMPDIR=str(tmp))
    return env


def test_tui_stream_bench_runs_and_reports(tmp_path: Path) -> None:
    env = bench_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(BENCH / "tui_stream.py"), "--seconds", "1", "--rate", "100",
         "--events", "300"],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"^stream  100 tokens in [\d.]+ s: sent \d+/s, shown \d+/s, all shown", out,
                     re.M), out
    assert re.search(r"^stall   p50 [\d.]+ ms  p95 [\d.]+ ms  max [\d.]+ ms", out, re.M), out
    assert re.search(r"^open    300 events -> \d+ blocks, \d+ mounted: \d+ ms", out, re.M), out
    assert re.search(r"^memory  rss \d+ MB, peak \d+ MB$", out, re.M), out
    assert len(re.findall(r"^target .*: .* (PASS|MISS)$", out, re.M)) == 4, out
    assert list((tmp_path / "tmp").iterdir()) == []  # its temporary folder is gone


def test_startup_bench_runs_and_reports(tmp_path: Path) -> None:
    env = bench_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(BENCH / "startup.py"), "--repeat", "1"],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for mark in ("minimal app, first frame", "ours, first frame",
                 "ours, usable (model named, focused)", "ours, side panel shown"):
        assert re.search(rf"^{re.escape(mark)} +wall median +\d+ ms \(min +\d+, max +\d+\) "
                         r"[\d.]+x +cpu median +\d+ ms [\d.]+x$", out, re.M), out
    for target in ("first frame", "usable first screen"):
        assert re.search(rf"^target {target} ours/minimal <= 1\.3x: wall [\d.]+x (PASS|MISS) "
                         r"\(cpu [\d.]+x\)$", out, re.M), out
