"""The attack matrix of SANDBOX.md, run against every isolation level this machine provides.

Each attack has an expected outcome per level (True = blocked). Levels the machine cannot
provide are skipped with the probe's reason. Every test is bounded by a timeout and rlimits.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from openmanus_tui.sandbox import IsolationLevel, Sandbox, SandboxLimits, landlock, probe

L0, L1, L2, L3 = IsolationLevel.L0, IsolationLevel.L1, IsolationLevel.L2, IsolationLevel.L3
ABI = landlock.abi_version()
ROOT = os.geteuid() == 0

# attack -> levels at which it must be blocked (the rest are documented weaknesses)
EXPECT_BLOCKED: dict[str, set[IsolationLevel]] = {
    "read_shadow": {L0, L1, L2, L3} if ROOT else {L1, L2, L3},
    "list_root": {L0, L1, L2, L3},
    "write_outside": {L1, L2, L3},
    "write_usr": {L0, L1, L2, L3},
    "tcp": {L2, L3} | ({L1} if ABI >= 4 else set()),
    "udp": {L2, L3},
    "abstract_socket": {L2, L3} | ({L1} if ABI >= 6 else set()),
    "signal_host": {L2, L3} | ({L1} if ABI >= 6 else set()),
    "fill_tmp": {L1, L2, L3},
    "nested_userns": {L3},
}

LEVELS = [
    pytest.param(lvl, id=str(lvl),
                 marks=pytest.mark.skipif(not probe().available(lvl),
                                          reason=f"{lvl} not available: "
                                                 f"{probe().unavailable.get(lvl, '')}"))
    for lvl in sorted(IsolationLevel, reverse=True)
]

pytestmark = pytest.mark.parametrize("level", LEVELS)


def make(tmp_path: Path, level: IsolationLevel, **limits: int) -> Sandbox:
    base = dict(cpu_seconds=20, memory_mb=1024, max_processes=128, max_file_mb=64,
                tmp_size_mb=8, output_cap_bytes=16 * 1024, output_kill_bytes=1024 * 1024)
    base.update(limits)
    sb = Sandbox(tmp_path / "ws", level=level, limits=SandboxLimits(**base))
    return sb


@pytest.fixture
def outside_dir():
    """A world-writable directory outside the workspace, reachable by any uid."""
    path = Path(tempfile.mkdtemp(prefix="omx-outside-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def py(sb: Sandbox, code: str) -> list[str]:
    return [*sb.python_argv(), "-c", code]


async def test_read_shadow_and_list_root(tmp_path, level):
    sb = make(tmp_path, level)
    res = await sb.exec("cat /etc/shadow; echo; ls -A /root", timeout=20)
    if level in EXPECT_BLOCKED["read_shadow"]:
        assert "root:" not in res.stdout, res.stdout
    host_entries = set(os.listdir("/root")) if ROOT else set()
    listed = set(res.stdout.split())
    # the interpreter may be bound under /root's real path only in symlink mode; real
    # entries of the host's /root must not show up
    assert not (host_entries - {".pyenv"}) & listed, listed
    sb.close()


async def test_write_outside_workspace_and_usr(tmp_path, level, outside_dir):
    sb = make(tmp_path, level)
    target = outside_dir / "pwned"
    usr_target = Path(f"/usr/omx-pwned-{secrets.token_hex(4)}")
    res = await sb.exec(f"echo pwned > {target}; touch {usr_target}; echo done", timeout=20)
    try:
        assert "done" in res.stdout
        assert not usr_target.exists()
        assert target.exists() is (level not in EXPECT_BLOCKED["write_outside"]), res.stderr
    finally:
        usr_target.unlink(missing_ok=True)
    sb.close()


def _tcp_client(port: int) -> str:
    return (f"import socket\ns=socket.create_connection(('127.0.0.1',{port}),timeout=3)\n"
            "s.sendall(b'hello')\nprint('connected')")


async def test_tcp_to_host_listener(tmp_path, level):
    sb = make(tmp_path, level)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        await sb.exec(py(sb, _tcp_client(port)), timeout=20)
        try:
            conn, _ = server.accept()
            conn.close()
            connected = True
        except TimeoutError:
            connected = False
    finally:
        server.close()
    assert connected is (level not in EXPECT_BLOCKED["tcp"])
    sb.close()


async def test_udp_to_host_listener(tmp_path, level):
    sb = make(tmp_path, level)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    code = ("import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"s.sendto(b'hello', ('127.0.0.1', {port}))")
    try:
        await sb.exec(py(sb, code), timeout=20)
        try:
            received = server.recv(64) == b"hello"
        except TimeoutError:
            received = False
    finally:
        server.close()
    assert received is (level not in EXPECT_BLOCKED["udp"])
    sb.close()


async def test_abstract_unix_socket(tmp_path, level):
    sb = make(tmp_path, level)
    name = "\0omx-test-" + secrets.token_hex(6)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    server.listen(1)
    server.settimeout(0.5)
    code = ("import socket\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(3)\n"
            f"s.connect({name!r})\nprint('connected')")
    try:
        await sb.exec(py(sb, code), timeout=20)
        try:
            server.accept()[0].close()
            connected = True
        except TimeoutError:
            connected = False
    finally:
        server.close()
    assert connected is (level not in EXPECT_BLOCKED["abstract_socket"])
    sb.close()


async def test_signal_host_process(tmp_path, level):
    sb = make(tmp_path, level)
    # the victim runs as the sandbox uid so that only isolation (not DAC) can protect it
    kwargs = {"user": sb.uid, "group": sb.gid, "extra_groups": []} if ROOT else {}
    victim = subprocess.Popen(["sleep", "60"], **kwargs)
    try:
        res = await sb.exec(f"kill -9 {victim.pid}; echo rc=$?", timeout=20)
        time.sleep(0.2)
        alive = victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
    blocked = "rc=0" not in res.stdout
    assert blocked is (level in EXPECT_BLOCKED["signal_host"]), res.stdout + res.stderr
    if level >= L2:
        # below L2 the end-of-command sweep kills every process of the sandbox uid,
        # the victim included, so only the kill's own result can be checked there
        assert alive
    sb.close()


async def test_secret_in_environment(tmp_path, level, monkeypatch):
    secret = "sk-omx-" + secrets.token_hex(12)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("OMX_TEST_SECRET", secret)
    sb = make(tmp_path, level)
    res = await sb.exec("env; cat /proc/1/environ /proc/self/environ; "
                        "for p in /proc/[0-9]*; do cat $p/environ; done", timeout=20)
    assert secret not in res.stdout + res.stderr
    assert "PATH=" in res.stdout  # the command did run and print its environment
    sb.close()


async def test_fork_bomb_is_bounded(tmp_path, level):
    sb = make(tmp_path, level, max_processes=64)
    code = (
        "import os, time\nn = 0\npids = []\n"
        "for i in range(300):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(20)\n        os._exit(0)\n"
        "    pids.append(pid)\n    n += 1\n"
        "print('forks', n)\n"
        "for p in pids:\n    os.kill(p, 9)\n"
    )
    res = await sb.exec(py(sb, code), timeout=40)
    forks = int(res.stdout.split()[-1])
    assert forks < 64, forks
    sb.close()


async def test_memory_limit(tmp_path, level):
    sb = make(tmp_path, level, memory_mb=1024)
    res = await sb.exec(py(sb, "b = bytearray(2 * 1024**3)\nprint('allocated')"), timeout=30)
    assert "allocated" not in res.stdout
    assert "MemoryError" in res.stderr
    sb.close()


async def test_cpu_limit(tmp_path, level):
    sb = make(tmp_path, level, cpu_seconds=2)
    res = await sb.exec("while :; do :; done", timeout=30)
    assert not res.timed_out
    assert res.killed_reason == "cpu_limit", (res.exit_code, res.signal)
    sb.close()


def _alive_with_arg(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read().split(b"\0"):
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


async def _gone(marker: str) -> bool:
    for _ in range(40):
        if not _alive_with_arg(marker):
            return True
        time.sleep(0.05)
    for pid in _alive_with_arg(marker):  # do not leave the test's own debris behind
        os.kill(pid, 9)
    return False


async def test_setsid_child_killed_on_timeout(tmp_path, level):
    sb = make(tmp_path, level)
    marker = f"{secrets.randbelow(10**6) + 1000}.5"
    res = await sb.exec(f"setsid sleep {marker} & sleep 60", timeout=1)
    assert res.timed_out and res.exit_code is None
    assert await _gone(marker)
    sb.close()


async def test_setsid_child_killed_after_normal_exit(tmp_path, level):
    sb = make(tmp_path, level)
    marker = f"{secrets.randbelow(10**6) + 1000}.25"
    res = await sb.exec(f"setsid sleep {marker} > /dev/null 2>&1 < /dev/null & echo started",
                        timeout=20)
    assert "started" in res.stdout and not res.timed_out
    assert await _gone(marker)
    sb.close()


async def test_output_flood(tmp_path, level):
    sb = make(tmp_path, level, output_cap_bytes=4096, output_kill_bytes=1024 * 1024)
    res = await sb.exec("yes", timeout=30)
    assert not res.timed_out
    assert res.killed_reason == "output_limit"
    assert res.truncated and res.cut_bytes > 0
    assert "bytes of stdout cut" in res.stdout
    assert res.stdout.startswith("y\ny\n") and res.stdout.rstrip().endswith("y")
    sb.close()


async def test_fill_tmp(tmp_path, level):
    sb = make(tmp_path, level, tmp_size_mb=8, max_file_mb=64)
    name = f"omx-fill-{secrets.token_hex(4)}"
    host_file = Path("/tmp") / name
    try:
        res = await sb.exec(f"head -c 33554432 /dev/zero > /tmp/{name}; "
                            f"wc -c < /tmp/{name}", timeout=30)
        on_host = host_file.exists()
    finally:
        host_file.unlink(missing_ok=True)
    if level in EXPECT_BLOCKED["fill_tmp"]:
        assert not on_host
    else:
        assert on_host  # L0 has no private /tmp: the documented weakness
    if level == L3:
        assert "No space left" in res.stderr
        assert int(res.stdout.split()[-1]) <= 8 * 1024 * 1024
    sb.close()


async def test_hardlink_host_secret(tmp_path, level):
    sb = make(tmp_path, level)
    secret_dir = Path(tempfile.mkdtemp(prefix="omx-secret-", dir="/tmp"))
    secret_dir.chmod(0o755)
    secret = secret_dir / "secret.txt"
    secret.write_text("top secret\n")
    secret.chmod(0o600)
    try:
        res = await sb.exec(f"ln {secret} ./stolen; cat ./stolen; echo rc=$?", timeout=20)
        linked = (sb.workspace / "stolen").exists()
    finally:
        subprocess.run(["rm", "-rf", str(secret_dir)], check=False)
    assert not linked
    assert "top secret" not in res.stdout
    sb.close()


async def test_nested_user_namespace(tmp_path, level):
    sb = make(tmp_path, level)
    res = await sb.exec("unshare -U true && echo NESTED-OK", timeout=20)
    nested = "NESTED-OK" in res.stdout
    assert nested is (level not in EXPECT_BLOCKED["nested_userns"]), res.stderr
    sb.close()


async def test_git_dir_read_only(tmp_path, level):
    ws = tmp_path / "ws"
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "config").write_text("[core]\n")
    sb = make(tmp_path, level)
    res = await sb.exec("echo evil >> .git/config; echo '#!/bin/sh' > .git/hooks/pre-commit; "
                        "echo data > .git/other; cat .git/config && echo read-ok", timeout=20)
    assert (ws / ".git" / "config").read_text() == "[core]\n"
    assert not (ws / ".git" / "hooks" / "pre-commit").exists()
    if ROOT or level == L3:
        # the whole .git is bound read-only (as Codex does); reading it still works
        assert not (ws / ".git" / "other").exists()
    assert "read-ok" in res.stdout
    sb.close()


async def test_git_dir_cannot_be_renamed_or_replaced(tmp_path, level):
    """Issue 12, escape 2: `mv .git .git.orig && cp -r .git.orig .git` must fail; a repo made
    by one command is read-only from the next command on."""
    if not (ROOT or level == L3):
        pytest.skip("without root, levels below L3 have no mount namespace (the git guard acts)")
    ws = tmp_path / "ws"
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    sb = make(tmp_path, level)
    res = await sb.exec("mv .git .git.orig; echo rc=$?; rm -rf .git; echo rm=$?; "
                        "mkdir -p new/.git/hooks && echo made", timeout=20)
    assert "rc=0" not in res.stdout and (ws / ".git" / "HEAD").exists(), res.stdout + res.stderr
    assert not (ws / ".git.orig").exists()
    assert "made" in res.stdout  # the agent may create a repository...
    res = await sb.exec("echo x > new/.git/hooks/pre-commit; mv new/.git new/.g; echo rc=$?",
                        timeout=20)
    assert not (ws / "new" / ".git" / "hooks" / "pre-commit").exists()  # ...protected next
    assert (ws / "new" / ".git").is_dir() and "rc=0" not in res.stdout
    sb.close()
