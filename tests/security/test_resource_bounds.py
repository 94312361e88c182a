"""Resource bounds under attack (issue 12, defects 1, 2 and 12), at every level this machine has.

Cases: a sparse-file snapshot bomb, memory held across children, a fork bomb across children,
filling the workspace, and a background job holding stdout. Every case is bounded in time and
memory (limits of a few hundred MiB); levels the machine cannot provide are skipped with the
probe's reason. Where a bound needs cgroups and they are not usable here, the case asserts the
documented weaker behaviour instead (``openmanus doctor`` says which applies).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from openmanus_tui.sandbox import IsolationLevel, Sandbox, SandboxLimits, cgroup
from openmanus_tui.store.snapshot_budget import SnapshotBudget
from openmanus_tui.store.snapshots import WorkspaceSnapshots

CGROUPS = cgroup.support().ok
NO_CGROUP = "no writable cgroup: per-process limits only (openmanus doctor says so)"


def make(tmp_path: Path, level: IsolationLevel, **limits: int) -> Sandbox:
    base = dict(
        cpu_seconds=20,
        memory_mb=1024,
        max_processes=128,
        max_file_mb=64,
        tmp_size_mb=8,
        output_cap_bytes=16 * 1024,
        output_kill_bytes=1024 * 1024,
    )
    base.update(limits)
    return Sandbox(tmp_path / "ws", level=level, limits=SandboxLimits(**base))


def py(sb: Sandbox, code: str) -> list[str]:
    return [*sb.python_argv(), "-c", code]


def _our_cgroups() -> list[str]:
    me = f"cmd-{cgroup.pid_namespace()}-{os.getpid()}-"
    found = []
    for base in set(cgroup.support().bases.values()):
        found += [p.name for p in base.iterdir() if p.name.startswith(me)]
    return found


@pytest.mark.attack(
    "res_sparse_snapshot",
    "1,000 sparse 1 GiB files made in the sandbox; the host snapshot, then a rewind",
)
async def test_sparse_snapshot_bomb(tmp_path, level, attack_cell):
    """1,000 sparse 1 GiB files made inside the sandbox: the host snapshot stays cheap."""
    sb = make(tmp_path, level, max_file_mb=2048)  # RLIMIT_FSIZE = the 1 GiB write budget
    store = WorkspaceSnapshots(tmp_path / "store.git", sb.workspace, SnapshotBudget())
    (sb.workspace / "keep.txt").write_text("mine\n")
    before = store.snapshot()
    res = await sb.exec(
        "mkdir -p bomb && cd bomb && i=0; while [ $i -lt 1000 ]; do "
        "truncate -s 1G f$i || exit 1; i=$((i+1)); done; echo made",
        timeout=60,
    )
    assert "made" in res.stdout, res.stderr
    start = time.perf_counter()
    store.snapshot()
    took = time.perf_counter() - start
    assert took < 2.0, took
    named = {s.path for s in store.last.skipped if s.reason == "sparse"}
    assert len(named) == 1000 and "bomb/f999" in named
    assert "bomb/f0 (sparse file: 1.0 GiB, 0 B on disk)" in store.last.notice()
    # rewinding to before the bomb must not delete what the snapshot could not capture
    report = store.restore(before)
    assert len(os.listdir(sb.workspace / "bomb")) == 1000
    assert report.deleted == []
    sb.close()


@pytest.mark.attack(
    "res_memory_children",
    "four children each touch 150 MiB under a 256 MiB command bound",
)
async def test_memory_held_across_children(tmp_path, level, attack_cell):
    """Four children of one command each touch 150 MiB; the command may hold 256 MiB."""
    sb = make(tmp_path, level, memory_mb=512, memory_total_mb=256)
    code = (
        "import os, time\nkids = []\n"
        "for i in range(4):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        b = bytearray(150 * 1024 * 1024)\n"
        "        for j in range(0, len(b), 4096):\n            b[j] = 1\n"
        "        time.sleep(1.0)\n        os._exit(0)\n"
        "    kids.append(pid)\n"
        "ok = sum(os.waitpid(k, 0)[1] == 0 for k in kids)\n"
        "print('children that kept their memory', ok)\n"
    )
    res = await sb.exec(py(sb, code), timeout=60)
    if CGROUPS:
        survivors = [int(w) for w in res.stdout.split() if w.isdigit()]
        # the parent itself may be the one the OOM killer picks; either way not all four held
        assert survivors == [] or survivors[-1] < 4, res.stdout
        assert any("memory bound reached" in n for n in res.notes), res.notes
        assert _our_cgroups() == []  # removed after the command
    else:  # documented weakness: RLIMIT_AS is per process
        attack_cell("allowed (documented)", NO_CGROUP)
        assert "children that kept their memory 4" in res.stdout
    sb.close()


@pytest.mark.attack(
    "res_fork_children",
    "children fork grandchildren under a 48-process command bound",
)
async def test_fork_bomb_across_children(tmp_path, level, attack_cell):
    """Children fork grandchildren: the command's process total is bounded, not per process."""
    sb = make(tmp_path, level, max_processes=2000, max_pids=48)
    code = (
        "import os, time\nmade = 0\n"
        "def spawn(n):\n"
        "    got = 0\n"
        "    for _ in range(n):\n"
        "        try:\n            pid = os.fork()\n        except OSError:\n            break\n"
        "        if pid == 0:\n            time.sleep(30)\n            os._exit(0)\n"
        "        got += 1\n"
        "    return got\n"
        "r, w = os.pipe()\n"
        "for c in range(4):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n"
        "        os.write(w, b'%d\\n' % (1 + spawn(40)))\n"
        "        time.sleep(30)\n        os._exit(0)\n"
        "time.sleep(1.5)\n"
        "os.close(w)\n"
        "data = b''\n"
        "while True:\n"
        "    chunk = os.read(r, 4096) if made < 4 else b''\n"
        "    if not chunk:\n        break\n"
        "    data += chunk\n    made = data.count(b'\\n')\n"
        "print('processes', 1 + sum(int(x) for x in data.split()))\n"
    )
    res = await sb.exec(py(sb, code), timeout=10)
    total = int(res.stdout.split()[-1])
    if CGROUPS:
        assert total <= 48, total
        assert any("process limit of 48" in n for n in res.notes), res.notes
    else:  # documented weakness: only RLIMIT_NPROC of the sandbox uid (2000 here)
        attack_cell("allowed (documented)", NO_CGROUP)
        assert total > 48
    assert not res.timed_out
    sb.close()


