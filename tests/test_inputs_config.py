"""``config validate`` accepts exactly what ``run`` accepts (issue 12, defect 15), and numeric
settings have upper bounds: each bad file is refused by both with the same one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

BAD = {
    "mcp-command-int": ("[mcp.servers.evil]\ncommand = 5\n", "evil"),
    "mcp-no-command": ("[mcp.servers.evil]\nargs = [\"x\"]\n", "evil"),
    "max-steps-huge": ("[agent]\nmax_steps = 1e9\n", "agent.max_steps"),
    "memory-huge": ("[sandbox]\nmemory_mb = 99999999999\n", "sandbox.memory_mb"),
    "timeout-huge": ("[model]\ntimeout = 1e12\n", "model.timeout"),
    "workspace-file": ("[sandbox]\nworkspace = \"/etc/hostname\"\n", "sandbox.workspace"),
    "storage-url": ("[storage]\nurl = \"postgres://x\"\n", "storage.url"),
    "unknown-script": ("[model]\nprovider = \"scripted\"\nname = \"no-such-script\"\n",
                       "no-such-script"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_validate_rejects_what_run_rejects(isolated_env: Path, case: str) -> None:
    text, expected = BAD[case]
    (isolated_env / "config.toml").write_text(text)
    validate = run_cli("config", "validate")
    run = run_cli("run", "hello")
    for result in (validate, run):
        assert result.returncode == 2, (case, result.stdout, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr
    assert validate.stderr.splitlines()[0] == run.stderr.splitlines()[0]


def test_validate_accepts_a_good_file(isolated_env: Path) -> None:
    (isolated_env / "config.toml").write_text(
        "[agent]\nmax_steps = 200\n[limits]\ntask_chars = 2000000\n"
        "[mcp.servers.echo]\ncommand = \"python3\"\nargs = [\"-V\"]\n"
    )
    result = run_cli("config", "validate")
    assert result.returncode == 0 and result.stdout.startswith("OK")
