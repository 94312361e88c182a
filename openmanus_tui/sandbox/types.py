"""Plain data shared by the sandbox: isolation levels, resource limits and exec results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from openmanus_tui.errors import SandboxError


class IsolationLevel(IntEnum):
    """How strongly a command is isolated (see SANDBOX.md, "Levels")."""

    L0 = 0  # rlimits, new session, scrubbed env, unprivileged uid when we are root
    L1 = 1  # + Landlock filesystem allow-list (+ TCP / abstract-socket / signal scoping)
    L2 = 2  # + user, network and PID namespaces
    L3 = 3  # bubblewrap: read-only system, private /tmp, no network, private PIDs

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, value: str | int | IsolationLevel) -> IsolationLevel:
        """Accept ``"L2"``, ``"l2"``, ``"2"`` or ``2``; anything else is a one-line error."""
        if isinstance(value, IsolationLevel):
            return value
        text = str(value).strip().upper().removeprefix("L")
        if text.isdigit() and int(text) in cls._value2member_map_:
            return cls(int(text))
        raise SandboxError(
            f"unknown isolation level {value!r}",
            hint="use one of L0, L1, L2, L3",
            error_class="user",
        )


class BelowMinIsolation(SandboxError):
    """The best level this machine offers is below the configured ``min_isolation``."""


@dataclass
class SandboxLimits:
    """Per-command resource limits (soft = hard)."""

    cpu_seconds: int = 60
    memory_mb: int = 2048  # address space (RLIMIT_AS)
    max_processes: int = 256  # RLIMIT_NPROC of the sandbox uid (threads count too)
    max_file_mb: int = 512  # RLIMIT_FSIZE
    max_open_files: int = 512
    output_cap_bytes: int = 64 * 1024  # per stream: head and tail are kept, the middle is cut
    tmp_size_mb: int = 256  # private /tmp (L3)
    output_kill_bytes: int = 32 * 1024 * 1024  # a command printing more than this is killed
    # all processes of one command together (a cgroup, when one is writable; sandbox/cgroup.py)
    memory_total_mb: int = 4096
    max_pids: int = 256
    # how much the workspace may grow during one command (sandbox/diskwatch.py); 0 = unbounded
    workspace_write_mb: int = 1024


@dataclass
class ExecResult:
    exit_code: int | None  # None when we killed it (timeout, output flood)
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    cut_bytes: int
    duration_ms: float
    level: IsolationLevel
    # timeout | output_limit | cpu_limit | file_size_limit | memory_limit | disk_limit | signal
    killed_reason: str | None = None
    signal: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out
