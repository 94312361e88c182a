"""Stale sandbox support folders and command cgroups are swept; live ones never are (defect 17).

Other processes (and other test runs) share ``/run/openmanus-sandbox`` concurrently, so the
sweep must only take folders whose owner is provably dead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openmanus_tui.sandbox import Sandbox, cgroup, hostview, stale

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from openmanus_tui.sandbox import stale
    root, fd = stale.make_root(Path(sys.argv[1]))
    print(root, flush=True)
    time.sleep(60)
    """
)


def _holder(parent: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(parent)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_dead_owner_swept_live_and_legacy_kept(tmp_path):
    parent = tmp_path / "run"
    parent.mkdir()
    dead, dead_root = _holder(parent)
    live, live_root = _holder(parent)
    try:
        (dead_root / "tmp").mkdir()
        (dead_root / "tmp" / "file").write_text("x")
        os.symlink("/etc", dead_root / "link")  # removed, never followed
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        legacy = parent / "sbx-abcd1234"  # older layout: owner unknowable, left alone
        legacy.mkdir()
        young = parent / ".sbx-new-abcd"  # mid-creation elsewhere
        young.mkdir()
        assert dead_root.name.startswith(f"sbx-{dead.pid}-")
        removed = stale.sweep(parent)
        assert removed == [dead_root.name]
        assert not dead_root.exists()
        assert live_root.is_dir() and legacy.is_dir() and young.is_dir()
        assert Path("/etc/passwd").exists()
    finally:
        live.kill()
        live.wait()
    assert stale.sweep(parent) == [live_root.name]  # its owner is gone now


def test_sandbox_folders_of_a_killed_process_are_swept_at_start(tmp_path, monkeypatch):
    """A process killed with -9 leaves its sbx folder; the next process removes it."""
    code = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from openmanus_tui.sandbox import Sandbox
        sb = Sandbox(Path({str(tmp_path / "ws")!r}), level="L0")
        print(sb._view.root, flush=True)
        time.sleep(60)
        """
    )
    killed = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert killed.stdout is not None
    left = Path(killed.stdout.readline().strip())
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert left.is_dir()
    alive = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert alive.stdout is not None
    alive_root = Path(alive.stdout.readline().strip())
    try:
        monkeypatch.setattr(hostview, "_swept", False)
        sb = Sandbox(tmp_path / "ws2", level="L0")
        assert not left.exists()
        assert alive_root.is_dir()  # a live process's folder is never taken
        sb.close()
        assert not sb._view.root.exists()
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.skipif(not cgroup.support().ok, reason=f"cgroups: {cgroup.support().detail}")
def test_stale_command_cgroups_swept_live_kept():
    sup = cgroup.support()
    proc = subprocess.Popen(["true"])
    proc.wait()
    me, ns = os.getpid(), cgroup.pid_namespace()
    names = {
        "dead": f"cmd-{ns}-{proc.pid}-{10**9}-1",  # no such process
        "reused": f"cmd-{ns}-{me}-{(cgroup.start_time(me) or 0) + 1}-1",  # our pid, new start
        "live": f"cmd-{ns}-{me}-{cgroup.start_time(me)}-999999",
        "other_ns": f"cmd-{ns + 1}-{proc.pid}-{10**9}-1",  # another PID namespace: not judged
    }
    bases = set(sup.bases.values())
    for name in names.values():
        for base in bases:
            (base / name).mkdir()
    try:
        removed = cgroup.sweep_stale(sup)
        assert names["dead"] in removed and names["reused"] in removed
        assert names["live"] not in removed and names["other_ns"] not in removed
        assert all((b / names["live"]).is_dir() for b in bases)
        assert not any((b / names["dead"]).exists() for b in bases)
    finally:
        for base in bases:
            for name in names.values():
                if (base / name).exists():
                    (base / name).rmdir()
