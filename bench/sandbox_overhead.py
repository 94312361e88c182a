"""Spawn overhead of the sandbox: median latency per level vs a plain subprocess, same run.

Usage: python bench/sandbox_overhead.py [--runs N]
Prints medians (ms) of ``python3 -c pass`` and ``true`` and the ratio to plain
``subprocess.run`` of the same interpreter/command measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openmanus_tui.sandbox import IsolationLevel, Sandbox, probe


def plain(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def sandboxed(sb: Sandbox, argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        res = await sb.exec(argv, timeout=30)
        times.append((time.perf_counter() - t) * 1000)
        if res.exit_code != 0:
            raise SystemExit(f"{sb.level}: {argv} failed: {res.stderr.strip()}")
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    report = probe()
    print(f"best level: {report.level}; runs per cell: {runs}")
    base_py = [sys.executable, "-c", "pass"]
    base_true = ["/bin/true"]
    plain_py, plain_true = plain(base_py, runs), plain(base_true, runs)
    print(f"{'level':<6} {'python3 -c pass':>18} {'ratio':>6} {'true':>10} {'ratio':>6}")
    print(f"{'plain':<6} {plain_py:>15.1f} ms {'1.00':>6} {plain_true:>7.1f} ms {'1.00':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for level in sorted(IsolationLevel, reverse=True):
            if not report.available(level):
                print(f"{level!s:<6} not available: {report.unavailable[level]}")
                continue
            sb = Sandbox(Path(tmp) / f"ws-{level}", level=level)
            await sandboxed(sb, ["true"], 2)  # warm-up (helper namespace, page cache)
            py_ms = await sandboxed(sb, [*sb.python_argv(), "-c", "pass"], runs)
            true_ms = await sandboxed(sb, ["/bin/true"], runs)
            print(f"{level!s:<6} {py_ms:>15.1f} ms {py_ms / plain_py:>6.2f} "
                  f"{true_ms:>7.1f} ms {true_ms / plain_true:>6.2f}")
            sb.close()
    print("target: L3 <= 1.5x plain for python3 -c pass")


if __name__ == "__main__":
    asyncio.run(main())
