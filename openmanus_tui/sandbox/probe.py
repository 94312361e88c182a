"""Finding out, once per process, which isolation mechanisms work on this machine."""

from __future__ import annotations

import ctypes.util
import os
import pwd
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from openmanus_tui.errors import ConfigError
from openmanus_tui.sandbox import landlock
from openmanus_tui.sandbox.hostview import MINIMAL_ENV, reachable_by_others
from openmanus_tui.sandbox.types import IsolationLevel

SANDBOX_ACCOUNT = "openmanus-sandbox"
DEFAULT_SANDBOX_ID = 59999  # used as uid and gid when no such account exists
# Run as root, each openmanus process's commands share one id, and below L2 the sweep after a
# command kills every process of that id: two processes side by side (two checkouts, a test
# run's workers and their subprocesses) each need an id of their own, named here.
SANDBOX_ID_ENV = "OPENMANUS_SANDBOX_ID"
MIN_SANDBOX_ID = 1000  # below: system accounts
MAX_SANDBOX_ID = 2**31 - 2


SERVER_ID_OFFSET = 1  # MCP servers run as the sandbox id minus this (root only)


def server_ids() -> tuple[int, int]:
    """The uid/gid of sandboxed MCP servers: not the commands' uid, so that the sweep after
    a command (which kills every process of that uid below L2) leaves the servers alone."""
    uid, gid = sandbox_ids()
    return uid - SERVER_ID_OFFSET, gid - SERVER_ID_OFFSET


