"""Who may start which MCP stdio server, and where it runs (escape 1 of issue 12).

A stdio server is a command the runtime starts. Before this, any server that appeared in the
config (written, perhaps, by a sandboxed command) was started on the host without a question.
Now:

* **Trust on first use, per command.** A stdio server starts only when the person has trusted
  its exact launch description: command, args, env, cwd, and its ``sandbox`` / ``network``
  choices, hashed with SHA-256. A new server, or one whose description changed, is not started;
  the startup notice names it, shows its command and hash, and says
  ``openmanus mcp trust NAME``. The store is ``mcp-trust.json`` in the data folder, which the
  sandbox can never write (``sandbox/state_guard.py``).
* **Sandboxed by default.** A trusted server runs inside the sandbox (``Sandbox.server_argv``)
  with a workspace of its own under the data folder's ``workspaces/`` (or the configured
  ``sandbox.workspace``), network off unless the server says ``network = true``. L3 gives it the
  full bubblewrap profile; below L3 the launch cannot use Landlock (no ``preexec_fn`` through
  the MCP SDK), so it gets the unprivileged uid, the helper mount namespace and rlimits (plus
  user/net/pid namespaces at L2). ``sandbox = false`` on a server is the explicit opt-out: it
  runs on the host as before, and ``openmanus doctor`` and the startup notices say so.

HTTP/SSE servers run elsewhere and need no trust here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openmanus_tui.utilities.mcp_config import McpServerConfig

TRUST_FILE = "mcp-trust.json"


def fingerprint(cfg: McpServerConfig) -> str:
    """SHA-256 of everything that decides what a stdio server runs and where."""
    described = {
        "command": cfg.command,
        "args": cfg.args,
        "env": cfg.env,
        "cwd": cfg.cwd,
        "sandbox": cfg.sandbox,
        "network": cfg.network,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


class TrustStore:
    """``mcp-trust.json``: server name -> trusted fingerprint and the command it stood for."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / TRUST_FILE
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def entries(self) -> dict[str, Any]:
        return self._read()

    def is_trusted(self, cfg: McpServerConfig) -> bool:
        entry = self._read().get(cfg.name)
        return isinstance(entry, dict) and entry.get("sha256") == fingerprint(cfg)

    def trust(self, cfg: McpServerConfig) -> str:
        digest = fingerprint(cfg)
        with self._lock:
            data = self._read()
            data[cfg.name] = {"sha256": digest, "command": cfg.target, "sandbox": cfg.sandbox}
            self._write(data)
        return digest

    def revoke(self, name: str) -> bool:
        with self._lock:
            data = self._read()
            found = data.pop(name, None) is not None
            self._write(data)
        return found

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.path)


def untrusted_message(cfg: McpServerConfig) -> str:
    return (
        f"not trusted yet: command `{cfg.target}` (sha256 {fingerprint(cfg)[:16]}). "
        f"Check it, then run `openmanus mcp trust {cfg.name}`"
    )


@dataclass
class LaunchPolicy:
    """What ``McpManager`` asks before starting a stdio server, and how it wraps it."""

    trust: TrustStore
    data_dir: Path
    workspace: Path | None = None  # the configured sandbox.workspace, if any
    level: str | None = None  # the configured isolation level ("auto": None)
    limits: Any = None
    state: Any = None  # the program's state (sandbox/state_guard.py), from the settings

    def __post_init__(self) -> None:
        self._sandboxes: dict[tuple[str, bool], Any] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> LaunchPolicy:
        from openmanus_tui.sandbox import SandboxLimits
        from openmanus_tui.sandbox.state_guard import program_state

        s = settings.sandbox
        return cls(
            trust=TrustStore(settings.resolved_data_dir),
            data_dir=settings.resolved_data_dir,
            workspace=Path(s.workspace).expanduser() if s.workspace else None,
            level=None if s.level == "auto" else s.level,
            limits=SandboxLimits(
                memory_mb=s.memory_mb,
                max_processes=s.max_processes,
                max_file_mb=s.max_file_mb,
                max_open_files=s.max_open_files,
            ),
            state=program_state(settings),
        )

    def check(self, cfg: McpServerConfig) -> str | None:
        """None when the server may start, else why not (one line)."""
        if cfg.transport != "stdio" or self.trust.is_trusted(cfg):
            return None
        return untrusted_message(cfg)

    def wrap(self, cfg: McpServerConfig) -> tuple[McpServerConfig, str]:
        """The config to launch (sandboxed unless opted out) and where it runs, for the UI."""
        if cfg.transport != "stdio" or not cfg.sandbox:
            return cfg, "host (sandbox = false)" if cfg.transport == "stdio" else "remote"
        sandbox = self._sandbox(cfg)
        command = cfg.command or ""
        if os.path.realpath(command) in (
            os.path.realpath(sys.executable),
            os.path.realpath(sys.base_prefix + "/bin/python3"),
        ):
            command = sandbox.python_argv()[0]  # our interpreter, as the sandbox reaches it
        argv, env, level = sandbox.server_argv([command, *cfg.args], cfg.env)
        wrapped = cfg.model_copy(
            update={"command": argv[0], "args": argv[1:], "env": env, "cwd": None}
        )
        return wrapped, f"sandbox {level}"

    def _sandbox(self, cfg: McpServerConfig) -> Any:
        from openmanus_tui.sandbox import Sandbox
        from openmanus_tui.sandbox.probe import server_ids

        ws = self.workspace or self.data_dir / "workspaces" / f"mcp-{cfg.name}"
        key = (str(ws), cfg.network)
        if key not in self._sandboxes:
            # a uid of their own: the commands' sweep must not kill them (and they cannot
            # signal the commands, nor the commands them)
            self._sandboxes[key] = Sandbox(
                ws, network=cfg.network, level=self.level, limits=self.limits,
                ids=server_ids() if os.geteuid() == 0 else None, state=self.state,
            )
        return self._sandboxes[key]

    def close(self) -> None:
        for sandbox in self._sandboxes.values():
            sandbox.close()
        self._sandboxes.clear()
