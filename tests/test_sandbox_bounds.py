"""Per-command bounds outside the attack suite: the command's own cgroup, what ``doctor`` says
with and without cgroups, and the limits' settings (issue 12, defect 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli

from openmanus_tui.config import load_settings
from openmanus_tui.errors import ConfigError
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.sandbox import Sandbox, SandboxLimits, cgroup, probe
from openmanus_tui.sandbox.probe import _cgroups

SUPPORT = cgroup.support()


@pytest.mark.skipif(not SUPPORT.ok, reason=f"cgroups: {SUPPORT.detail}")
async def test_each_command_runs_in_its_own_cgroup_removed_after(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path / "ws", level="L0", limits=SandboxLimits(memory_total_mb=300))
    first = await sb.exec("cat /proc/self/cgroup", timeout=20)
    second = await sb.exec("cat /proc/self/cgroup", timeout=20)
    mine = f"/{cgroup.BASE_NAME}/cmd-{cgroup.pid_namespace()}-{os.getpid()}-"
    lines = [ln for ln in first.stdout.splitlines() if mine in ln]
    # v2: one line; v1: the memory and the pids hierarchy
    assert len(lines) == (1 if SUPPORT.kind == "v2" else 2), first.stdout
    names = {ln.rsplit("/", 1)[1] for ln in lines}
    assert len(names) == 1
    (name,) = names
    assert name not in second.stdout  # a fresh cgroup per command
    for base in set(SUPPORT.bases.values()):
        assert not (base / name).exists()  # removed after the command
        assert (base / name).parent == base
    limit_file = "memory.max" if SUPPORT.kind == "v2" else "memory.limit_in_bytes"
    limit = SUPPORT.bases["memory"] / "cmd-*" / limit_file
    pids = SUPPORT.bases["pids"] / "cmd-*" / "pids.max"
    res = await sb.exec(
        f"cat {limit}; for f in {limit} {pids}; do "
        "echo 999999999999 > $f && echo RAISED $f; done; true",
        timeout=20,
    )
    assert str(300 * 1024 * 1024) in res.stdout.split()  # its own limit, readable
    assert "RAISED" not in res.stdout  # but the sandbox uid cannot raise it
    sb.close()


def test_doctor_says_whether_cgroup_bounds_are_in_use() -> None:
    res = run_cli("doctor")
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if " cgroups " in ln)
    bounds = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("bounds:"))
    if SUPPORT.ok:
        assert "[ok]" in line and "in use" in line
        assert "4096 MiB (no swap) and 256 processes" in bounds
    else:
        assert "not in use" in line and "weaker bound" in bounds
    assert "workspace writes: 1024 MiB per command" in res.stdout
    data = json.loads(run_cli("doctor", "--json").stdout)
    assert data["sandbox"]["mechanisms"]["cgroups"]["ok"] is SUPPORT.ok


async def test_without_cgroups_the_weaker_bound_is_said_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    none = cgroup.CgroupSupport(None, "cgroup v2 at /sys/fs/cgroup lacks the memory controller")
    monkeypatch.setattr(cgroup, "support", lambda refresh=False: none)
    mech = _cgroups()
    assert not mech.ok and "not in use" in mech.detail and "RLIMIT_AS" in mech.detail
    text = cgroup.describe(none, memory_mb=4096, max_pids=256, max_processes=256)
    assert "weaker bound" in text and "RLIMIT_NPROC (256)" in text
    level = probe().level
    sb = Sandbox(tmp_path / "ws", level=level, limits=SandboxLimits(memory_total_mb=64))
    res = await sb.exec("cat /proc/self/cgroup; echo ran", timeout=20)
    assert "ran" in res.stdout and "/openmanus/cmd-" not in res.stdout
    sb.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("memory_total_mb", 10),
        ("memory_total_mb", 10**9),
        ("max_pids", 1),
        ("max_pids", 10**7),
        ("workspace_write_mb", -1),
    ],
)
def test_bound_settings_have_sane_limits(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"sandbox.{key}"):
        load_settings({"sandbox": {key: value}})


async def test_bound_settings_reach_the_sandbox() -> None:
    settings = load_settings(
        {"sandbox": {"memory_total_mb": 512, "max_pids": 64, "workspace_write_mb": 0}}
    )
    runtime = await Runtime.open(settings)
    try:
        limits = (await runtime.create_session()).sandbox().limits
        assert (limits.memory_total_mb, limits.max_pids, limits.workspace_write_mb) == (512, 64, 0)
    finally:
        await runtime.close()
