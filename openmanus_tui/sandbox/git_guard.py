"""Host-side check of every git repository under a workspace, after each tool run.

Escape 2 of issue 12: a command renamed ``.git``, copied it back, and planted a hook and
``core.fsmonitor``; the person's next ``git status`` on the host ran them. Mounts stop the
rename where a mount namespace exists (``.git`` is bound read-only, see ``mounts.py``), but a
repository the agent creates is writable until it is found, and without root below L3 there
are no mounts at all. So after every tool run that can write, this guard compares each
repository's hooks and executing configuration with its record and, for anything new or
changed that the person has not approved:

* reports it (the runtime turns the findings into a warning event), and
* neutralises it: a hook is renamed to ``NAME.disabled-by-openmanus`` and made
  non-executable; an executing key is removed from the config file (``git config --unset-all``);
  a ``.git`` file or ``commondir`` that points somewhere new is renamed aside.

The record lives in the data folder (out of the sandbox's reach), per workspace, so a kill
between a command and its check does not turn a planted hook into the baseline. What the
repositories held the first time a workspace is seen is the person's own and is left alone.
Changes found *before* a command (made by the person between runs) are reported and accepted.
``approve()`` accepts the current state (``openmanus git approve DIR``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCAN_LIMIT = 50_000  # directory entries looked at per scan
MAX_REPOS = 500
SKIP_DIRS = frozenset({"node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".tox"})
DISABLED_SUFFIX = ".disabled-by-openmanus"
GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "HOME": "/nonexistent",
}

# Keys whose value git runs (or that make git run something, or read more config).
_EXEC_KEY = re.compile(
    r"""^(
        core\.(fsmonitor|hookspath|sshcommand|pager|editor|askpass|gitproxy|worktree)
      | sequence\.editor | diff\.external | diff\..+\.(textconv|command)
      | merge\..+\.driver | filter\..+\.(clean|smudge|process)
      | include\.path | includeif\..+\.path
      | credential(\..+)?\.helper | pager\..+ | gpg(\..+)?\.program
      | uploadpack\.packobjectshook | remote\..+\.(uploadpack|receivepack|vcs)
      | (difftool|mergetool|man|browser)\..+\.(cmd|path) | web\.browser
      | interactive\.difffilter | submodule\..+\.update | ssh\.variant
      | protocol\.allow | protocol\..+\.allow | core\.alternaterefscommand
      | extensions\.worktreeconfig
    )$""",
    re.VERBOSE,
)


def is_exec_key(key: str, value: str) -> bool:
    key = key.lower()
    if key.startswith("alias."):
        return value.lstrip().startswith("!")
    return bool(_EXEC_KEY.match(key))


@dataclass
class Finding:
    repo: str  # relative to the workspace ("." for the workspace itself)
    what: str  # "hook pre-commit", "config core.fsmonitor = ...", "new repository", ...
    action: str  # what was done: "disabled", "removed", "renamed aside", "reported"

    def text(self) -> str:
        return f"{self.repo}: {self.what} ({self.action})"


@dataclass
class RepoState:
    hooks: dict[str, str] = field(default_factory=dict)  # name -> sha256
    keys: dict[str, list[str]] = field(default_factory=dict)  # key -> values
    pointers: dict[str, str] = field(default_factory=dict)  # ".git" file / commondir -> text

    def to_dict(self) -> dict[str, Any]:
        return {"hooks": self.hooks, "keys": self.keys, "pointers": self.pointers}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepoState:
        return cls(dict(data.get("hooks", {})), dict(data.get("keys", {})),
                   dict(data.get("pointers", {})))


def find_git_entries(
    workspace: Path, limit: int = SCAN_LIMIT, *, mountable: bool = False
) -> list[str]:
    """Relative paths of every ``.git`` (directory, file or symlink) and bare repository below
    ``workspace``, without following symlinks; bounded by ``limit`` entries. ``mountable``
    leaves out symlinks (a mount never follows one)."""
    found, _ = _find(workspace, limit)
    if mountable:  # never the workspace itself, never through a symlink
        found = [
            rel for rel in found
            if rel != "." and not os.path.islink(os.path.join(workspace, rel))
        ]
    return found


def _find(workspace: Path, limit: int = SCAN_LIMIT) -> tuple[list[str], bool]:
    """(entries, complete): complete is False when a bound stopped the scan."""
    found: list[str] = []
    queue = deque([""])  # breadth first: shallow repositories are found first
    seen = 0
    root = str(workspace)
    while queue:
        if seen >= limit or len(found) >= MAX_REPOS:
            return sorted(found), False
        rel = queue.popleft()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as it:
                entries = list(it)
        except OSError:
            continue
        names = {e.name for e in entries}
        if {"HEAD", "objects", "refs"} <= names:
            # a bare repository (or a renamed .git): git would use it; "." is the workspace
            found.append(rel or ".")
            if rel:
                continue
        for entry in entries:
            seen += 1
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.name == ".git":
                    found.append(child)
                elif entry.is_dir(follow_symlinks=False) and entry.name not in SKIP_DIRS:
                    queue.append(child)
            except OSError:
                continue
    return sorted(found), True


def _repo_of(entry: str) -> str:
    if entry in (".git", "."):
        return "."
    return entry.removesuffix("/.git")


def _differences(before: RepoState, now: RepoState) -> list[str]:
    out = [f"hook {n}" for n, d in now.hooks.items() if before.hooks.get(n) != d]
    out += [f"config {k}" for k, v in now.keys.items() if before.keys.get(k) != v]
    out += [f"{n} -> {t[:120]}" for n, t in now.pointers.items() if before.pointers.get(n) != t]
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_small(path: Path, limit: int = 1 << 20) -> bytes | None:
    """Read a regular file without following a final symlink (None otherwise)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _config_entries(config: Path) -> list[tuple[str, str, str]]:
    """(origin file, key, value) of every executing key, includes followed (an included file
    in the workspace is as writable as the config itself). Reading never runs anything."""
    if not config.exists() or config.is_symlink():
        return []
    try:
        res = subprocess.run(
            ["git", "config", "--file", str(config), "--includes", "--show-origin", "--list",
             "-z"],
            capture_output=True, timeout=10, env=GIT_ENV, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    fields = res.stdout.split(b"\0")
    out = []
    for origin, record in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = record.decode(errors="replace").partition("\n")
        if is_exec_key(key, value):
            out.append((origin.decode(errors="replace").removeprefix("file:"), key.lower(), value))
    return out


def _config_keys(config: Path) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for origin, key, value in _config_entries(config):
        shown = key if Path(origin).name == config.name else f"{key} (from {origin})"
        keys.setdefault(shown, []).append(value)
    return keys


def _git_dir(workspace: Path, entry: str) -> Path | None:
    """The directory holding hooks and config for a found entry (a ``.git`` file is followed
    only when it points inside the workspace)."""
    path = workspace / entry
    if path.is_symlink():
        target = path.resolve()
        inside = target.is_relative_to(workspace.resolve()) and target.is_dir()
        return target if inside else None
    if path.is_dir():
        return path
    text = (_read_small(path) or b"").decode(errors="replace").strip()
    if text.startswith("gitdir:"):
        target = (path.parent / text.removeprefix("gitdir:").strip()).resolve()
        if target.is_relative_to(workspace.resolve()) and target.is_dir():
            return target
    return None


def repo_state(workspace: Path, entry: str) -> RepoState:
    state = RepoState()
    path = workspace / entry
    if path.is_symlink():
        state.pointers[".git symlink"] = os.readlink(path)
    elif path.is_file():
        state.pointers[".git file"] = (_read_small(path) or b"").decode(errors="replace").strip()
    gdir = _git_dir(workspace, entry)
    if gdir is None:
        return state
    for name in ("config", "config.worktree", "commondir", "hooks"):
        if (gdir / name).is_symlink():  # git follows these: the target may be anywhere
            state.pointers[f"{name} symlink"] = os.readlink(gdir / name)
    common = _read_small(gdir / "commondir")
    if common is not None:
        state.pointers["commondir"] = common.decode(errors="replace").strip()
    for cfg in ("config", "config.worktree"):
        for key, values in _config_keys(gdir / cfg).items():
            state.keys.setdefault(key if cfg == "config" else f"{cfg}:{key}", []).extend(values)
    hooks = gdir / "hooks"
    if hooks.is_dir() and not hooks.is_symlink():
        try:
            names = sorted(os.listdir(hooks))
        except OSError:
            names = []
        for name in names:
            if name.endswith(".sample") or name.endswith(DISABLED_SUFFIX):
                continue
            data = _read_small(hooks / name)
            if data is None:
                if (hooks / name).is_symlink():
                    state.hooks[name] = "symlink:" + os.readlink(hooks / name)
                continue
            state.hooks[name] = _sha(data)
    return state


def scan(workspace: Path) -> dict[str, RepoState]:
    return scan_full(workspace)[0]


def scan_full(workspace: Path) -> tuple[dict[str, RepoState], bool]:
    """Every repository's state, and whether the scan saw the whole workspace."""
    entries, complete = _find(workspace)
    return {entry: repo_state(workspace, entry) for entry in entries}, complete


# --- neutralising --------------------------------------------------------------------------


def _disable_hook(hooks: Path, name: str) -> str:
    try:
        dfd = os.open(hooks, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return f"could not disable: {exc.strerror}"
    try:
        target = name + DISABLED_SUFFIX
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target, dir_fd=dfd)
        os.rename(name, target, src_dir_fd=dfd, dst_dir_fd=dfd)
        st = os.stat(target, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            os.chmod(target, 0o644, dir_fd=dfd, follow_symlinks=False)
        return f"disabled: renamed to {target}"
    except OSError as exc:
        return f"could not disable: {exc.strerror}"
    finally:
        os.close(dfd)


def _unset_key(config: Path, key: str) -> str:
    if config.is_symlink():
        return _rename_aside(config)
    res = subprocess.run(
        ["git", "config", "--file", str(config), "--unset-all", key],
        capture_output=True, text=True, timeout=10, env=GIT_ENV, stdin=subprocess.DEVNULL,
    )
    if res.returncode in (0, 5):  # 5: the key is already gone
        return "removed from the config"
    return f"could not remove: {res.stderr.strip()[:200]}"


def _rename_aside(path: Path) -> str:
    target = path.with_name(path.name + DISABLED_SUFFIX)
    try:
        if target.exists() or target.is_symlink():
            if target.is_dir() and not target.is_symlink():
                import shutil

                shutil.rmtree(target)
            else:
                target.unlink()
        os.rename(path, target)
        return f"renamed to {target.name}"
    except OSError as exc:
        return f"could not rename: {exc.strerror}"


# --- the guard -----------------------------------------------------------------------------


def _record_path(store: Path, workspace: Path) -> Path:
    digest = hashlib.sha256(str(workspace).encode()).hexdigest()[:20]
    return store / "git-guard" / f"{digest}.json"


class GitGuard:
    """Baseline, check and neutralise the repositories of one workspace."""

    def __init__(self, workspace: Path, store: Path | None) -> None:
        self.workspace = Path(os.path.realpath(workspace))
        self.store = store
        self._lock = threading.Lock()
        self._record: dict[str, RepoState] | None = None
        self._checked_here = False  # a check of this process wrote the record

    def _load(self) -> dict[str, RepoState]:
        if self._record is not None:
            return self._record
        path = _record_path(self.store, self.workspace) if self.store else None
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
                self._record = {k: RepoState.from_dict(v) for k, v in data["repos"].items()}
                return self._record
            except (OSError, ValueError, KeyError):
                pass
        # First sight of this workspace: what is there now is the person's own.
        self._record = scan(self.workspace)
        self._save()
        return self._record

    def _save(self) -> None:
        if self.store is None or self._record is None:
            return
        path = _record_path(self.store, self.workspace)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "workspace": str(self.workspace),
            "repos": {k: v.to_dict() for k, v in self._record.items()},
        }))
        os.replace(tmp, path)

    def before(self) -> list[Finding]:
        """Before a command. The first time in this process the record comes from disk (or is
        taken now: first sight, the person's own state), and what changed since - between
        runs, by the person - is reported and accepted. Later in the process only our own
        commands ran in between (a sandboxed MCP server among them): checked like ``after``."""
        with self._lock:
            if self._checked_here:
                return self._check()
            self._checked_here = True
            record = self._load()
            now = scan(self.workspace)
            findings = []
            for entry, state in now.items():
                for what in _differences(record.get(entry) or RepoState(), state):
                    findings.append(Finding(_repo_of(entry), what, "changed since the last "
                                            "run, not by a command seen here; left in place"))
            if findings or now.keys() != record.keys():
                self._record = now
                self._save()
            return findings

    def approve(self) -> None:
        """Accept everything the repositories hold now."""
        with self._lock:
            self._record = scan(self.workspace)
            self._save()

    def after(self) -> list[Finding]:
        """After a command: neutralise and report what is new or changed since the record."""
        with self._lock:
            self._checked_here = True
            return self._check()

    def _check(self) -> list[Finding]:
        record = self._load()
        now, complete = scan_full(self.workspace)
        findings: list[Finding] = []
        if not complete:
            findings.append(Finding(".", f"the workspace is too big to check whole "
                                    f"({SCAN_LIMIT} entries or {MAX_REPOS} repositories); "
                                    "repositories beyond that were not checked", "reported"))
        for entry, state in now.items():
            repo = _repo_of(entry)
            before = record.get(entry)
            found = self._neutralise(entry, repo, before or RepoState(), state)
            if before is None:
                for f in found:
                    f.what = f"new repository: {f.what}"
            findings += found
        self._record = scan(self.workspace)
        self._save()
        return findings

    def _unset_everywhere(self, config: Path, key: str) -> str:
        """Remove ``key`` from the config and from every included file in the workspace."""
        origins = {Path(o) for o, k, _ in _config_entries(config) if k == key} or {config}
        actions = []
        for origin in sorted(origins):
            if not origin.is_absolute():
                origin = (config.parent / origin).resolve()
            if origin.resolve().is_relative_to(self.workspace):
                actions.append(_unset_key(origin, key))
            else:
                actions.append(f"left in {origin} (outside the workspace)")
        return "; ".join(dict.fromkeys(actions))

    def _neutralise(
        self, entry: str, repo: str, before: RepoState, now: RepoState
    ) -> list[Finding]:
        out: list[Finding] = []
        gdir = _git_dir(self.workspace, entry)
        for name, digest in now.hooks.items():
            if before.hooks.get(name) == digest:
                continue
            action = _disable_hook(gdir / "hooks", name) if gdir else "reported"
            out.append(Finding(repo, f"{'changed' if name in before.hooks else 'new'} hook "
                                     f"{name}", action))
        for key, values in now.keys.items():
            if before.keys.get(key) == values:
                continue
            cfg_name, _, plain = key.rpartition(":")
            plain = plain.split(" (from ")[0]
            config = (gdir / (cfg_name or "config")) if gdir else None
            action = self._unset_everywhere(config, plain) if config else "reported"
            shown = ", ".join(v[:80] for v in values)
            out.append(Finding(repo, f"config {plain} = {shown}", action))
        for name, text in now.pointers.items():
            if before.pointers.get(name) == text:
                continue
            if name in (".git file", ".git symlink"):
                action = _rename_aside(self.workspace / entry)
            elif gdir and name.removesuffix(" symlink") in (
                "config", "config.worktree", "commondir", "hooks"
            ):
                action = _rename_aside(gdir / name.removesuffix(" symlink"))
            else:
                action = "reported"
            out.append(Finding(repo, f"{name} -> {text[:120]}", action))
        return out


_guards: dict[tuple[str, str], GitGuard] = {}
_guards_lock = threading.Lock()


def guard_for(workspace: Path, store: Path | None = None) -> GitGuard:
    """One guard per (workspace, record folder) in this process."""
    if store is None:
        store = default_store()
    key = (os.path.realpath(workspace), str(store))
    with _guards_lock:
        if key not in _guards:
            _guards[key] = GitGuard(Path(key[0]), store)
        return _guards[key]


def default_store() -> Path:
    """The data folder of the settings in effect (out of the sandbox's reach)."""
    from openmanus_tui import paths
    from openmanus_tui.sandbox.state_guard import _settings_or_none

    settings = _settings_or_none()
    return settings.resolved_data_dir if settings is not None else paths.probable_data_dir()


def summary(findings: list[Finding], *, before: bool = False) -> str:
    lines = "; ".join(f.text() for f in findings)
    if before:
        return f"git protection: repositories changed since the last check: {lines}"
    return (
        f"git protection: a command changed what git would run on the host: {lines}. "
        "To keep a change, restore it and run `openmanus git approve WORKSPACE`."
    )
