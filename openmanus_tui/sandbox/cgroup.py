"""Per-command cgroups: one total memory and process bound for everything a command starts.

``RLIMIT_AS`` bounds each process on its own, so four children of one command could hold four
times ``memory_mb``. When cgroups are writable (we are root, and a cgroup v2 hierarchy with the
memory and pids controllers, or cgroup v1 memory and pids hierarchies, are mounted), each command
gets its own child cgroup, created before it runs and removed after:

* v2: ``memory.max`` = ``memory_total_mb``, ``memory.swap.max`` = 0, ``memory.oom.group`` = 1
  (an OOM kills the whole command), ``pids.max`` = ``max_pids``;
* v1: ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes`` when swap is accounted),
  ``pids.max``.

The command is started behind a tiny gate (``/bin/sh`` waiting for one line on its stdin): we
move the gate into the cgroup, then release it; it ``exec``s the real launch chain, so no
process of the command ever runs outside the cgroup (a move after the start would let a fast
``fork`` escape). Cgroups live under ``<hierarchy>/openmanus/`` and are named
``cmd-<pid namespace>-<owner pid>-<owner start time>-<n>``: a later process in the same PID
namespace removes those whose owner is provably dead (no such pid, or a pid with another start
time), killing what is left in them; cgroups of other PID namespaces are never judged.
Only root uses this: the command runs as another uid, which cannot write the cgroup files.
Cost: the move waits for an RCU grace period in the kernel, about 10 ms per command (measured
on cgroup v1, two hierarchies); creating and removing the cgroup is under 1 ms.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_NAME = "openmanus"
GATE_SCRIPT = 'read -r _ || exit 125; exec "$@"'  # released by one line on stdin
GATE_LINE = b"go\n"
MiB = 1024 * 1024
_counter = itertools.count(1)


@dataclass
class CgroupSupport:
    """What this machine offers: ``kind`` is ``"v2"``, ``"v1"`` or ``None`` (not usable)."""

    kind: str | None
    detail: str
    bases: dict[str, Path] = field(default_factory=dict)  # controller -> our base directory

    @property
    def ok(self) -> bool:
        return self.kind is not None


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of the cgroup mounts, from mountinfo."""
    found = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) < 5 or len(rparts) < 3 or rparts[0] not in ("cgroup", "cgroup2"):
            continue
        point = parts[4].replace("\\040", " ")
        found.append((point, rparts[0], set(rparts[2].split(","))))
    return found


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _read_int_field(path: Path, key: str) -> int:
    """``key N`` from a flat-keyed cgroup file (memory.events, pids.events, oom_control)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _trial(bases: dict[str, Path], kind: str) -> str | None:
    """Create, limit and remove one child cgroup; an error message when that fails."""
    name = f"probe-{os.getpid()}-{next(_counter)}"
    made: list[Path] = []
    try:
        for ctrl, base in bases.items():
            child = base / name
            child.mkdir()
            made.append(child)
            if ctrl == "memory":
                limit_file = "memory.max" if kind == "v2" else "memory.limit_in_bytes"
                _write(child / limit_file, str(MiB * 64))
            if ctrl == "pids" or kind == "v2":
                _write(child / "pids.max", "16")
        return None
    except OSError as exc:
        return f"{exc.strerror or exc} ({exc.filename})"
    finally:
        for child in made:
            with contextlib.suppress(OSError):
                child.rmdir()


def _detect() -> CgroupSupport:
    if os.geteuid() != 0:
        return CgroupSupport(None, "not root: commands run as your uid and could raise limits")
    mounts = _mounts()
    problems: list[str] = []
    for point, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        root = Path(point)
        try:
            controllers = (root / "cgroup.controllers").read_text().split()
        except OSError:
            continue
        missing = [c for c in ("memory", "pids") if c not in controllers]
        if missing:
            problems.append(
                f"cgroup v2 at {point} lacks the {' and '.join(missing)} controller"
                + (" (bound to cgroup v1)" if any(m[1] == "cgroup" for m in mounts) else "")
            )
            continue
        base = root / BASE_NAME
        try:
            enabled = (root / "cgroup.subtree_control").read_text().split()
            if not {"memory", "pids"} <= set(enabled):
                _write(root / "cgroup.subtree_control", "+memory +pids")
            base.mkdir(exist_ok=True)
            _write(base / "cgroup.subtree_control", "+memory +pids")
        except OSError as exc:
            problems.append(f"cgroup v2 at {point}: {exc.strerror or exc} ({exc.filename})")
            continue
        why = _trial({"memory": base, "pids": base}, "v2")
        if why is None:
            return CgroupSupport("v2", f"cgroup v2 at {base}", {"memory": base, "pids": base})
        problems.append(f"cgroup v2 at {point}: {why}")
    v1 = {}
    for point, fstype, opts in mounts:
        if fstype == "cgroup":
            for ctrl in ("memory", "pids"):
                if ctrl in opts and ctrl not in v1:
                    v1[ctrl] = Path(point) / BASE_NAME
    if {"memory", "pids"} <= set(v1):
        try:
            for base in v1.values():
                base.mkdir(exist_ok=True)
        except OSError as exc:
            problems.append(f"cgroup v1: {exc.strerror or exc} ({exc.filename})")
        else:
            why = _trial(v1, "v1")
            if why is None:
                where = ", ".join(str(b) for b in v1.values())
                return CgroupSupport("v1", f"cgroup v1 at {where}", v1)
            problems.append(f"cgroup v1: {why}")
    elif not problems:
        problems.append("no cgroup hierarchy with the memory and pids controllers is mounted")
    return CgroupSupport(None, "; ".join(problems))


_cache: CgroupSupport | None = None
_lock = threading.Lock()


def support(refresh: bool = False) -> CgroupSupport:
    """Detect once per process (cached). Also sweeps cgroups left by dead owners."""
    global _cache
    with _lock:
        if _cache is None or refresh:
            _cache = _detect()
            if _cache.ok:
                sweep_stale(_cache)
        return _cache


# ---- owners ------------------------------------------------------------------------------
def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    try:
        return int(data[data.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def pid_namespace() -> int:
    """The inode of our PID namespace: pids in cgroup names are only judged within it."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def owner_dead(pid: int, started: int) -> bool:
    """True only when ``pid`` is gone or is now another process (a different start time)."""
    now = start_time(pid)
    return now is None or now != started


