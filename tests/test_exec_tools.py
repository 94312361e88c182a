"""shell_exec / code_exec through the real sandbox at the best level this machine offers."""

from __future__ import annotations

import importlib.util

import pytest

from openmanus_tui.sandbox import IsolationLevel, Sandbox, SandboxLimits, probe
from openmanus_tui.tools.base import ToolContext, run_tool
from openmanus_tui.tools.exec_tools import CODE_EXEC, SHELL_EXEC, exec_tools


@pytest.fixture
def sandbox(tmp_path):
    sb = Sandbox(tmp_path / "ws", limits=SandboxLimits(output_cap_bytes=2048))
    yield sb
    sb.close()


def ctx_for(sb: Sandbox, lines: list[tuple[str, str]] | None = None) -> ToolContext:
    sink = (lambda stream, text: lines.append((stream, text))) if lines is not None else None
    return ToolContext(workspace=sb.workspace, sandbox=sb,
                       **({"emit_output": sink} if sink else {}))


def test_exec_tools_specs():
    assert [s.name for s in exec_tools()] == ["shell_exec", "code_exec"]
    assert (SHELL_EXEC.tier, CODE_EXEC.tier) == (1, 3)
    assert SHELL_EXEC.risk == CODE_EXEC.risk == "execute"


async def test_live_output_in_order(sandbox):
    lines: list[tuple[str, str]] = []
    res = await run_tool(SHELL_EXEC, ctx_for(sandbox, lines),
                         {"command": "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2"})
    assert res.status == "ok"
    assert [t for s, t in lines if s == "stdout"] == [f"line{i}" for i in range(1, 6)]
    assert ("stderr", "oops") in lines
    assert res.isolation == str(sandbox.level) == str(probe().level)
    assert "exit code: 0" in res.content and "line5" in res.content and "oops" in res.content


async def test_timeout_status(sandbox):
    res = await run_tool(SHELL_EXEC, ctx_for(sandbox), {"command": "sleep 30", "timeout": 1})
    assert res.status == "timeout"
    assert "timed out after 1 s" in res.content
    assert res.duration_ms < 15_000


async def test_truncation_notice(sandbox):
    res = await run_tool(SHELL_EXEC, ctx_for(sandbox), {"command": "seq 1 100000"})
    assert res.status == "truncated" and res.truncated
    assert "[output cut:" in res.content
    assert "\n1\n2\n" in res.content and "100000" in res.content  # head and tail kept


async def test_nonzero_exit_is_error(sandbox):
    res = await run_tool(SHELL_EXEC, ctx_for(sandbox), {"command": "echo bad >&2; exit 3"})
    assert res.status == "error" and "exit code: 3" in res.content and "bad" in res.content


async def test_stdin_is_dev_null(sandbox):
    res = await run_tool(SHELL_EXEC, ctx_for(sandbox), {"command": "cat; echo end", "timeout": 10})
    assert res.status == "ok" and "end" in res.content


async def test_workspace_persists_across_calls(sandbox):
    ctx = ctx_for(sandbox)
    await run_tool(SHELL_EXEC, ctx, {"command": "mkdir -p sub && echo hello > sub/f.txt"})
    res = await run_tool(SHELL_EXEC, ctx, {"command": "cat sub/f.txt"})
    assert "hello" in res.content
    assert (sandbox.workspace / "sub" / "f.txt").read_text() == "hello\n"
    res = await run_tool(CODE_EXEC, ctx, {"code": "print(open('sub/f.txt').read().upper())"})
    assert "HELLO" in res.content


async def test_code_exec_artifacts_plot_and_csv(sandbox):
    code = (
        "import numpy as np, pandas as pd, matplotlib\n"
        "import matplotlib.pyplot as plt\n"
        "print('backend', matplotlib.get_backend())\n"
        "df = pd.DataFrame({'x': np.arange(5), 'y': np.arange(5) ** 2})\n"
        "df.to_csv('data.csv', index=False)\n"
        "plt.plot(df.x, df.y)\n"
        "import os; os.makedirs('out', exist_ok=True)\n"
        "plt.savefig('out/plot.png')\n"
        "print(df.y.sum())\n"
    )
    (sandbox.workspace / "untouched.txt").write_text("x")
    sandbox.prepare_file(sandbox.workspace / "untouched.txt")
    res = await run_tool(CODE_EXEC, ctx_for(sandbox), {"code": code, "timeout": 120})
    assert res.status == "ok", res.content
    assert "backend agg" in res.content.lower() and "30" in res.content
    assert res.artifacts == ["data.csv", "out/plot.png"]
    assert (sandbox.workspace / "out" / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert (sandbox.workspace / "data.csv").read_text().splitlines()[0] == "x,y"


async def test_code_exec_error_and_imports(sandbox):
    res = await run_tool(CODE_EXEC, ctx_for(sandbox),
                         {"code": "import httpx, openmanus_tui\nraise ValueError('boom')"})
    assert res.status == "error"
    assert "ValueError: boom" in res.content and "ModuleNotFoundError" not in res.content


async def test_host_written_file_is_handed_over(sandbox):
    host_file = sandbox.workspace / "notes" / "host.txt"
    host_file.parent.mkdir()
    host_file.write_text("from host\n")
    sandbox.prepare_file(host_file)
    res = await run_tool(SHELL_EXEC, ctx_for(sandbox),
                         {"command": "echo from sandbox >> notes/host.txt && touch notes/new"})
    assert res.status == "ok", res.content
    assert host_file.read_text() == "from host\nfrom sandbox\n"


@pytest.mark.skipif(importlib.util.find_spec("openmanus_tui.utilities.md_to_pdf") is None,
                    reason="openmanus_tui.utilities.md_to_pdf is not written yet")
async def test_tier2_utility_on_path(sandbox):
    res = await run_tool(SHELL_EXEC, ctx_for(sandbox), {"command": "manus-md-to-pdf --help"})
    assert res.status == "ok", res.content
    assert "usage" in res.content.lower()


async def test_shell_exec_without_runtime_sandbox(tmp_path):
    ctx = ToolContext(workspace=tmp_path / "ws2")
    (tmp_path / "ws2").mkdir()
    res = await run_tool(SHELL_EXEC, ctx, {"command": "echo fallback"})
    assert res.status == "ok" and "fallback" in res.content


def test_level_errors(tmp_path):
    from openmanus_tui.errors import SandboxError
    from openmanus_tui.sandbox import BelowMinIsolation

    with pytest.raises(BelowMinIsolation, match="below the required minimum L3"):
        Sandbox(tmp_path, level=IsolationLevel.L0, min_isolation="L3")
    with pytest.raises(SandboxError, match="unknown isolation level"):
        IsolationLevel.parse("L7")
    assert IsolationLevel.parse("2") is IsolationLevel.L2 and str(IsolationLevel.L3) == "L3"


def test_probe_report_shape():
    report = probe()
    data = report.to_dict()
    assert data["level"] == str(report.level)
    assert {"bwrap", "landlock", "userns", "prlimit"} <= set(data["mechanisms"])
    from openmanus_tui.sandbox import format_report

    assert format_report(report).startswith(f"Sandbox isolation: {report.level}")
