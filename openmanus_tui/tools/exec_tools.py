"""The execution tools ``shell_exec`` (tier 1) and ``code_exec`` (tier 3), run in the sandbox."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from openmanus_tui.errors import SandboxError
from openmanus_tui.sandbox import ExecResult, Sandbox
from openmanus_tui.tools.base import Risk, ToolContext, ToolResult, ToolSpec

DEFAULT_TIMEOUT = 60  # outside a runtime; a runtime passes sandbox.timeout
MAX_TIMEOUT = 1800
ARTIFACT_SCAN_LIMIT = 20_000  # entries; a huge workspace is scanned partially
SKIP_DIRS = {".git", "__pycache__", ".venv", "node_modules", ".cache", ".mypy_cache"}

_fallback: dict[tuple[str, bool], Sandbox] = {}


class ShellExecArgs(BaseModel):
    command: str = Field(description="Shell command line, run with /bin/sh -c in the workspace")
    timeout: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT, description="Seconds before the whole command is killed"
    )


class CodeExecArgs(BaseModel):
    code: str = Field(
        description="Python source to run (numpy, pandas, matplotlib, httpx "
        "available; matplotlib uses the Agg backend - save figures "
        "to files in the working directory)"
    )
    timeout: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT, description="Seconds before the run is killed"
    )


def _sandbox(ctx: ToolContext) -> Sandbox:
    """The runtime's sandbox, or one made for the context's workspace (cached)."""
    if ctx.sandbox is not None:
        return ctx.sandbox
    if "sandbox_error" in ctx.extra:
        # The runtime could not build the configured sandbox (below min_isolation, or a
        # level this machine lacks): refuse rather than run with weaker isolation.
        raise SandboxError(ctx.extra["sandbox_error"])
    key = (str(Path(ctx.workspace).resolve()), ctx.network)
    if key not in _fallback:
        _fallback[key] = Sandbox(Path(key[0]), network=ctx.network)
    return _fallback[key]


def _status(res: ExecResult) -> str:
    if res.timed_out:
        return "timeout"
    if res.exit_code != 0:
        return "error"
    if res.truncated:
        return "truncated"
    return "ok"


def _content(res: ExecResult, *, timeout: float) -> str:
    parts = [f"exit code: {res.exit_code if res.exit_code is not None else 'none (killed)'}"]
    if res.timed_out:
        parts.append(f"timed out after {timeout:g} s; the whole process tree was killed")
    parts += list(n for n in res.notes if "timeout" not in n)
    parts.append("stdout:\n" + (res.stdout if res.stdout else "(empty)"))
    if res.stderr:
        parts.append("stderr:\n" + res.stderr)
    if res.truncated:
        parts.append(
            f"[output cut: {res.cut_bytes} bytes omitted from the middle; head and tail kept]"
        )
    return "\n".join(parts)


def _to_result(res: ExecResult, timeout: float, artifacts: list[str] | None = None) -> ToolResult:
    return ToolResult(
        content=_content(res, timeout=timeout),
        status=_status(res),  # type: ignore[arg-type]
        duration_ms=res.duration_ms,
        isolation=str(res.level),
        truncated=res.truncated,
        artifacts=artifacts or [],
        data={
            "exit_code": res.exit_code,
            "timed_out": res.timed_out,
            "cut_bytes": res.cut_bytes,
            "killed_reason": res.killed_reason,
        },
    )


def _timeout(value: int | None, ctx: ToolContext) -> float:
    """The model's timeout, else ``sandbox.timeout`` (within the tool's own bound)."""
    if value is not None:
        return float(value)
    default = ctx.command_timeout if ctx.command_timeout is not None else DEFAULT_TIMEOUT
    return float(min(default, MAX_TIMEOUT))


async def shell_exec(ctx: ToolContext, args: ShellExecArgs) -> ToolResult:
    timeout = _timeout(args.timeout, ctx)
    try:
        sandbox = _sandbox(ctx)
        res = await sandbox.exec(args.command, timeout=timeout, on_output=ctx.emit_output)
    except SandboxError as exc:
        return ToolResult(content=f"Error: {exc}", status="error")
    return _to_result(res, timeout)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (mtime_ns, size) of regular files, without following symlinks."""
    found: dict[str, tuple[int, int]] = {}
    stack = [root]
    while stack and len(found) < ARTIFACT_SCAN_LIMIT:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found[os.path.relpath(entry.path, root)] = (st.st_mtime_ns, st.st_size)
            except OSError:
                continue
    return found


Snapshot = dict[str, tuple[int, int]]


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(path for path, sig in after.items() if before.get(path) != sig)


async def code_exec(ctx: ToolContext, args: CodeExecArgs) -> ToolResult:
    timeout = _timeout(args.timeout, ctx)
    try:
        sandbox = _sandbox(ctx)
        before = snapshot(sandbox.workspace)
        # the code goes through stdin: no argv length limit, nothing left in the workspace
        res = await sandbox.exec(
            [*sandbox.python_argv(), "-"],
            timeout=timeout,
            on_output=ctx.emit_output,
            stdin=args.code.encode(),
        )
    except SandboxError as exc:
        return ToolResult(content=f"Error: {exc}", status="error")
    artifacts = changed_files(before, snapshot(sandbox.workspace))
    result = _to_result(res, timeout, artifacts)
    if artifacts:
        result.content += "\nfiles created or changed: " + ", ".join(artifacts)
    return result


SHELL_EXEC = ToolSpec(
    name="shell_exec",
    description=(
        "Run a shell command in the sandboxed workspace (the current directory; it persists "
        "between calls). Network is off unless the session allows it. The utilities "
        "manus-md-to-pdf, manus-speech-to-text and manus-mcp-cli are on the PATH. Returns the "
        "exit code, stdout and stderr (long output keeps its head and tail)."
    ),
    args_model=ShellExecArgs,
    func=shell_exec,
    tier=1,
    risk=Risk.EXECUTE,
    timeout=MAX_TIMEOUT,
)

CODE_EXEC = ToolSpec(
    name="code_exec",
    description=(
        "Run Python code in the sandboxed workspace with numpy, pandas, matplotlib (Agg backend) "
        "and httpx. Print results; save plots and data as files in the working directory - "
        "they are reported as artifacts. Each call is a fresh interpreter; files persist."
    ),
    args_model=CodeExecArgs,
    func=code_exec,
    tier=3,
    risk=Risk.EXECUTE,
    timeout=MAX_TIMEOUT,
)


def exec_tools() -> list[ToolSpec]:
    return [SHELL_EXEC, CODE_EXEC]
