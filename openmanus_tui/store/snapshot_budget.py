"""What one workspace snapshot may cost, and what it leaves out (used by ``snapshots.py``).

Snapshots run on the host, outside the sandbox, so a workspace must not be able to make them
expensive: 130 sparse 500 MB files (0 bytes on disk, made in 0.2 s) once cost six minutes of
host CPU. Per snapshot:

* ``exclude``: names (or ``/``-paths) matched with ``fnmatch`` against every path component;
  matching directories are not even walked (``.venv``, ``node_modules``, ``__pycache__``);
* sparse files (fewer than 1/8 of their size allocated on disk, at least 1 MiB) and files over
  ``max_file_bytes`` are skipped and named;
* at most ``max_files`` files, and at most ``max_bytes`` of new or changed content read, per
  snapshot (unchanged files come from the stat cache for free); the rest is skipped and named;
* ``time_limit_s`` for the whole snapshot: files not read by then are skipped and named; a walk
  that does not finish in time marks the snapshot incomplete (``restore`` then refuses).

Skipped files are not in the snapshot, and ``restore`` never deletes or overwrites them (nor
excluded paths): what a snapshot could not capture, a restore could not bring back.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field

MiB = 1024 * 1024
DEFAULT_EXCLUDE = (".venv", "node_modules", "__pycache__")
SPARSE_MIN_BYTES = 1 * MiB
SPARSE_RATIO = 8  # allocated * 8 < size: sparse

REASONS = {
    "sparse": "sparse file",
    "too_large": "over the per-file limit",
    "file_budget": "over the file-count budget",
    "byte_budget": "over the byte budget",
    "time_limit": "snapshot time limit reached",
}


@dataclass(frozen=True)
class SnapshotBudget:
    max_bytes: int = 512 * MiB
    max_files: int = 20_000
    max_file_bytes: int = 100 * MiB
    time_limit_s: float = 30.0
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    skip_sparse: bool = True  # off only for measuring the unbounded cost (bench)

    def excluded(self, path: str) -> bool:
        """Does ``path`` (relative, ``/``-separated) or one of its parents match ``exclude``?"""
        if not self.exclude:
            return False
        parts = path.split("/")
        for pattern in self.exclude:
            if "/" in pattern:
                pat = pattern.strip("/")
                if any(
                    fnmatch.fnmatchcase("/".join(parts[: i + 1]), pat) for i in range(len(parts))
                ):
                    return True
            elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
                return True
        return False


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str  # a key of REASONS
    size: int  # apparent size (st_size)
    allocated: int = 0  # bytes on disk (st_blocks * 512)

    def describe(self) -> str:
        what = REASONS.get(self.reason, self.reason)
        if self.reason == "sparse":
            return f"{self.path} ({what}: {_human(self.size)}, {_human(self.allocated)} on disk)"
        return f"{self.path} ({what}, {_human(self.size)})"


@dataclass
class SnapshotOutcome:
    """What the last snapshot left out; ``notice()`` is the one line the user is shown."""

    tree: str = ""
    skipped: list[Skipped] = field(default_factory=list)
    incomplete: bool = False  # the walk ran out of time: unknown paths exist
    excluded: int = 0  # entries left out by ``exclude`` (not named)
    seconds: float = 0.0

    def notice(self, limit: int = 5) -> str:
        if not self.skipped and not self.incomplete:
            return ""
        parts = []
        if self.skipped:
            shown = "; ".join(s.describe() for s in self.skipped[:limit])
            more = len(self.skipped) - limit
            parts.append(
                f"workspace snapshot skipped {len(self.skipped)} file(s): {shown}"
                + (f"; and {more} more" if more > 0 else "")
                + ". Rewinding leaves them as they are."
            )
        if self.incomplete:
            parts.append(
                "the workspace could not be walked within the snapshot time limit: the snapshot "
                "is partial and restoring the current state is refused"
            )
        return " ".join(parts)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() > self.end


def is_sparse(size: int, blocks: int) -> bool:
    return size >= SPARSE_MIN_BYTES and blocks * 512 * SPARSE_RATIO < size


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
