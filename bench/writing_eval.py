"""Writing bench: how long ``write check`` takes on a 10,000-word document, and the score table
of three fixture documents of known difficulty (tests/writing_fixtures/easy|medium|hard.md).

    python bench/writing_eval.py [--words 10000] [--repeat 3]

Times, on the same generated document (headings, paragraphs, a list, a table, numbered
citations with a reference section):

- **check, first call**: ``check_file`` in this process including its one-time loading (the
  pronouncing dictionary, proselint's checks) — what one ``openmanus write check`` pays;
- **check, warm**: the median of ``--repeat`` further calls;
- **baseline**: markdown-it-py parsing the same text, the least any Markdown checker does;
- **command**: ``openmanus write check FILE --json`` as a process (Python start-up and imports
  included), when the command exists: wall time, and CPU time (user + system), which is what
  the wall time comes to when the machine is not shared.

Prints the ratios check/baseline and PASS or MISS against the target (under 1 s for the command,
or for the first call when the command cannot run). Runs in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "writing_fixtures"
TARGET_S = 1.0


def make_document(words: int) -> str:
    """A long report built from the medium fixture's paragraphs, with numbered citations."""
    paragraphs = [p for p in (FIXTURES / "medium.md").read_text().split("\n\n")
                  if p and not p.startswith("#")]
    out = ["# A Long Report", ""]
    count = section = 0
    while count < words:
        section += 1
        out += [f"## Section {section}", ""]
        for number, paragraph in enumerate(paragraphs, 1):
            out += [f"{paragraph} [{(section + number) % 5 + 1}]", ""]
            count += len(paragraph.split())
        if section % 4 == 0:
            out += ["- a point to remember", "- another point", "",
                    "| year | trees |", "|---|---|", "| 2020 | 120 |", "| 2021 | 180 |", ""]
    out += ["## References", ""]
    out += [f"[{n}] Source number {n}. https://example.org/{n}" for n in range(1, 7)]
    return "\n".join(out) + "\n"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="writing-bench-") as tmp:
        os.environ["OPENMANUS_CONFIG"] = str(Path(tmp) / "config.toml")
        os.environ["OPENMANUS_DATA_DIR"] = str(Path(tmp) / "data")
        (Path(tmp) / "config.toml").write_text("")
        document = Path(tmp) / "long.md"
        document.write_text(make_document(args.words), encoding="utf-8")

        from markdown_it import MarkdownIt

        from openmanus_tui.config import load_settings
        from openmanus_tui.runtime.writing import check_file

        settings = load_settings()
        text = document.read_text()
        started = time.perf_counter()
        report = check_file(document, settings)
        first = time.perf_counter() - started
        warm = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            check_file(document, settings)
            warm.append(time.perf_counter() - started)
        parser_md = MarkdownIt("commonmark").enable("table")
        base = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            parser_md.parse(text)
            base.append(time.perf_counter() - started)
        if report.words < args.words * 0.9:
            print(f"error: the document has {report.words} words", file=sys.stderr)
            return 1

        command_times: list[float] = []
        command_cpu: list[float] = []
        exe = shutil.which("openmanus", path=str(Path(sys.executable).parent)) or ""
        if exe:
            for _ in range(args.repeat):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                proc = subprocess.run([exe, "write", "check", str(document), "--json"],
                                      capture_output=True, text=True, timeout=120)
                command_times.append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                command_cpu.append(after.ru_utime + after.ru_stime
                                   - before.ru_utime - before.ru_stime)
                if proc.returncode not in (0, 1) or '"quality_score"' not in proc.stdout:
                    command_times = []  # the command is not there (yet): report without it
                    break

        print(f"document: {report.words} words, {report.readability.sentences} sentences, "
              f"{report.structure.headings} headings, {report.citation_count} citations")
        print(f"check, first call   {first * 1000:8.1f} ms")
        print(f"check, warm median  {_median(warm) * 1000:8.1f} ms")
        print(f"baseline (parse)    {_median(base) * 1000:8.1f} ms")
        print(f"ratio warm check / parse  {_median(warm) / _median(base):.1f}x")
        if command_times:
            print(f"command median      {_median(command_times) * 1000:8.1f} ms "
                  "(openmanus write check FILE --json)")
            print(f"command CPU median  {_median(command_cpu) * 1000:8.1f} ms "
                  "(user + system: what the wall time is on an idle core)")
            measured, what = _median(command_times), "command"
        else:
            print("command             not measured (openmanus write check is not available)")
            measured, what = first, "first call"
        verdict = "PASS" if measured < TARGET_S else "MISS"
        line = f"target {what} < {TARGET_S:.1f} s: wall {measured:.2f} s {verdict}"
        if command_cpu:
            cpu = _median(command_cpu)
            line += f", CPU {cpu:.2f} s {'PASS' if cpu < TARGET_S else 'MISS'}"
        print(line)

        print()
        print(f"{'fixture':8} {'words':>5} {'FRE':>7} {'FK grade':>8} {'fog':>6} {'SMOG':>6} "
              f"{'ASL':>5} {'passive':>7} {'long':>4} {'quality':>7}")
        for name in ("easy", "medium", "hard"):
            r = check_file(FIXTURES / f"{name}.md", settings)
            read = r.readability
            print(f"{name:8} {r.words:5d} {read.flesch_reading_ease:7.1f} "
                  f"{read.flesch_kincaid_grade:8.1f} {read.gunning_fog:6.1f} {read.smog:6.1f} "
                  f"{read.avg_sentence_length:5.1f} {r.style.passive_sentences:7d} "
                  f"{r.style.long_sentences:4d} {r.quality_score:7.3f}")
        print()
        print("quality parts (medium):", json.dumps(
            {p.name: p.score for p in check_file(FIXTURES / "medium.md", settings).parts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
