"""What the sandbox uid sees of the host: a support directory and (as root) a mount namespace.

An unprivileged uid cannot traverse ``/root`` (mode 700), so an interpreter under
``/root/.pyenv`` or a workspace under ``/root`` is out of its reach, and bubblewrap (which
``realpath``s every bind source as that uid) cannot bind them either. As root we therefore keep
one helper process in a private mount namespace in which the interpreter, the venv's
site-packages, the ``openmanus_tui`` package and the workspace are bind-mounted under the
support directory; every command is started with ``nsenter`` into that namespace. The host's
mount table is never touched, and the mounts vanish with the helper.

Support directory layout (the same path outside and inside bubblewrap)::

    bin/        manus-* wrapper scripts (tier-2 utilities), on the sandbox PATH
    etc/        synthetic passwd and group
    python/     the base interpreter (sys.base_prefix), read-only
    venv/       a synthetic venv: pyvenv.cfg, bin/python3 -> ../../python/bin/pythonX.Y,
                lib/pythonX.Y/site-packages = the app venv's site-packages, read-only
    lib/openmanus_tui   the package itself, read-only (PYTHONPATH=lib)
    workspace/  the workspace (root mode only)
    tmp/        TMPDIR for levels without a private /tmp
"""

from __future__ import annotations

import json
import os
import select
import shutil
import stat
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import openmanus_tui
from openmanus_tui.errors import SandboxError
from openmanus_tui.sandbox import stale

UTILITIES = {
    "manus-md-to-pdf": "md_to_pdf",
    "manus-speech-to-text": "speech_to_text",
    "manus-mcp-cli": "mcp_cli",
}
SANDBOX_USER = "sandbox"
INNER_UID = 1000
MINIMAL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

_swept = False  # stale support folders are swept once per process

_HELPER_SCRIPT = r"""
set -e
py=$1; mounts=$2; plan=$3
shift 3
while [ $# -ge 3 ]; do
  mount --bind "$1" "$2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi
  shift 3
done
"$py" -I -S "$mounts" setup "$plan"
echo ready
exec sleep infinity
"""
MOUNTS_SCRIPT = str(Path(__file__).with_name("mounts.py"))


def reachable_by_others(path: str) -> bool:
    """True when every ancestor of ``path`` is searchable by "other" (mode o+x)."""
    p = Path(path).resolve()
    for part in [p, *p.parents]:
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