def sandbox_ids() -> tuple[int, int]:
    """The outer uid/gid commands run as: a dedicated unprivileged id when we are root."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    named = configured_id()
    if named is not None:
        return named, named
    try:
        entry = pwd.getpwnam(SANDBOX_ACCOUNT)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return DEFAULT_SANDBOX_ID, DEFAULT_SANDBOX_ID


def configured_id() -> int | None:
    """The id ``$OPENMANUS_SANDBOX_ID`` names (uid and gid of the commands, root only), or
    None when it is unset."""
    raw = os.environ.get(SANDBOX_ID_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    # The MCP servers run one below (server_ids), which must stay a non-system id too.
    if not MIN_SANDBOX_ID < value <= MAX_SANDBOX_ID:
        raise ConfigError(
            f"{SANDBOX_ID_ENV} must be a number from {MIN_SANDBOX_ID + 1} to {MAX_SANDBOX_ID}, "
            f"not {raw!r}"
        )
    return value


@dataclass
class Mechanism:
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass
class ProbeReport:
    level: IsolationLevel
    mechanisms: dict[str, Mechanism]
    advice: list[str] = field(default_factory=list)
    unavailable: dict[IsolationLevel, str] = field(default_factory=dict)  # level -> why not
    uid: int = 0
    gid: int = 0

    def available(self, level: IsolationLevel) -> bool:
        return level not in self.unavailable

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": str(self.level),
            "mechanisms": {k: v.to_dict() for k, v in self.mechanisms.items()},
            "advice": list(self.advice),
            "unavailable": {str(k): v for k, v in self.unavailable.items()},
            "uid": self.uid,
        }


def _run(argv: list[str], *, as_sandbox: bool, ids: tuple[int, int]) -> Mechanism:
    kwargs: dict[str, Any] = {}
    if as_sandbox and os.geteuid() == 0:
        kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []}
    try:
        res = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=10,
            env=MINIMAL_ENV,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Mechanism(False, str(exc))
    if res.returncode == 0:
        return Mechanism(True, "works")
    return Mechanism(False, (res.stderr.strip() or f"exit {res.returncode}").splitlines()[-1])


def _cgroups() -> Mechanism:
    """Whether each command gets a cgroup bounding its total memory and processes."""
    from openmanus_tui.sandbox import cgroup

    sup = cgroup.support()
    if sup.ok:
        return Mechanism(
            True,
            f"in use: {sup.detail}; each command's processes together are bounded in memory "
            "(no swap) and number",
        )
    return Mechanism(
        False,
        f"not in use: {sup.detail}; weaker bound: memory per process (RLIMIT_AS), "
        "processes per uid (RLIMIT_NPROC)",
    )


BWRAP_SMOKE = [
    "--unshare-user",
    "--disable-userns",
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--die-with-parent",
    "--new-session",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--",
    "/bin/true",
]


def _probe() -> ProbeReport:
    ids = sandbox_ids()
    root = os.geteuid() == 0
    mech: dict[str, Mechanism] = {}
    advice: list[str] = []
    tools = {
        name: shutil.which(name) for name in ("bwrap", "prlimit", "unshare", "nsenter", "setpriv")
    }
    mech["root"] = Mechanism(
        root,
        f"running as uid {os.geteuid()}; commands run as uid "
        f"{ids[0]}" + (" (unprivileged)" if root else ""),
    )
    for name in ("prlimit", "nsenter", "setpriv", "unshare"):
        mech[name] = Mechanism(bool(tools[name]), tools[name] or "not found (util-linux)")

    if root and tools["unshare"]:
        mech["mountns"] = _run(
            [tools["unshare"], "--mount", "--propagation", "private", "--", "/bin/true"],
            as_sandbox=False,
            ids=ids,
        )
    else:
        mech["mountns"] = Mechanism(not root, "not needed" if not root else "unshare missing")

    if tools["bwrap"]:
        mech["bwrap"] = _run([tools["bwrap"], *BWRAP_SMOKE], as_sandbox=True, ids=ids)
        if mech["bwrap"].ok:
            ver = subprocess.run([tools["bwrap"], "--version"], capture_output=True, text=True)
            mech["bwrap"].detail = f"{ver.stdout.strip()} at {tools['bwrap']}: works"
    else:
        mech["bwrap"] = Mechanism(False, "not installed")
        advice.append(
            "install bubblewrap for the strongest level (L3): apt-get install -y bubblewrap"
        )

    if tools["unshare"]:
        mech["userns"] = _run(
            [
                tools["unshare"],
                "--user",
                "--map-current-user",
                "--net",
                "--pid",
                "--fork",
                "--kill-child",
                "--",
                "/bin/true",
            ],
            as_sandbox=True,
            ids=ids,
        )
    else:
        mech["userns"] = Mechanism(False, "unshare not found")
    if not mech["userns"].ok:
        advice.append(
            "unprivileged user namespaces are off: sysctl "
            "kernel.unprivileged_userns_clone=1 (Debian) or "
            "kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu)"
        )

    abi = landlock.abi_version()
    mech["landlock"] = Mechanism(
        abi > 0, f"ABI {abi}" if abi else "not available (kernel < 5.13 or landlock not in lsm=)"
    )
    if abi and abi < 4:
        mech["landlock"].detail += "; no TCP rules (ABI < 4)"
    lib = ctypes.util.find_library("seccomp")
    has = "libseccomp present" if lib else "no libseccomp"
    mech["seccomp"] = Mechanism(False, f"not used ({has}); namespaces and Landlock do the work")
    mech["cgroups"] = _cgroups()
    reach = reachable_by_others(sys.base_prefix)
    mech["interpreter"] = Mechanism(
        reach or (root and mech["mountns"].ok) or not root,
        f"{sys.base_prefix}"
        + (
            ""
            if reach
            else " is in a private directory; "
            + (
                "bound through the helper mount namespace"
                if root and mech["mountns"].ok
                else "not reachable"
            )
        ),
    )

    unavailable: dict[IsolationLevel, str] = {}
    if not tools["prlimit"]:
        for lvl in IsolationLevel:
            unavailable[lvl] = "prlimit (util-linux) is missing"
    if root and not (mech["mountns"].ok and tools["nsenter"] and tools["setpriv"]):
        for lvl in IsolationLevel:
            unavailable.setdefault(
                lvl,
                "as root the sandbox needs unshare --mount, nsenter "
                "and setpriv: " + mech["mountns"].detail,
            )
    if not mech["bwrap"].ok:
        unavailable.setdefault(IsolationLevel.L3, f"bubblewrap: {mech['bwrap'].detail}")
    if not abi:
        for lvl in (IsolationLevel.L2, IsolationLevel.L1):
            unavailable.setdefault(lvl, "Landlock is not available on this kernel")
    if not mech["userns"].ok:
        unavailable.setdefault(IsolationLevel.L2, f"user namespaces: {mech['userns'].detail}")
    best = next(
        (lvl for lvl in sorted(IsolationLevel, reverse=True) if lvl not in unavailable),
        IsolationLevel.L0,
    )
    if best == IsolationLevel.L0:
        advice.append("only L0 is available: commands have NO filesystem or network isolation")
    if not root and best >= IsolationLevel.L1:
        advice.append(
            "not running as root: commands run as your own uid, so the process limit "
            "counts all of your processes"
        )
    return ProbeReport(best, mech, advice, unavailable, ids[0], ids[1])


_cache: ProbeReport | None = None
_lock = threading.Lock()


def probe(refresh: bool = False) -> ProbeReport:
    """Probe once per process (cached); ``refresh=True`` probes again."""
    global _cache
    with _lock:
        if _cache is None or refresh:
            _cache = _probe()
        return _cache


def format_report(report: ProbeReport) -> str:
    """Human-readable text for ``openmanus doctor``."""
    lines = [f"Sandbox isolation: {report.level}"]
    for name, m in report.mechanisms.items():
        lines.append(f"  [{'ok' if m.ok else '--'}] {name:<12} {m.detail}")
    for lvl in sorted(IsolationLevel, reverse=True):
        why = report.unavailable.get(lvl)
        lines.append(f"  {lvl}: {'available' if why is None else 'not available - ' + why}")
    lines += [f"  advice: {a}" for a in report.advice]
    return "\n".join(lines)
