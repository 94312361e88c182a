"""The Sandbox: runs one command at a time (or several concurrently) at a chosen isolation level.

Launch chain per level (as root; without root the ``nsenter`` step is left out)::

    L3  nsenter(mount ns, uid) -> prlimit -> bwrap (profile of SANDBOX.md) -> command
    L2  nsenter(mount ns, uid) -> prlimit -> unshare -U -n -p -f --kill-child -> command  + Landlock
    L1  nsenter(mount ns, uid) -> prlimit -> command                                    + Landlock
    L0  nsenter(mount ns, uid) -> prlimit -> command

Landlock is applied in ``preexec_fn`` with a ruleset built beforehand (two syscalls in the
child). The environment is built from scratch: nothing of ours, and no secret, is passed on.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from openmanus_tui.errors import SandboxError
from openmanus_tui.sandbox import cgroup, git_guard, landlock, state_guard
from openmanus_tui.sandbox.diskwatch import WorkspaceWatch
from openmanus_tui.sandbox.hostview import INNER_UID, SANDBOX_USER, HostView
from openmanus_tui.sandbox.output import CappedStream
from openmanus_tui.sandbox.ownership import OwnershipLedger, SetidSweep
from openmanus_tui.sandbox.probe import ProbeReport, probe
from openmanus_tui.sandbox.types import (
    BelowMinIsolation,
    ExecResult,
    IsolationLevel,
    SandboxLimits,
)

MiB = 1024 * 1024
INSIDE_WORKSPACE = "/workspace"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ETC_SYSTEM = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/localtime",
    "/etc/fonts",
    "/etc/mime.types",
    "/etc/papersize",
    "/etc/timezone",
)
ETC_NETWORK = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/protocols",
)
DEV_RW = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
PIPE_GRACE_S = 2.0  # after the command ends, how long leftover writers may hold our pipes
_CLONE_NEWNS = 0x00020000
UNSHARE_SIGKILL_MSG = b"unshare: sig"  # "signal handler reset failed" / "sigprocmask ..."
_libc = ctypes.CDLL(None, use_errno=True)


def _signal_reason(sig: int) -> str:
    return {signal.SIGXCPU: "cpu_limit", signal.SIGXFSZ: "file_size_limit"}.get(sig, "signal")


class Sandbox:
    """A workspace plus an isolation level; ``exec`` runs commands in it."""

    _inflight: ClassVar[int] = 0  # commands running in this process (all sandboxes share a uid)
    use_idmap: ClassVar[bool] = True  # tests turn it off to exercise the ownership ledger

    def __init__(
        self,
        workspace: Path,
        *,
        limits: SandboxLimits | None = None,
        network: bool = False,
        level: IsolationLevel | str | int | None = None,
        min_isolation: IsolationLevel | str | int = IsolationLevel.L0,
        state: list[state_guard.StateItem] | None = None,
        ids: tuple[int, int] | None = None,
    ) -> None:
        report = probe()
        min_level = IsolationLevel.parse(min_isolation)
        if level is not None:
            level = IsolationLevel.parse(level)
            if not report.available(level):
                raise SandboxError(
                    f"isolation level {level} is not available here: {report.unavailable[level]}",
                    hint="run `openmanus doctor` to see what this machine supports",
                    error_class="user",
                )
        chosen = report.level if level is None else level
        if chosen < min_level:
            why = report.unavailable.get(min_level, "")
            raise BelowMinIsolation(
                f"sandbox isolation {chosen} is below the required minimum {min_level}"
                + (f" ({min_level} is not available: {why})" if why else ""),
                hint="lower min_isolation or install what `openmanus doctor` suggests",
            )
        self.report: ProbeReport = report
        self.level: IsolationLevel = chosen
        self.limits = limits or SandboxLimits()
        self.network = network
        self.workspace = Path(workspace).expanduser().resolve()
        self._root = os.geteuid() == 0
        # Escape 1 of issue 12: refuse a workspace holding our own state; mask state files.
        to_mask = state_guard.check_workspace(
            self.workspace,
            state_guard.program_state() if state is None else state,
            can_mask=self._root or chosen == IsolationLevel.L3,
        )
        try:
            self.workspace.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SandboxError(
                f"cannot create workspace {self.workspace}: {exc}", error_class="user"
            ) from exc
        # ids: another unprivileged uid/gid (MCP servers use their own, see mcp_trust.py)
        self.uid, self.gid = ids if ids is not None and self._root else (report.uid, report.gid)
        # Escape 2: every .git is bound read-only (it cannot be renamed while mounted).
        self.protections: list[tuple[str, str]] = state_guard.mask_plan(
            self.workspace, to_mask
        ) + [
            (rel, "ro") for rel in git_guard.find_git_entries(self.workspace, mountable=True)
        ]
        self._view = HostView(
            self.workspace,
            self.uid,
            self.gid,
            use_mountns=self._root,
            protect=self.protections,
            idmap=Sandbox.use_idmap,
        )
        self._finalizer = weakref.finalize(self, self._view.close)
        self._ruleset_fd: int | None = None
        # Defect 10: never chown the person's files for good. Id-mapped bind when possible,
        # otherwise hand over before each command and give back after it. Which one is known
        # once the helper has mounted the workspace, at the first command (``_settle``); a
        # journal left by a process that died mid-command is given back now, as before.
        self._owners: OwnershipLedger | None = None
        self._settled = not self._root
        if self._root and self._journal().exists():
            self._owners = OwnershipLedger(self.workspace, self.uid, self.gid, self._journal())
        self._setid = SetidSweep(self.workspace) if self._root else None

    def _journal(self) -> Path:
        from openmanus_tui.sandbox.ownership import journal_path

        return journal_path(git_guard.default_store(), self.workspace)

    def _settle(self) -> None:
        """Start the helper if needed (blocking) and choose how ownership is handled."""
        if self._settled:
            return
        self._view.mount_namespace()  # raises SandboxError when the namespace cannot be set up
        if self._view.idmapped:
            self._owners = None  # a recovered journal was given back at construction
        elif self._owners is None:
            self._owners = OwnershipLedger(self.workspace, self.uid, self.gid, self._journal())
        self._settled = True

    async def start(self) -> None:
        """Get ready for a command without blocking the event loop on the helper's setup."""
        await self._view.start()
        self._settle()

    @property
    def ownership_mode(self) -> str:
        """How the sandbox uid gets write access to the workspace (for doctor and tests)."""
        if not self._root:
            return "same uid (not root)"
        self._settle()
        return "id-mapped mount" if self._view.idmapped else "handed over per command, restored"

    # -- public helpers ------------------------------------------------------------------
    def python_argv(self) -> list[str]:
        """How to start Python (numpy, pandas, matplotlib, httpx, openmanus_tui) inside."""
        return [self._view.python_bin]

    @property
    def bin_dir(self) -> str:
        """Directory of the tier-2 utility wrappers (on the sandbox PATH)."""
        return self._view.bin_dir

    def close(self) -> None:
        self._finalizer()
        if self._ruleset_fd is not None:
            os.close(self._ruleset_fd)
            self._ruleset_fd = None

    def prepare_workspace(self) -> None:
        """Kept for callers: ownership is now handled around each command (see ``exec``)."""

    def prepare_file(self, host_path: Path) -> None:
        """A file the host wrote needs nothing: the id-mapped bind (or the per-command
        hand-over) gives the sandbox access to it."""

    def _before_command(self) -> None:
        """Protect repositories created since the last command; hand files over if needed."""
        self._settle()
        new = [
            (rel, "ro")
            for rel in git_guard.find_git_entries(self.workspace, mountable=True)
            if (rel, "ro") not in self.protections
        ]
        if new:
            self.protections += new
            if self._root:
                self._view.protect(new)
        if self._owners is not None:
            self._owners.hand_over()

    def _after_command(self) -> None:
        if self._owners is not None:
            self._owners.give_back()
        if self._setid is not None:
            self._setid.sweep()

    # -- building the command line ----------------------------------------------------------
    def _env(self) -> dict[str, str]:
        inside = self.level == IsolationLevel.L3
        home = INSIDE_WORKSPACE if inside else self._view.workspace_path
        tmp = "/tmp" if inside else self._view.tmp_dir
        env = {
            "PATH": f"{self._view.bin_dir}:{Path(self._view.python_bin).parent}:{SYSTEM_PATH}",
            "HOME": home,
            "PWD": home,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "USER": SANDBOX_USER,
            "LOGNAME": SANDBOX_USER,
            "SHELL": "/bin/sh",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{tmp}/matplotlib",
            "XDG_CACHE_HOME": f"{tmp}/.cache",
            "PYTHONPATH": self._view.lib_dir,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OPENMANUS_SANDBOX_LEVEL": str(self.level),
            "OPENMANUS_NETWORK": "1" if self.network else "0",
        }
        if self._view.needs_ld_library_path:
            env["LD_LIBRARY_PATH"] = f"{self._view.python_dir}/lib"
        return env

    def _rlimits(self) -> list[str]:
        lim = self.limits
        return [
            "prlimit",
            f"--cpu={lim.cpu_seconds}",
            f"--as={lim.memory_mb * MiB}",
            f"--nproc={lim.max_processes}",
            f"--fsize={_fsize_mb(lim) * MiB}",
            f"--nofile={lim.max_open_files}",
            "--core=0",
            "--",
        ]

    def _enter(self) -> list[str]:
        """L3: nsenter into the helper's mount namespace as the sandbox uid (no preexec_fn)."""
        ns = self._view.mount_namespace()
        if ns is None:
            return []
        return ["nsenter", f"--mount={ns}", f"--setuid={self.uid}", f"--setgid={self.gid}", "--"]

    def _child_setup(self, ns_fd: int | None) -> Callable[[], None] | None:
        """Below L3: ``preexec_fn`` entering the mount namespace, dropping root, then Landlock.

        Done in the child because Landlock would refuse ``nsenter`` the namespace file, and
        setns must precede the uid change. Only thin syscall wrappers run here.
        """
        ruleset = self._ruleset() if self.level >= IsolationLevel.L1 else None
        if ns_fd is None and ruleset is None:
            return None
        uid, gid, wd = self.uid, self.gid, self._view.workspace_path

        def child() -> None:
            if ns_fd is not None:
                if _libc.setns(ns_fd, _CLONE_NEWNS) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                os.chdir(wd)  # setns reset the cwd to the namespace root
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            if ruleset is not None:
                landlock.restrict_child(ruleset)

        return child

    def _bwrap(self, argv: list[str], env: dict[str, str]) -> list[str]:
        args = [
            "bwrap",
            "--die-with-parent",
            "--new-session",
            "--unshare-user",
            "--uid",
            str(INNER_UID),
            "--gid",
            str(INNER_UID),
            "--disable-userns",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
        ]
        if not self.network:
            args.append("--unshare-net")
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = f"/{top}"
            if os.path.islink(host):
                args += ["--symlink", os.readlink(host), host]
            elif os.path.isdir(host):
                args += ["--ro-bind", host, host]
        for path in ETC_SYSTEM + (ETC_NETWORK if self.network else ()):
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        root = str(self._view.root)
        args += [
            "--symlink",
            f"{root}/etc/passwd",
            "/etc/passwd",
            "--symlink",
            f"{root}/etc/group",
            "/etc/group",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(self.limits.tmp_size_mb * MiB),
            "--tmpfs",
            "/tmp",
            "--ro-bind",
            root,
            root,
        ]
        for path in self._view.extra_ro_binds:
            args += ["--ro-bind", path, path]
        ws = self._view.workspace_path
        args += ["--bind", ws, INSIDE_WORKSPACE]
        if not self._root:  # as root the helper namespace holds these mounts already
            mask = f"{root}/mask"
            for rel, how in self.protections:
                if not self._is_real(rel):
                    continue
                src = f"{ws}/{rel}"
                if how == "mask":
                    src = f"{mask}/dir" if os.path.isdir(src) else f"{mask}/file"
                bind = "--bind" if how == "pin" else "--ro-bind"
                args += [bind, src, f"{INSIDE_WORKSPACE}/{rel}"]
        args += ["--remount-ro", "/", "--chdir", INSIDE_WORKSPACE, "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        return [*args, "--cap-drop", "ALL", "--", *argv]

    def _is_real(self, rel: str) -> bool:
        """The entry and every parent inside the workspace exist and none is a symlink."""
        path = self.workspace
        for part in Path(rel).parts:
            path = path / part
            if not path.exists() or path.is_symlink():
                return False
        return True

    def _ruleset(self) -> int:
        if self._ruleset_fd is None:
            view = self._view
            read_only = [
                "/usr",
                "/bin",
                "/sbin",
                "/lib",
                "/lib32",
                "/lib64",
                "/etc",
                "/proc",
                "/sys",
                "/dev",
                str(view.root),
                *view.extra_ro_binds,
            ]
            read_write = [str(self.workspace), view.tmp_dir, *DEV_RW]
            if self.level == IsolationLevel.L2:
                # unshare writes /proc/self/{uid_map,setgroups}; /proc/sys stays root's (DAC)
                read_only.remove("/proc")
                read_write.append("/proc")
            self._ruleset_fd = landlock.build_ruleset(
                read_only,
                read_write,
                block_tcp=not self.network,
                abi=landlock.abi_version(),
            )
        return self._ruleset_fd

    def _launch(self, argv: list[str], ns_fd: int | None) -> tuple[list[str], dict[str, Any]]:
        env = self._env()
        kwargs: dict[str, Any] = {"env": env}
        if not self._root:
            kwargs["cwd"] = str(self.workspace)
        if self.level == IsolationLevel.L3:
            kwargs["env"] = {"PATH": SYSTEM_PATH}  # bwrap's own pid 1 sees only this
            return [*self._enter(), *self._rlimits(), *self._bwrap(argv, env)], kwargs
        cmd = self._rlimits()
        if self.level == IsolationLevel.L2:
            cmd += ["unshare", "--user", "--map-current-user", "--pid", "--fork", "--kill-child"]
            if not self.network:
                cmd.append("--net")
            cmd.append("--")
        setup = self._child_setup(ns_fd)
        if setup is not None:
            kwargs["preexec_fn"] = setup
        return [*cmd, *argv], kwargs

    def server_argv(
        self, argv: list[str], extra_env: dict[str, str] | None = None
    ) -> tuple[list[str], dict[str, str], str]:
        """Start a long-lived process (an MCP stdio server) here without ``preexec_fn``:
        returns the launcher argv, its environment and the level it really gets.

        L3 is the full profile. Below it Landlock cannot be applied (it needs the child
        hook), so the process gets the helper mount namespace, the unprivileged uid and the
        rlimits, plus user/net/pid namespaces at L2. No CPU limit: a server lives long.
        """
        env = {**self._env(), **(extra_env or {})}
        limits = [a for a in self._rlimits() if not a.startswith("--cpu=")]
        if self.level == IsolationLevel.L3:
            return [*self._enter(), *limits, *self._bwrap(argv, env)], {"PATH": SYSTEM_PATH}, "L3"
        chain: list[str] = []
        if ns := self._view.mount_namespace():
            chain = ["nsenter", f"--mount={ns}", f"--setuid={self.uid}", f"--setgid={self.gid}",
                     f"--wd={self._view.workspace_path}", "--"]
        else:
            chain = ["env", "-C", str(self.workspace)]
        chain += limits
        level = "L0"
        if self.level == IsolationLevel.L2:
            chain += ["unshare", "--user", "--map-current-user", "--pid", "--fork", "--kill-child"]
            chain += [*([] if self.network else ["--net"]), "--"]
            level = "L2 without Landlock"
        return [*chain, *argv], env, level

    # -- running ---------------------------------------------------------------------------
    async def exec(
        self,
        command: list[str] | str,
        *,
        timeout: float = 60,
        on_output: Callable[[str, str], None] | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` (a string goes to ``/bin/sh -c``); a failing command is no exception."""
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else [str(a) for a in command]
        if not argv or not argv[0]:
            raise SandboxError("empty command", error_class="user")
        await self.start()
        ns_fd = None
        if self.level < IsolationLevel.L3 and (ns := self._view.mount_namespace()):
            ns_fd = os.open(ns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            await asyncio.to_thread(self._before_command)
            try:
                full, kwargs = self._launch(argv, ns_fd)
                return await self._run(full, kwargs, timeout, on_output, stdin)
            finally:
                await asyncio.shield(asyncio.to_thread(self._after_command))
        finally:
            if ns_fd is not None:
                os.close(ns_fd)

    async def _run(
        self,
        full: list[str],
        kwargs: dict[str, Any],
        timeout: float,
        on_output: Callable[[str, str], None] | None,
        stdin: bytes | None,
    ) -> ExecResult:
        out = CappedStream("stdout", self.limits.output_cap_bytes, on_output)
        err = CappedStream("stderr", self.limits.output_cap_bytes, on_output)
        flood = asyncio.Event()
        cg = self._command_cgroup()
        if cg is not None:  # behind the gate until it is in the cgroup (sandbox/cgroup.py)
            full = ["/bin/sh", "-c", cgroup.GATE_SCRIPT, "omgate", *full]
            stdin = cgroup.GATE_LINE + (stdin or b"")
        disk = WorkspaceWatch(self.workspace, self.limits.workspace_write_mb)
        await disk.start()
        start = time.perf_counter()
        try:
            for attempt in (1, 2):
                proc, exited = await _spawn(
                    full,
                    stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,
                    **kwargs,
                )
                if cg is None:
                    break
                try:
                    cg.attach(proc.pid)
                    break
                except ProcessLookupError:
                    # the waiting gate was killed from outside (a uid-wide sweep of an older
                    # version running as the same uid): nothing of the command ran; once more
                    await proc.wait()
                    if attempt == 2:
                        raise
        except (OSError, subprocess.SubprocessError) as exc:
            if cg is not None:
                cg.remove()
            raise SandboxError(f"could not start the sandboxed command: {exc}") from exc
        Sandbox._inflight += 1
        disk.watch()

        async def pump(reader: asyncio.StreamReader | None, cap: CappedStream) -> None:
            if reader is None:
                return
            while chunk := await reader.read(65536):
                cap.feed(chunk)
                if out.total + err.total > self.limits.output_kill_bytes:
                    flood.set()

        async def feed_stdin() -> None:
            if proc.stdin is None or stdin is None:
                return
            try:
                proc.stdin.write(stdin)
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

        pumps = asyncio.gather(pump(proc.stdout, out), pump(proc.stderr, err), feed_stdin())
        # the main process's exit, not proc.wait(): on Python 3.11 that also waits for the
        # pipes, which a background job (`sleep 30 & echo x`) holds open until the timeout
        waiter = exited
        flooded = asyncio.ensure_future(flood.wait())
        filled = asyncio.ensure_future(disk.tripped.wait())
        killed: str | None = None
        try:
            done, _ = await asyncio.wait(
                {waiter, flooded, filled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter not in done:
                killed = (
                    "output_limit"
                    if flood.is_set()
                    else "disk_limit"
                    if disk.tripped.is_set()
                    else "timeout"
                )
                self._kill_tree(proc.pid)
                if cg is not None:
                    await asyncio.to_thread(cg.kill_all)
                await asyncio.wait_for(asyncio.shield(waiter), 10)
            # leftovers (L0/L1 have no PID namespace to do it); with a cgroup, its members
            # are exactly the command's processes, so no uid-wide scan (which would also hit
            # commands of other openmanus processes running as the same uid)
            self._sweep(proc.pid, by_uid=cg is None)
            if cg is not None:  # everything the command started, setsid'd daemons included
                await asyncio.to_thread(cg.kill_all)
            try:
                await asyncio.wait_for(asyncio.shield(pumps), PIPE_GRACE_S)
            except TimeoutError:
                pumps.cancel()
        except BaseException:
            self._kill_tree(proc.pid)
            if cg is not None:
                cg.kill_all()
            pumps.cancel()
            raise
        finally:
            flooded.cancel()
            filled.cancel()
            Sandbox._inflight -= 1
            await disk.finish()
            if cg is not None:
                cg.collect()
                await asyncio.to_thread(cg.remove)
        out.finish()
        err.finish()
        result = self._result(proc.returncode, killed, out, err, start)
        if cg is not None:
            _cgroup_notes(result, cg)
        if killed == "disk_limit":
            result.notes.append("killed: " + disk.note())
        elif disk.enabled and disk.grown > disk.budget:
            result.notes.append(disk.note())
        return result

    def _command_cgroup(self) -> cgroup.CommandCgroup | None:
        """A fresh cgroup for one command when cgroups are usable here (see ``doctor``)."""
        sup = cgroup.support()
        if not sup.ok:
            return None
        lim = self.limits
        try:
            return cgroup.CommandCgroup(sup, memory_mb=lim.memory_total_mb, max_pids=lim.max_pids)
        except OSError as exc:
            raise SandboxError(f"could not create the command's cgroup: {exc}") from exc

    def _result(
        self, rc: int | None, killed: str | None, out: CappedStream, err: CappedStream, start: float
    ) -> ExecResult:
        sig: int | None = None
        notes: list[str] = []
        if (
            self.level == IsolationLevel.L2
            and rc == 1
            and UNSHARE_SIGKILL_MSG in bytes(err.tail[-200:] or err.head[-200:])
        ):
            # unshare cannot re-raise SIGKILL on itself and exits 1 with this message
            sig = signal.SIGKILL
        elif rc is not None and rc < 0:
            sig = -rc
        elif (
            rc is not None
            and self.level >= IsolationLevel.L2
            and rc > 128
            and rc - 128 in (signal.SIGXCPU, signal.SIGXFSZ, signal.SIGKILL)
        ):
            sig = rc - 128  # bwrap / unshare report a signalled child as 128 + signal
        duration_s = time.perf_counter() - start
        if killed is None and sig is not None:
            killed = _signal_reason(sig)
            # with soft = hard the kernel sends SIGKILL at the CPU limit; a single thread
            # cannot burn more CPU than wall time, so a kill after that long is the limit
            if sig == signal.SIGKILL and duration_s >= self.limits.cpu_seconds:
                killed = "cpu_limit"
        if killed == "timeout":
            notes.append("killed: wall-clock timeout (the whole process tree)")
        elif killed == "output_limit":
            notes.append(f"killed: more than {self.limits.output_kill_bytes} bytes of output")
        elif killed == "cpu_limit":
            notes.append(f"killed: CPU limit of {self.limits.cpu_seconds} s")
        elif killed == "signal":
            notes.append(f"killed by signal {sig}")
        elif killed == "file_size_limit":
            notes.append(f"a file reached the size limit of {_fsize_mb(self.limits)} MiB")
        exit_code: int | None = None
        if killed not in ("timeout", "output_limit", "disk_limit") and rc is not None:
            exit_code = 128 + sig if sig is not None and rc in (-sig, 1) else rc
        cut = out.cut_bytes + err.cut_bytes
        return ExecResult(
            exit_code=exit_code,
            stdout=out.text(),
            stderr=err.text(),
            timed_out=killed == "timeout",
            truncated=cut > 0 or killed == "output_limit",
            cut_bytes=cut,
            duration_ms=duration_s * 1000,
            level=self.level,
            killed_reason=killed,
            signal=sig,
            notes=notes,
        )

    # -- killing ---------------------------------------------------------------------------
    def _kill_tree(self, pid: int) -> None:
        """SIGKILL the launcher's process group and every descendant still attached to it.

        At L3/L2 the launcher's death takes the PID namespace (and so everything) with it.
        """
        victims = _descendants(pid)
        for target in (pid, *victims):
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _sweep(self, pid: int, *, by_uid: bool = True) -> None:
        """After a command: kill what it left running (daemons, ``setsid`` children)."""
        if self.level >= IsolationLevel.L2:
            return
        self._kill_tree(pid)
        # orphans re-parented to init are found by uid; only when no other command is running
        if by_uid and self._root and Sandbox._inflight <= 1:
            for other in _pids_of_uid(self.uid):
                try:
                    os.kill(other, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def _fsize_mb(lim: SandboxLimits) -> int:
    """RLIMIT_FSIZE: no single file may outgrow the workspace write budget either."""
    if lim.workspace_write_mb > 0:
        return min(lim.max_file_mb, lim.workspace_write_mb)
    return lim.max_file_mb


def _cgroup_notes(result: ExecResult, cg: cgroup.CommandCgroup) -> None:
    """Say when the command's cgroup bounds acted (an OOM kill, refused forks)."""
    if cg.oom_kills:
        if result.killed_reason in (None, "signal") and result.exit_code != 0:
            result.killed_reason = "memory_limit"
            result.notes = [n for n in result.notes if not n.startswith("killed by signal")]
        result.notes.append(
            f"memory bound reached: the command's processes together may use {cg.memory_mb} "
            f"MiB; {cg.oom_kills} process(es) were killed for it"
        )
    if refused := cg.pids_refused:
        result.notes.append(
            f"the process limit of {cg.max_pids} for the command was reached "
            f"({refused} fork(s) refused)"
        )


async def _spawn(
    full: list[str], **kwargs: Any
) -> tuple[asyncio.subprocess.Process, asyncio.Future[None]]:
    """``create_subprocess_exec`` plus a future set when the main process exits."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
        def process_exited(self) -> None:
            super().process_exited()
            if not exited.done():
                exited.set_result(None)

    transport, protocol = await loop.subprocess_exec(
        lambda: _Protocol(limit=2**16, loop=loop), *full, **kwargs
    )
    return asyncio.subprocess.Process(transport, protocol, loop), exited


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, real uid) from /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                ppid = uid = -1
                for line in fh:
                    if line.startswith(b"PPid:"):
                        ppid = int(line.split()[1])
                    elif line.startswith(b"Uid:"):
                        uid = int(line.split()[1])
                        break
            table[int(entry.name)] = (ppid, uid)
        except (OSError, ValueError, IndexError):
            continue
    return table


def _descendants(pid: int) -> list[int]:
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(child)
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _pids_of_uid(uid: int) -> list[int]:
    return [pid for pid, (_, owner) in _proc_table().items() if owner == uid]