class HostView:
    """Owns the support directory and (as root) the helper mount namespace."""

    def __init__(
        self,
        workspace: Path,
        uid: int,
        gid: int,
        *,
        use_mountns: bool,
        protect: list[tuple[str, str]] | None = None,
        idmap: bool = True,
    ):
        self.workspace = workspace
        self.uid, self.gid = uid, gid
        self.use_mountns = use_mountns
        self._lock_fd: int | None = None
        # (relative path, "ro" | "mask" | "pin") applied in the helper namespace (mounts.py)
        self.protected: list[tuple[str, str]] = list(protect or [])
        self.want_idmap = idmap
        self.idmapped = False  # the workspace bind maps the owner's ids to the sandbox's
        self.protect_failures: list[str] = []
        self.pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
        self.base_prefix = os.path.realpath(sys.base_prefix)
        self.in_venv = os.path.realpath(sys.prefix) != self.base_prefix
        self.site_packages = os.path.realpath(_site_packages())
        self.package_dir = os.path.realpath(os.path.dirname(openmanus_tui.__file__))
        self.root = self._make_root()
        self.extra_ro_binds: list[str] = []  # real paths bwrap binds at the same path
        self.notes: list[str] = []
        self._helper: subprocess.Popen[bytes] | None = None
        self._ready = False  # the live helper reported "ready" (``_await_helper``)
        self._ready_lock = threading.Lock()  # one reader of its two lines at a time
        self._populate()
        # The helper is started by the first command (``start`` / ``mount_namespace``), not
        # here: waiting for it took ~60 ms per session, paid by every run just to name the
        # isolation level in the prompt, which the probe already knows (bench/step_overhead).

    # -- layout -------------------------------------------------------------------------
    def _make_root(self) -> Path:
        parent = None
        if os.geteuid() == 0 and os.access("/run", os.W_OK):
            parent = Path("/run/openmanus-sandbox")
            parent.mkdir(mode=0o755, exist_ok=True)
        elif os.environ.get("XDG_RUNTIME_DIR"):
            parent = Path(os.environ["XDG_RUNTIME_DIR"])
        global _swept
        if not _swept:  # folders left by killed or crashed processes (sandbox/stale.py)
            _swept = True
            stale.sweep(parent)
        root, self._lock_fd = stale.make_root(parent)  # locked while we use it
        os.chmod(root, 0o755)
        return root

    @property
    def python_dir(self) -> str:
        return str(self.root / "python")

    @property
    def python_bin(self) -> str:
        if self.in_venv:
            return str(self.root / "venv" / "bin" / "python3")
        return str(self.root / "python" / "bin" / self.pyver)

    @property
    def lib_dir(self) -> str:
        return str(self.root / "lib")

    @property
    def bin_dir(self) -> str:
        return str(self.root / "bin")

    @property
    def tmp_dir(self) -> str:
        return str(self.root / "tmp")

    @property
    def workspace_path(self) -> str:
        """Where the sandbox uid reaches the workspace (outside bubblewrap)."""
        return str(self.root / "workspace") if self.use_mountns else str(self.workspace)

    @property
    def needs_ld_library_path(self) -> bool:
        # a shared build carries an absolute RUNPATH to the original prefix
        return bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))

    def _populate(self) -> None:
        r = self.root
        site_rel = Path("venv") / "lib" / self.pyver / "site-packages"
        for d in ("bin", "etc", "lib", "tmp", "venv/bin", str(site_rel.parent)):
            (r / d).mkdir(parents=True, exist_ok=True)
        mounts = {
            "python": self.base_prefix,
            "lib/openmanus_tui": self.package_dir,
        }
        if self.in_venv:
            mounts[str(site_rel)] = self.site_packages
        for rel, real in mounts.items():
            if self.use_mountns:
                (r / rel).mkdir(parents=True, exist_ok=True)
            else:
                os.symlink(real, r / rel)
                if reachable_by_others(real) or os.geteuid() != 0:
                    self.extra_ro_binds.append(real)
                else:
                    self.notes.append(f"{real} is not reachable by the sandbox user")
        if self.use_mountns:
            (r / "workspace").mkdir()
        if self.in_venv:
            (r / "venv" / "pyvenv.cfg").write_text(
                f"home = {r / 'python' / 'bin'}\ninclude-system-site-packages = false\n"
                f"version = {sys.version_info.major}.{sys.version_info.minor}."
                f"{sys.version_info.micro}\n"
            )
            for name in ("python3", "python", self.pyver):
                os.symlink(str(r / "python" / "bin" / self.pyver), r / "venv" / "bin" / name)
        (r / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"{SANDBOX_USER}:x:{INNER_UID}:{INNER_UID}:sandbox:/workspace:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        (r / "etc" / "group").write_text(
            f"root:x:0:\n{SANDBOX_USER}:x:{INNER_UID}:\nnogroup:x:65534:\n"
        )
        (r / "mask" / "dir").mkdir(parents=True, exist_ok=True)
        (r / "mask" / "file").write_bytes(b"")
        for script, module in UTILITIES.items():
            path = r / "bin" / script
            path.write_text(
                f'#!/bin/sh\nexec "{self.python_bin}" -m openmanus_tui.utilities.{module} "$@"\n'
            )
            path.chmod(0o755)
        for dirpath, dirnames, filenames in os.walk(r):
            for name in dirnames:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)
            for name in filenames:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p):
                    os.chmod(p, os.stat(p).st_mode | 0o444)
        os.chmod(r / "mask" / "dir", 0o555)
        os.chmod(r / "mask" / "file", 0o444)
        tmp = r / "tmp"
        os.chmod(tmp, 0o700)
        if os.geteuid() == 0:
            os.chown(tmp, self.uid, self.gid)

    # -- helper mount namespace ------------------------------------------------------------
    def _mount_args(self) -> list[str]:
        r = self.root
        args = [
            self.base_prefix,
            str(r / "python"),
            "ro",
            self.package_dir,
            str(r / "lib" / "openmanus_tui"),
            "ro",
        ]
        if self.in_venv:
            site = r / "venv" / "lib" / self.pyver / "site-packages"
            args += [self.site_packages, str(site), "ro"]
        return args

    def _plan(self, protect: list[tuple[str, str]]) -> str:
        st = os.stat(self.workspace)
        return json.dumps(
            {
                "workspace": str(self.workspace),
                "view": str(self.root / "workspace"),
                "idmap": [st.st_uid, st.st_gid, self.uid, self.gid] if self.want_idmap else None,
                "mask_root": str(self.root / "mask"),
                "protect": [{"rel": rel, "how": how} for rel, how in protect],
            }
        )

    def _mount_result(self, line: bytes, *, setup: bool = False) -> None:
        try:
            out = json.loads(line)
        except ValueError:
            raise SandboxError(f"sandbox mount helper: {line[:300]!r}") from None
        if "error" in out:
            raise SandboxError(f"could not mount the workspace: {out['error']}")
        if setup:
            self.idmapped = bool(out["idmap"])
        self.protect_failures += out.get("failed", [])

    def protect(self, items: list[tuple[str, str]]) -> None:
        """Add protections to the live helper namespace (new repositories, for instance)."""
        new = [item for item in items if item not in self.protected]
        if not new:
            return
        self.protected += new
        if not self.use_mountns or self._helper is None or self._helper.poll() is not None:
            return  # applied when the helper (re)starts
        self._await_helper()  # spawned with a plan without ``new``: let it finish first
        nsenter = shutil.which("nsenter") or "nsenter"
        res = subprocess.run(
            [nsenter, f"--mount=/proc/{self._helper.pid}/ns/mnt", "--", sys.executable, "-I",
             "-S", MOUNTS_SCRIPT, "protect", self._plan(new)],
            capture_output=True, timeout=30, env=MINIMAL_ENV, stdin=subprocess.DEVNULL,
        )
        lines = res.stdout.strip().splitlines()
        if res.returncode != 0 or not lines:
            self.protect_failures.append(res.stderr.decode(errors="replace").strip()[:300])
            return
        self._mount_result(lines[-1])

    @property
    def started(self) -> bool:
        """No helper is needed, or a live one has reported ready."""
        return not self.use_mountns or (
            self._helper is not None and self._ready and self._helper.poll() is None
        )

    async def start(self) -> None:
        """Start the helper (when needed) without blocking the event loop for its setup.

        The process is spawned from the calling thread, the loop's: its PDEATHSIG is tied to
        the thread that created it, and a worker thread may exit long before we do. Only the
        wait for its two lines runs in a worker thread."""
        if self.started:
            return
        import asyncio

        self._spawn_helper()
        await asyncio.to_thread(self._await_helper)

    def _start_helper(self) -> None:
        self._spawn_helper()
        self._await_helper()

    def _spawn_helper(self) -> None:
        if self._helper is not None and self._helper.poll() is None:
            return  # alive: ready, or spawned by a start still reading its lines
        setpriv, unshare = shutil.which("setpriv"), shutil.which("unshare")
        if not setpriv or not unshare:
            raise SandboxError("setpriv/unshare (util-linux) are needed to run as root")
        # PDEATHSIG: the helper (and so the namespace) goes away if we die
        self._helper = subprocess.Popen(
            [
                setpriv,
                "--pdeathsig",
                "KILL",
                "--",
                unshare,
                "--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
                _HELPER_SCRIPT,
                "sh",
                sys.executable,
                MOUNTS_SCRIPT,
                self._plan(self.protected),
                *self._mount_args(),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=MINIMAL_ENV,
            start_new_session=True,
            # Unbuffered: a buffered readline could take both lines off the pipe at once, and
            # select() on the empty pipe would then wait out its timeout for a line already read.
            bufsize=0,
        )
        self._ready = False

    def _await_helper(self) -> None:
        """Read the spawned helper's mount report and "ready"; kill it and raise on failure."""
        with self._ready_lock:
            if not self._ready:
                self._read_ready()

    def _read_ready(self) -> None:
        assert self._helper is not None and self._helper.stdout is not None
        line = b""
        failure = ""
        for _ in range(2):  # the mount helper's JSON line, then "ready"
            ready, _, _ = select.select([self._helper.stdout], [], [], 30)
            line = self._helper.stdout.readline() if ready else b""
            if line.strip() == b"ready":
                break
            if line.startswith(b"{"):
                try:
                    self._mount_result(line, setup=True)
                except SandboxError as exc:
                    failure = str(exc)
                    break
        if line.strip() != b"ready":
            self._helper.kill()
            err = self._helper.stderr.read().decode(errors="replace") if self._helper.stderr else ""
            code = self._helper.wait()
            why = failure or err.strip() or (
                f"the helper exited with {code}" if line == b"" else f"unexpected {line[:200]!r}"
            )
            raise SandboxError(f"could not set up the sandbox mount namespace: {why}")
        self._ready = True

    def mount_namespace(self) -> str | None:
        """``/proc/PID/ns/mnt`` of a live helper (restarted if its creating thread died)."""
        if not self.use_mountns:
            return None
        if not self.started:
            self._start_helper()
        assert self._helper is not None
        return f"/proc/{self._helper.pid}/ns/mnt"

    def close(self) -> None:
        if self._helper is not None and self._helper.poll() is None:
            self._helper.kill()
            self._helper.wait()
        # the mountpoints are empty on the host; symlinks are removed, never followed
        shutil.rmtree(self.root, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
