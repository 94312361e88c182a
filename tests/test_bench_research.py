"""Smoke test of ``bench/research_eval.py``: one question end to end, its table and its target
line (in this process: the bench's imports are the suite's). Not a timing test."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "research_eval.py"


async def test_research_eval_runs_and_reports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("research_eval", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("OPENMANUS_SEARCH__BACKEND", "")  # the bench sets it: restored after
    code = await bench.main_async("quick", 1)
    out = capsys.readouterr().out
    assert code == 0, out
    row = re.search(r"^How much did global solar .*?\s+([\d.]+)%\s+100\.0%\s+(\d+)/(\d+)\s+0\s+"
                    r"100%", out, re.M)
    assert row, out
    assert float(row.group(1)) < 100  # the draft had the planted citations
    assert row.group(2) == row.group(3) == "4"  # all four planted ones caught
    assert "target citation precision after verification = 100%: 100.0% PASS" in out
