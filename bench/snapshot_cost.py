"""Cost of workspace snapshots (``WorkspaceSnapshots``) against two baselines, in one run.

Usage: python bench/snapshot_cost.py [--files 100] [--big-mb 20] [--repeat 5] [--settle 2.2]
                                     [--sparse 1000] [--unbounded-sample-mb 128]

Workspace: ``--files`` text files of ~4 KB in 10 directories (plus, in the second part, one
``--big-mb`` random binary). Timed operations (median of ``--repeat``):

* ours: cold snapshot (new store), unchanged snapshot, snapshot after editing 5 files,
  branch switch (restore between two trees 5 files apart), full restore into an emptied
  workspace;
* baseline "copy": a full ``shutil.copytree`` of the workspace (the naive snapshot) and
  rmtree + copytree back (the naive restore);
* baseline "git-index": ``git add -A -f`` + ``write-tree`` with a private index and
  ``GIT_WORK_TREE`` (what one would write first; it applies .gitattributes and breaks on nested
  repositories, which is why we do not use it).

``--settle`` waits before the "unchanged" timings so files are older than the stat cache's
racy window (as in a real session, where files were not written in the last 2 s). Everything
lives in a temporary directory. Target (issue): a branch switch with 100 files under 0.5 s.

Sparse-file bomb (issue 12): a workspace with ``--sparse`` sparse 1 GiB files (0 bytes on disk)
and one small file, snapshotted with the default budget; target: under 2 s, every sparse file
skipped and named. Baseline in the same run: one ``--unbounded-sample-mb`` sparse file
snapshotted with no budget (what every snapshot did before), extrapolated to the whole bomb.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from openmanus_tui.store.snapshot_budget import SnapshotBudget
from openmanus_tui.store.snapshots import WorkspaceSnapshots

GiB = 1 << 30


def median_time(fn: Callable[[], object], repeat: int,
                setup: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_workspace(root: Path, files: int) -> list[Path]:
    paths = []
    for i in range(files):
        path = root / f"dir{i % 10}" / f"file {i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"line {j} of file {i}\n" for j in range(200)))
        paths.append(path)
    return paths


def git_index_snapshot(store: Path, workspace: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_DIR=str(store), GIT_WORK_TREE=str(workspace),
               GIT_INDEX_FILE=str(store / "bench-index"), GIT_CONFIG_NOSYSTEM="1",
               GIT_CONFIG_GLOBAL=os.devnull)
    if not (store / "HEAD").exists():
        init_env = {k: v for k, v in env.items() if k != "GIT_WORK_TREE"}
        subprocess.run(["git", "init", "-q", "--bare", str(store)], check=True, env=init_env)
    subprocess.run(["git", "add", "-A", "-f"], check=True, env=env, cwd=workspace)
    return subprocess.run(["git", "write-tree"], check=True, env=env, capture_output=True,
                          text=True).stdout.strip()


def sparse_bomb(tmp: Path, count: int, sample_mb: int) -> None:
    """Snapshot a workspace of ``count`` sparse 1 GiB files with the default budget."""
    ws = tmp / "bomb"
    ws.mkdir()
    (ws / "notes.txt").write_text("the one real file\n")
    for i in range(count):
        with open(ws / f"sparse{i:04d}.img", "wb") as fh:
            fh.truncate(GiB)
    snaps = WorkspaceSnapshots(tmp / "bomb.git", ws)
    start = time.perf_counter()
    tree = snaps.snapshot()
    took = time.perf_counter() - start
    skipped = [s for s in snaps.last.skipped if s.reason == "sparse"]
    captured = sorted(snaps._read_tree(tree))
    ok = took < 2.0 and len(skipped) == count and captured == ["notes.txt"]
    print(f"sparse bomb: {count} x 1 GiB sparse files   snapshot {fmt(took)}   "
          f"skipped and named {len(skipped)}   target < 2 s: {'PASS' if ok else 'MISS'}")
    print(f"  named: {', '.join(s.path for s in skipped[:3])}"
          + (f" … {skipped[-1].path}" if len(skipped) > 3 else ""))
    if sample_mb:
        # what a snapshot did before the budget: hash the apparent size, zeros and all
        base_ws = tmp / "bomb-baseline"
        base_ws.mkdir()
        with open(base_ws / "one.img", "wb") as fh:
            fh.truncate(sample_mb << 20)
        unbounded = SnapshotBudget(max_bytes=1 << 62, max_file_bytes=1 << 62, max_files=10**9,
                                   time_limit_s=1e9, exclude=(), skip_sparse=False)
        base = WorkspaceSnapshots(tmp / "bomb-baseline.git", base_ws, unbounded)
        start = time.perf_counter()
        base.snapshot()
        per_gib = (time.perf_counter() - start) * (GiB / (sample_mb << 20))
        estimate = per_gib * count
        print(f"  baseline (no budget): {sample_mb} MiB sparse file took "
              f"{fmt(per_gib * sample_mb / 1024)}, so the bomb ≈ {estimate:.0f} s   "
              f"ratio bounded/unbounded {took / estimate:.2e}")


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--big-mb", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--settle", type=float, default=2.2)
    parser.add_argument("--sparse", type=int, default=1000, help="sparse 1 GiB files (0: skip)")
    parser.add_argument("--unbounded-sample-mb", type=int, default=128)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="snapbench-") as tmp_name:
        tmp = Path(tmp_name)
        ws = tmp / "ws"
        ws.mkdir()
        paths = make_workspace(ws, args.files)
        size = sum(p.stat().st_size for p in paths)
        print(f"workspace: {args.files} files, {size / 1024:.0f} KiB")

        counter = iter(range(10**6))
        cold = median_time(lambda: WorkspaceSnapshots(
            tmp / f"cold{next(counter)}.git", ws).snapshot(), args.repeat)
        copy = median_time(lambda: shutil.copytree(ws, tmp / f"copy{next(counter)}"),
                           args.repeat)
        gitidx_cold = median_time(lambda: git_index_snapshot(
            tmp / f"gi{next(counter)}.git", ws), args.repeat)

        snaps = WorkspaceSnapshots(tmp / "store.git", ws)
        t1 = snaps.snapshot()
        git_index_snapshot(tmp / "gi.git", ws)
        time.sleep(args.settle)
        snaps.snapshot()  # records stat data taken after the racy window
        unchanged = median_time(snaps.snapshot, args.repeat)
        gitidx_unchanged = median_time(lambda: git_index_snapshot(tmp / "gi.git", ws),
                                       args.repeat)

        def edit5() -> None:
            for p in paths[:5]:
                p.write_text(p.read_text() + "edit\n")

        edited = median_time(snaps.snapshot, args.repeat, setup=edit5)
        t2 = snaps.snapshot()
        switch = median_time(lambda: (snaps.restore(t1), snaps.restore(t2)), args.repeat) / 2

        def empty_ws() -> None:
            shutil.rmtree(ws)
            ws.mkdir()

        full = median_time(lambda: snaps.restore(t2), args.repeat, setup=empty_ws)
        copy_back_src = tmp / "copy-src"
        shutil.copytree(ws, copy_back_src)
        copy_back = median_time(
            lambda: (shutil.rmtree(ws), shutil.copytree(copy_back_src, ws)), args.repeat)

        print(f"snapshot, cold             {fmt(cold)}   copytree {fmt(copy)}   "
              f"git-index {fmt(gitidx_cold)}")
        print(f"snapshot, unchanged        {fmt(unchanged)}   ratio ours/copytree "
              f"{unchanged / copy:.3f}   git-index {fmt(gitidx_unchanged)}")
        print(f"snapshot, 5 files edited   {fmt(edited)}")
        print(f"branch switch (5 files)    {fmt(switch)}   "
              f"target < 500 ms: {'PASS' if switch < 0.5 else 'MISS'}")
        print(f"full restore ({args.files} files)  {fmt(full)}   rmtree+copytree "
              f"{fmt(copy_back)}   ratio {full / copy_back:.2f}")

        if args.big_mb:
            big = ws / "big.bin"
            big.write_bytes(os.urandom(args.big_mb * 1024 * 1024))
            start = time.perf_counter()
            t_big = snaps.snapshot()
            big_first = time.perf_counter() - start
            time.sleep(args.settle)
            snaps.snapshot()
            big_unchanged = median_time(snaps.snapshot, args.repeat)
            big_copy = median_time(lambda: shutil.copy2(big, tmp / "big-copy"), args.repeat)
            big_restore = median_time(lambda: snaps.restore(t_big), args.repeat,
                                      setup=lambda: big.unlink())
            print(f"{args.big_mb} MB binary: first snapshot {fmt(big_first)}   unchanged "
                  f"{fmt(big_unchanged)}   restore {fmt(big_restore)}   copy {fmt(big_copy)}")

        before = snaps.size_bytes()
        report = snaps.prune([t1, t2])
        print(f"store: {before / 1024:.0f} KiB before prune, {report.size_after / 1024:.0f} "
              f"KiB after keeping 2 trees (workspace {size / 1024:.0f} KiB)")
        if args.sparse:
            sparse_bomb(tmp, args.sparse, args.unbounded_sample_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
