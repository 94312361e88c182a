"""The model's file tools: ``file_read``, ``file_write``, ``file_edit`` and ``list_files``.

Every path is relative to ``ctx.workspace`` and goes through ``safe_fs.Workspace``, so the tools
cannot reach outside it (symlinks, ``..``, hard links, FIFOs and devices are refused there).
Anything under a ``.git`` directory is write-protected (hooks and config run code when a person
uses git later). ``file_read`` prints lines as ``cat -n`` does — a right-aligned 1-based number,
a tab, then the line — because models cite and edit by line; the prefix is not part of the file,
and ``file_edit`` tells the model so when ``old_text`` is missing.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import stat
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, model_validator

from openmanus_tui.tools.base import Risk, ToolContext, ToolResult, ToolSpec
from openmanus_tui.tools.safe_fs import DirEntry, Workspace, WorkspacePathError

READ_CAP_BYTES = 256 * 1024  # of text shown per file_read call
SCAN_CAP_BYTES = 64 * 1024 * 1024  # how far file_read walks a file looking for start_line
EDIT_CAP_BYTES = 8 * 1024 * 1024  # file_edit rewrites whole files; bigger ones are refused
SNIFF_BYTES = 8192
LIST_MAX_ENTRIES = 400
LIST_MAX_PER_DIR = 100
LIST_MAX_DEPTH = 4
WRITE_PROTECTED = (".git",)
NOT_EXPANDED = frozenset(
    {".git", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache",
     ".ruff_cache", ".tox"}
)  # fmt: skip


def _workspace(ctx: ToolContext) -> Workspace:
    from openmanus_tui.sandbox.state_guard import denied_paths

    # The program's own state inside the workspace is out of the tools' reach (issue 12).
    return Workspace(
        ctx.workspace, write_protected=WRITE_PROTECTED, denied=denied_paths(ctx.workspace)
    )


def _error(message: str) -> ToolResult:
    return ToolResult(content=f"Error: {message}", status="error")


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    if not sample:
        return False
    text = sample.decode("utf-8", errors="replace")
    allowed = {"\t", "\n", "\r", "\f", "\b", "\x1b"}
    bad = sum(1 for ch in text if ch == "\ufffd" or (ch < " " and ch not in allowed))
    return bad / len(text) > 0.3


def _numbered(lineno: int, line: str) -> str:
    return f"{lineno:6}\t{line}\n"


def _strip_eol(raw: bytes) -> bytes:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


async def _run_blocking(func: Callable[[], ToolResult]) -> ToolResult:
    # File systems can be slow (network mounts); keep the event loop free.
    try:
        return await asyncio.to_thread(func)
    except WorkspacePathError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{exc.strerror or exc}")


async def _prepare_for_sandbox(ctx: ToolContext, ws: Workspace, rel: str) -> str:
    """Let the sandbox fix ownership of a file the host just wrote; a note if it failed."""
    prepare = getattr(ctx.sandbox, "prepare_file", None) if ctx.sandbox is not None else None
    if not callable(prepare):
        return ""
    try:
        outcome = prepare(ws.root / rel)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception as exc:  # the file is written; the model should still know
        return f" (note: the sandbox could not prepare the file: {exc})"
    return ""


# --- file_read -----------------------------------------------------------------------------


class FileReadArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace root.")
    start_line: int | None = Field(
        default=None, ge=1, description="First line to show (1-based, inclusive)."
    )
    end_line: int | None = Field(
        default=None, ge=1, description="Last line to show (1-based, inclusive)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> FileReadArgs:
        if self.start_line and self.end_line and self.end_line < self.start_line:
            raise ValueError("end_line must be >= start_line")
        return self


def _read(ws: Workspace, args: FileReadArgs) -> ToolResult:
    start = args.start_line or 1
    end = args.end_line
    with ws.open_read(args.path) as fh:
        size = os.fstat(fh.fileno()).st_size
        sample = fh.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        if _looks_binary(sample):
            return _error(
                f"{args.path!r} looks like a binary file ({_human_size(size)}); file_read "
                "shows text only"
            )
        out: list[str] = []
        out_bytes = 0
        lineno = 0
        scanned = 0
        cut = False
        replaced = False
        at_eof = True
        first_shown = last_shown = 0
        for raw in fh:
            lineno += 1
            scanned += len(raw)
            if lineno < start:
                if scanned > SCAN_CAP_BYTES:
                    return _error(
                        f"start_line {start} is beyond the first {_human_size(SCAN_CAP_BYTES)} "
                        f"of {args.path!r}; file_read does not scan further"
                    )
                continue
            if end is not None and lineno > end:
                at_eof = False
                break
            body = _strip_eol(raw)
            if out_bytes + len(body) + 8 > READ_CAP_BYTES:
                cut = True
                at_eof = False
                if not out:  # a single huge line: show its beginning
                    head = body[: READ_CAP_BYTES - 8].decode("utf-8", errors="ignore")
                    out.append(_numbered(lineno, head))
                    first_shown = last_shown = lineno
                break
            line = body.decode("utf-8", errors="replace")
            replaced = replaced or "\ufffd" in line
            out.append(_numbered(lineno, line))
            out_bytes += len(body) + 8
            first_shown = first_shown or lineno
            last_shown = lineno
        total = lineno if at_eof else None

    if size == 0:
        return ToolResult(content="[empty file]", data={"path": args.path, "size": 0})
    if not out:
        return _error(f"start_line {start} is past the end of {args.path!r} ({lineno} lines)")
    notes = []
    if cut:
        notes.append(
            f"output cut at {_human_size(READ_CAP_BYTES)}: showing lines {first_shown}-"
            f"{last_shown} of a {_human_size(size)} file; call file_read with "
            f"start_line={last_shown + 1} to continue"
        )
    elif args.start_line or args.end_line:
        of = f" of {total}" if total is not None else ""
        notes.append(f"showing lines {first_shown}-{last_shown}{of}")
    if replaced:
        notes.append("the file is not valid UTF-8; undecodable bytes are shown as \ufffd")
    content = "".join(out) + "".join(f"[{note}]\n" for note in notes)
    return ToolResult(
        content=content.rstrip("\n"),
        truncated=cut,
        data={
            "path": args.path,
            "start_line": first_shown,
            "end_line": last_shown,
            "total_lines": total,
            "size": size,
            "truncated": cut,
        },
    )


async def _file_read(ctx: ToolContext, args: FileReadArgs) -> ToolResult:
    return await _run_blocking(lambda: _read(_workspace(ctx), args))


# --- file_write ----------------------------------------------------------------------------


class FileWriteArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace root.")
    content: str = Field(description="The complete new content of the file.")


async def _file_write(ctx: ToolContext, args: FileWriteArgs) -> ToolResult:
    if ctx.max_write_bytes is not None:
        size = len(args.content.encode("utf-8", "surrogatepass"))
        if size > ctx.max_write_bytes:
            return ToolResult(
                content=f"Error: the content is {size:,} bytes, over the "
                f"{ctx.max_write_bytes:,}-byte limit of file_write (tools.max_file_mb); nothing "
                "was written. Split it into smaller files, or generate it with code_exec.",
                status="error",
            )
    holder: dict[str, Any] = {}

    def work() -> ToolResult:
        holder["ws"] = ws = _workspace(ctx)
        res = ws.write_text(args.path, args.content)
        holder["res"] = res
        verb = "Created" if res.created else "Overwrote"
        was = "" if res.previous_size is None else f", was {res.previous_size} bytes"
        via = "" if res.path == _plain(args.path) else f" (through a symlink to {res.path})"
        return ToolResult(
            content=f"{verb} {args.path} ({res.size} bytes{was}){via}",
            data={"path": res.path, "created": res.created, "bytes": res.size},
        )

    result = await _run_blocking(work)
    if "res" in holder:
        result.content += await _prepare_for_sandbox(ctx, holder["ws"], holder["res"].path)
    return result


def _plain(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts:
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


# --- file_edit -----------------------------------------------------------------------------


class FileEditArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace root.")
    old_text: str = Field(
        description="Exact text to replace; it must occur exactly once in the file. Copy it "
        "without the line-number prefixes that file_read shows."
    )
    new_text: str = Field(description="Replacement text (may be empty to delete).")


@dataclass
class _EditOutcome:
    result: ToolResult
    written: str | None = None


def _edit(ws: Workspace, args: FileEditArgs) -> _EditOutcome:
    if not args.old_text:
        return _EditOutcome(_error("old_text is empty; give the exact text to replace"))
    if args.old_text == args.new_text:
        return _EditOutcome(_error("old_text and new_text are identical; nothing to change"))
    raw = ws.read_bytes(args.path, EDIT_CAP_BYTES + 1)
    if len(raw) > EDIT_CAP_BYTES:
        return _EditOutcome(
            _error(
                f"{args.path!r} is larger than {_human_size(EDIT_CAP_BYTES)}; file_edit "
                "does not edit files that big"
            )
        )
    if b"\x00" in raw[:SNIFF_BYTES]:
        return _EditOutcome(_error(f"{args.path!r} is a binary file; file_edit edits text"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _EditOutcome(
            _error(f"{args.path!r} is not valid UTF-8 text; file_edit cannot edit it safely")
        )
    old, new = args.old_text, args.new_text
    count = text.count(old)
    if count == 0 and "\r\n" in text and "\n" in old and "\r\n" not in old:
        # The model sees lines without their CR; match the file's own line endings.
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        count = text.count(old)
    if count == 0:
        return _EditOutcome(
            _error(
                f"old_text was not found in {args.path!r}. Check whitespace and indentation, "
                "and do not include the line-number prefixes shown by file_read."
            )
        )
    if count > 1:
        return _EditOutcome(
            _error(
                f"old_text matches {count} places in {args.path!r}; include more surrounding "
                "lines so that it matches exactly once"
            )
        )
    at = text.index(old)
    updated = text[:at] + new + text[at + len(old) :]
    res = ws.write_text(args.path, updated)
    first = text.count("\n", 0, at) + 1
    last = first + new.count("\n")
    lines = updated.split("\n")
    if updated.endswith("\n"):
        lines.pop()  # the empty string after the final newline is not a line
    lo, hi = max(1, first - 2), min(len(lines), last + 2, first + 40)
    snippet = "".join(_numbered(n, lines[n - 1].rstrip("\r")) for n in range(lo, hi + 1))
    removed = old.count("\n") + 1
    content = (
        f"Edited {args.path}: replaced {removed} line(s) at line {first} with "
        f"{new.count(chr(10)) + 1} line(s). Lines {lo}-{hi} now read:\n{snippet}"
    )
    return _EditOutcome(
        ToolResult(
            content=content.rstrip("\n"),
            data={"path": res.path, "line": first, "bytes": res.size},
        ),
        written=res.path,
    )


async def _file_edit(ctx: ToolContext, args: FileEditArgs) -> ToolResult:
    holder: dict[str, Any] = {}

    def work() -> ToolResult:
        holder["ws"] = ws = _workspace(ctx)
        holder["out"] = _edit(ws, args)
        return holder["out"].result

    result = await _run_blocking(work)
    outcome: _EditOutcome | None = holder.get("out")
    if outcome is not None and outcome.written is not None:
        result.content += await _prepare_for_sandbox(ctx, holder["ws"], outcome.written)
    return result


# --- list_files ----------------------------------------------------------------------------


class ListFilesArgs(BaseModel):
    path: str = Field(default=".", description="Directory relative to the workspace root.")


def _label(entry: DirEntry) -> str:
    if entry.kind == "dir":
        return entry.name + "/"
    if entry.kind == "symlink":
        return entry.name + "@"
    if entry.kind == "other":
        return entry.name + " [special file]"
    return entry.name


def _list(ws: Workspace, args: ListFilesArgs) -> ToolResult:
    root_rel = _plain(args.path) or "."
    if not stat.S_ISDIR(ws.stat(args.path).st_mode):
        return _error(f"{args.path!r} is a file, not a directory; use file_read")
    children: dict[str, list[DirEntry]] = {}
    more: dict[str, int] = {}  # directory -> entries not shown
    queue: deque[tuple[str, int]] = deque([(root_rel, 0)])
    total = 0
    cut = False
    while queue:
        rel, depth = queue.popleft()
        if total >= LIST_MAX_ENTRIES:
            cut = True
            break
        listing = ws.list_dir(rel, limit=LIST_MAX_PER_DIR)
        # Directories first so the tree reads top-down.
        entries = sorted(listing.entries, key=lambda e: (e.kind != "dir", e.name))
        room = LIST_MAX_ENTRIES - total
        if len(entries) > room:
            more[rel] = len(entries) - room
            entries = entries[:room]
            cut = True
        if listing.truncated:
            more[rel] = more.get(rel, 0) + 1  # at least one more
        children[rel] = entries
        total += len(entries)
        for entry in entries:
            if (
                entry.kind == "dir"
                and entry.name not in NOT_EXPANDED
                and depth + 1 < (LIST_MAX_DEPTH)
            ):
                queue.append((entry.name if rel == "." else f"{rel}/{entry.name}", depth + 1))

    lines = [root_rel.rstrip("/") + "/"]

    def render(rel: str, indent: str) -> None:
        for entry in children.get(rel, []):
            child = entry.name if rel == "." else f"{rel}/{entry.name}"
            suffix = ""
            if entry.kind == "dir" and child not in children:
                suffix = "  (contents skipped)" if entry.name in NOT_EXPANDED else "  (…)"
            lines.append(f"{indent}{_label(entry)}{suffix}")
            render(child, indent + "  ")
        if rel in more:
            lines.append(f"{indent}… more entries not shown")

    render(root_rel, "  ")
    if total == 0:
        lines.append("  (empty directory)")
    if cut or more:
        lines.append(
            f"[listing bounded at {LIST_MAX_ENTRIES} entries, {LIST_MAX_PER_DIR} per directory "
            f"and {LIST_MAX_DEPTH} levels; call list_files on a subdirectory to see more]"
        )
    return ToolResult(
        content="\n".join(lines),
        truncated=cut or bool(more),
        data={"path": root_rel, "entries": total},
    )


async def _list_files(ctx: ToolContext, args: ListFilesArgs) -> ToolResult:
    return await _run_blocking(lambda: _list(_workspace(ctx), args))


# --- registration --------------------------------------------------------------------------


def file_tools() -> list[ToolSpec]:
    return [
        ToolSpec(
            name="file_read",
            description=(
                "Read a text file in the workspace. Each line is shown as '<number><TAB><line>' "
                "(1-based; the prefix is not part of the file). Use start_line/end_line for a "
                f"range; output is capped at {READ_CAP_BYTES // 1024} KiB with a note saying "
                "where to continue."
            ),
            args_model=FileReadArgs,
            func=_file_read,
            risk=Risk.READ,
            timeout=30.0,
        ),
        ToolSpec(
            name="file_write",
            description=(
                "Create or overwrite a file in the workspace with the given content (parent "
                "directories are created). Files under .git are write-protected."
            ),
            args_model=FileWriteArgs,
            func=_file_write,
            risk=Risk.WRITE,
            timeout=30.0,
        ),
        ToolSpec(
            name="file_edit",
            description=(
                "Replace one exact occurrence of old_text with new_text in a workspace file. "
                "old_text must match exactly once (whitespace included, without file_read's "
                "line-number prefixes); add surrounding lines if it is ambiguous."
            ),
            args_model=FileEditArgs,
            func=_file_edit,
            risk=Risk.WRITE,
            timeout=30.0,
        ),
        ToolSpec(
            name="list_files",
            description=(
                "List a workspace directory as a tree (directories end with '/', symlinks with "
                f"'@'), up to {LIST_MAX_DEPTH} levels and {LIST_MAX_ENTRIES} entries; .git, "
                "node_modules and caches are not expanded."
            ),
            args_model=ListFilesArgs,
            func=_list_files,
            risk=Risk.READ,
            timeout=30.0,
        ),
    ]
