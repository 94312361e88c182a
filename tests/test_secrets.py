"""Secrets at rest: ``openmanus secrets set|list|rm``, the Fernet store and where its key lives,
``"secret:NAME"`` in the config, and a planted secret that must not show up anywhere: the
database file, an export, ``config show``, the configuration history, the environment a
sandboxed command sees."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest
from conftest import cli, run_cli
from openai_server import OpenAITestServer, Reply, ToolCallSpec

from openmanus_tui.config import load_settings
from openmanus_tui.errors import ConfigError
from openmanus_tui.secret_store import SecretError, SecretStore

# Matches none of the export redactor's credential shapes: only knowing the value hides it.
PLANTED = "Zq9plantedX7valueW3"


def data_dir(root: Path) -> Path:
    return root / "data"


def test_store_encrypts_with_a_0600_key_file(isolated_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    store = SecretStore(data_dir(isolated_env))
    store.set("openai", PLANTED)
    assert store.get("openai") == PLANTED
    assert PLANTED.encode() not in store.path.read_bytes()
    for path in (store.path, store.key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(store.path.read_text())["key"] == "file"
    assert store.key_location() == str(store.key_path)
    assert [s.name for s in store.list()] == ["openai"]
    store.remove("openai")
    with pytest.raises(SecretError, match="no secret named 'openai'"):
        store.get("openai")
    with pytest.raises(SecretError, match="secret name"):
        store.set("../x", "v")


class MemoryKeyring:
    """A keyring backend kept in memory (the machine running the tests has no keyring)."""

    priority = 10

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        return self.values.get((service, user))

    def set_password(self, service: str, user: str, value: str) -> None:
        self.values[(service, user)] = value


def test_key_goes_to_a_usable_keyring(isolated_env: Path, monkeypatch) -> None:
    import openmanus_tui.secret_store as secret_store

    ring = MemoryKeyring()
    monkeypatch.setattr(secret_store, "_usable_keyring", lambda: ring)
    store = SecretStore(data_dir(isolated_env))
    store.set("k", PLANTED)
    assert not store.key_path.exists()
    assert json.loads(store.path.read_text())["key"] == "keyring"
    (key,) = ring.values.values()
    assert key.encode() not in store.path.read_bytes()
    assert store.get("k") == PLANTED
    # The keyring gone (a headless login): one line, and no new key that cannot read them.
    monkeypatch.setattr(secret_store, "_usable_keyring", lambda: None)
    with pytest.raises(SecretError, match="system keyring, which cannot be reached"):
        store.get("k")
    assert not store.key_path.exists()


def test_headless_machine_falls_back_to_the_key_file(isolated_env: Path) -> None:
    """No keyring configured (this machine's case): keyring's own choice, checked for real."""
    from openmanus_tui.secret_store import _usable_keyring

    if _usable_keyring() is not None:
        pytest.skip("this machine has a usable keyring")
    store = SecretStore(data_dir(isolated_env))
    store.set("k", "value-1")
    assert store.key_path.exists() and store.get("k") == "value-1"


def test_cli_set_list_rm_from_stdin(isolated_env: Path) -> None:
    result = cli("secrets", "set", "openai", input_text=PLANTED + "\n")
    assert result.returncode == 0, result.stderr
    assert PLANTED not in result.stdout + result.stderr
    assert '"secret:openai"' in result.stdout
    assert SecretStore(data_dir(isolated_env)).get("openai") == PLANTED  # newline dropped
    listed = cli("secrets", "list")
    assert "openai" in listed.stdout and PLANTED not in listed.stdout
    assert json.loads(cli("secrets", "list", "--json").stdout)[0]["name"] == "openai"
    assert cli("secrets", "rm", "openai").returncode == 0
    gone = cli("secrets", "rm", "openai")
    assert gone.returncode == 2 and gone.stderr.startswith("openmanus: no secret named 'openai'")
    assert len(gone.stderr.strip().splitlines()) == 1
    empty = cli("secrets", "set", "x", input_text="")
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert cli("secrets", "set", "bad name", input_text="v").returncode == 2


def test_cli_set_prompts_without_echo_at_a_terminal(isolated_env: Path) -> None:
    import subprocess

    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "openmanus_tui", "secrets", "set", "typed"],
        stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )
    os.close(slave)
    try:
        # Answer once the prompt is there: the echo is off by then (typing earlier would be
        # echoed by the terminal before the command turned it off).
        import termios

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if not termios.tcgetattr(master)[3] & termios.ECHO:
                break  # the terminal's echo is off: the prompt is waiting
            time.sleep(0.02)
        os.write(master, (PLANTED + "\n").encode())
        out, err = proc.communicate(timeout=30)
        os.set_blocking(master, False)
        try:
            echoed = os.read(master, 4096)  # what the terminal showed back while typing
        except (BlockingIOError, OSError):
            echoed = b""
    finally:
        os.close(master)
    assert PLANTED.encode() not in echoed
    assert proc.returncode == 0, err
    assert b"value for typed (not shown)" in err
    assert PLANTED.encode() not in out + err
    assert SecretStore(data_dir(isolated_env)).get("typed") == PLANTED


def test_missing_secret_is_one_line(isolated_env: Path) -> None:
    (isolated_env / "config.toml").write_text('[model]\napi_key = "secret:nope"\n')
    with pytest.raises(ConfigError, match=r"model\.api_key: no secret named 'nope'"):
        load_settings()
    result = run_cli("config", "validate")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "openmanus: model.api_key: no secret named 'nope'"
    assert "Traceback" not in result.stderr
    # Storing it works although the config names a secret that is not there yet.
    assert cli("secrets", "set", "nope", input_text="v4lue-long-enough").returncode == 0
    assert load_settings().model.api_key.get_secret_value() == "v4lue-long-enough"


def test_mcp_server_env_takes_secrets(isolated_env: Path) -> None:
    SecretStore(data_dir(isolated_env)).set("gh", PLANTED)
    (isolated_env / "config.toml").write_text(
        '[mcp.servers.files]\ncommand = "true"\nenv = { GITHUB_TOKEN = "secret:gh", MODE = "x" }\n'
    )
    settings = load_settings(resolve_secrets=True)
    assert settings.mcp.servers["files"]["env"] == {"GITHUB_TOKEN": PLANTED, "MODE": "x"}
    assert PLANTED not in json.dumps(cli("config", "show", "--json").stdout)


def test_planted_secret_appears_nowhere(isolated_env: Path) -> None:
    """The key the model is called with, stored with ``secrets set``, reaches the model
    server and nothing else: not the database, an export, ``config show``, the history, the
    environment of a command the agent runs in the real sandbox."""
    server = OpenAITestServer([
        Reply(tool_calls=[ToolCallSpec("shell_exec", {"command": "env; echo ENV-DONE"})]),
        Reply(text="all done"),
    ])
    with server:
        assert cli("secrets", "set", "planted", input_text=PLANTED).returncode == 0
        (isolated_env / "config.toml").write_text(
            f'[model]\nprovider = "openai"\nname = "test-model"\nbase_url = "{server.base_url}"\n'
            'api_key = "secret:planted"\n[approval]\nmode = "yolo"\n'
        )
        run = cli("run", "show me the environment", "--json")
        assert run.returncode == 0, run.stderr
        # It was used: the server got it as the bearer token.
        headers = {k.lower(): v for k, v in server.records[0].headers.items()}
        assert headers["authorization"] == f"Bearer {PLANTED}"
        events = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        env_output = "".join(
            str(e.get("result", "")) + str(e.get("text", ""))
            for e in events if e["type"] in ("tool_finished", "tool_output")
        )
        assert "ENV-DONE" in env_output and "PATH=" in env_output  # env really ran
        assert PLANTED not in run.stdout + run.stderr
        session = next(e["session_id"] for e in events if e.get("session_id"))

        exports = []
        for fmt in ("json", "md", "html"):
            out = isolated_env / f"export.{fmt}"
            done = cli("export", session, "--format", fmt, "-o", str(out))
            assert done.returncode == 0, done.stderr
            exports.append(out.read_text())
        shown = cli("config", "show").stdout + cli("config", "show", "--json").stdout
        history = cli("config", "history", "--json").stdout
        assert "secret:planted" in history  # the reference is kept, the value is not

    assert all(PLANTED not in text for text in exports)
    assert PLANTED not in shown and PLANTED not in history
    data = data_dir(isolated_env)
    for path in data.rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path
    assert any(p.name.startswith("openmanus.db") for p in data.iterdir())


def test_export_redacts_a_secret_that_reached_the_transcript(isolated_env: Path) -> None:
    """A person pasted the value into a task: it is in the session (they typed it), and an
    export still leaves it out, because the export knows the resolved secrets."""
    assert cli("secrets", "set", "planted", input_text=PLANTED).returncode == 0
    (isolated_env / "config.toml").write_text(
        '[model]\nprovider = "scripted"\nname = "demo"\napi_key = "secret:planted"\n'
    )
    run = cli("run", f"my key is {PLANTED}, keep it safe", "--json")
    assert run.returncode in (0, 4), run.stderr  # the demo may pause for an approval
    session = json.loads(run.stdout.splitlines()[0])["session_id"]
    out = isolated_env / "export.md"
    assert cli("export", session, "--format", "md", "-o", str(out)).returncode == 0
    text = out.read_text()
    assert PLANTED not in text and "my key is [REDACTED]" in text