def _kill_members(dirs: list[Path], *, patience: float = 2.0) -> bool:
    """SIGKILL every process in ``dirs`` until they are empty; True when they are."""
    deadline = time.monotonic() + patience
    for d in dirs:
        kill = d / "cgroup.kill"
        if kill.exists():  # v2, Linux >= 5.14: one atomic kill of the whole cgroup
            with contextlib.suppress(OSError):
                _write(kill, "1")
    while True:
        alive = False
        for d in dirs:
            try:
                pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                continue
            for pid in pids:
                alive = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if not alive:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def _remove(dirs: list[Path]) -> bool:
    ok = True
    for d in dirs:
        for _ in range(50):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)  # exited members are released a moment after they die
        else:
            ok = False
    return ok


def sweep_stale(sup: CgroupSupport) -> list[str]:
    """Remove ``cmd-*`` cgroups whose owner process is provably dead; returns their names."""
    removed: list[str] = []
    names: set[str] = set()
    for base in set(sup.bases.values()):
        with contextlib.suppress(OSError):
            names.update(p.name for p in base.iterdir() if p.is_dir())
    ns = str(pid_namespace())
    for name in sorted(names):
        parts = name.split("-")
        if len(parts) != 5 or parts[0] != "cmd" or parts[1] != ns or ns == "0":
            continue
        if not (parts[2].isdigit() and parts[3].isdigit()):
            continue
        if not owner_dead(int(parts[2]), int(parts[3])):
            continue
        dirs = [b / name for b in set(sup.bases.values()) if (b / name).is_dir()]
        if _kill_members(dirs) and _remove(dirs):
            removed.append(name)
    return removed


# ---- one command -------------------------------------------------------------------------
class CommandCgroup:
    """The cgroup(s) of one command: created with its limits, joined, read, removed."""

    def __init__(self, sup: CgroupSupport, *, memory_mb: int, max_pids: int) -> None:
        self.kind = sup.kind
        self.memory_mb, self.max_pids = memory_mb, max_pids
        me = os.getpid()
        name = f"cmd-{pid_namespace()}-{me}-{start_time(me) or 0}-{next(_counter)}"
        self.dirs: dict[str, Path] = {ctrl: base / name for ctrl, base in sup.bases.items()}
        self._unique = list(dict.fromkeys(self.dirs.values()))
        self.oom_kills = 0  # set by collect()
        self.pids_refused = 0
        try:
            for d in self._unique:
                d.mkdir()
            self._limit()
        except OSError:
            self.remove()
            raise

    def _limit(self) -> None:
        mem, pids = self.dirs["memory"], self.dirs["pids"]
        limit = str(self.memory_mb * MiB)
        if self.kind == "v2":
            _write(mem / "memory.max", limit)
            if (mem / "memory.swap.max").exists():  # absent when swap accounting is off
                _write(mem / "memory.swap.max", "0")
            if (mem / "memory.oom.group").exists():
                _write(mem / "memory.oom.group", "1")
        else:
            _write(mem / "memory.limit_in_bytes", limit)
            if (mem / "memory.memsw.limit_in_bytes").exists():
                _write(mem / "memory.memsw.limit_in_bytes", limit)  # memory + swap: no swap
            with contextlib.suppress(OSError):
                _write(mem / "memory.swappiness", "0")
        _write(pids / "pids.max", str(self.max_pids))

    def attach(self, pid: int) -> None:
        """Move ``pid`` (the gate, still waiting) into the cgroup(s)."""
        for d in self._unique:
            _write(d / "cgroup.procs", str(pid))

    def collect(self) -> None:
        """Read what the bounds did (before ``remove``): OOM kills and refused forks."""
        mem = self.dirs["memory"]
        events = "memory.events" if self.kind == "v2" else "memory.oom_control"
        self.oom_kills = _read_int_field(mem / events, "oom_kill")
        self.pids_refused = _read_int_field(self.dirs["pids"] / "pids.events", "max")

    def kill_all(self) -> None:
        _kill_members(self._unique)

    def remove(self) -> None:
        """Kill what is left and remove the cgroup(s); the stale sweep retries on failure."""
        _kill_members(self._unique)
        _remove(self._unique)


def describe(sup: CgroupSupport, *, memory_mb: int, max_pids: int, max_processes: int) -> str:
    """One line for ``openmanus doctor``: what bounds a command's total memory and processes."""
    if sup.ok:
        return (
            f"in use ({sup.detail}): each command's processes together get at most "
            f"{memory_mb} MiB (no swap) and {max_pids} processes"
        )
    return (
        f"not in use ({sup.detail}); weaker bound: memory per process only (RLIMIT_AS), "
        f"processes by RLIMIT_NPROC ({max_processes}) of the sandbox uid"
    )