@pytest.mark.attack(
    "res_disk_fill",
    "write 160 MiB of files under a 32 MiB per-command write budget",
)
async def test_workspace_disk_fill(tmp_path, level, attack_cell):
    """A command writing many files is stopped near the per-command workspace write budget."""
    sb = make(tmp_path, level, max_file_mb=512, workspace_write_mb=32)
    code = (
        "import os, time\n"
        "for i in range(40):\n"
        "    with open(f'fill{i}.bin', 'wb') as f:\n"
        "        f.write(b'x' * (4 * 1024 * 1024))\n"
        "    time.sleep(0.05)\n"
        "print('wrote 160 MiB')\n"
    )
    res = await sb.exec(py(sb, code), timeout=60)
    used = sum(p.stat().st_blocks * 512 for p in sb.workspace.iterdir())
    assert res.killed_reason == "disk_limit", (res.stdout, res.notes)
    assert res.exit_code is None and "wrote 160 MiB" not in res.stdout
    assert used < 96 * 1024 * 1024, used
    assert any("write budget of 32 MiB" in n for n in res.notes)
    # one file cannot outgrow the budget either (RLIMIT_FSIZE = min(max_file_mb, budget))
    res = await sb.exec("rm -f fill*; head -c 67108864 /dev/zero > one.bin; true", timeout=30)
    assert (sb.workspace / "one.bin").stat().st_size == 32 * 1024 * 1024
    sb.close()


@pytest.mark.attack(
    "res_background_job",
    "sleep 30 & echo x: the command returns when the shell exits",
)
async def test_background_job_holding_stdout(tmp_path, level, attack_cell):
    """`sleep 30 & echo x` returns when the shell exits, not at the timeout."""
    sb = make(tmp_path, level)
    start = time.perf_counter()
    res = await sb.exec("sleep 30 & echo x", timeout=20)
    took = time.perf_counter() - start
    assert res.stdout == "x\n" and res.exit_code == 0 and not res.timed_out
    assert took < 5, took
    sb.close()
