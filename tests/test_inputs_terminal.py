"""Terminal injection (issue 12, escape 3): model text and sandbox output never reach the
terminal with escape sequences other than safe SGR colours.

The attack runs end to end: the loopback model answers with OSC 52 (clipboard), OSC 0 (title)
and clear-screen in its text and has ``shell_exec`` print the same from inside the sandbox; then
``openmanus run`` (not ``--json``), ``sessions show`` and ``export`` print it. Colours are forced
on so that the allowed SGR sequences are there too and the check is that nothing else is.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from conftest import json_events, run_cli, use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec

from openmanus_tui.termsafe import SafeStream, sanitize

OSC52 = "\x1b]52;c;cHduZWQ=\x07"
TITLE = "\x1b]0;pwned\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
PAYLOAD = f"before{OSC52}{TITLE}{CLEAR}\x9b31m\rafter"
SHELL = r"printf 'tool\033]52;c;cHduZWQ=\007\033]0;owned\007\033[2Jend\n'"

_ANY_ESC = re.compile(r"\x1b(\[[0-9;]*m)?")


def only_safe_sgr(text: str) -> bool:
    """Every ESC in ``text`` starts a plain SGR sequence, and no C1 or CR is present."""
    bad = [m.group() for m in _ANY_ESC.finditer(text) if not m.group(1)]
    return not bad and not re.search("[\x80-\x9f\r\x07]", text)


def test_sanitize_keeps_colours_and_escapes_the_rest() -> None:
    assert sanitize("plain\ttext\n") == "plain\ttext\n"
    assert sanitize("\x1b[1;31mred\x1b[0m") == "\x1b[1;31mred\x1b[0m"
    assert sanitize("\x1b[38;5;200mx\x1b[48;2;1;2;3my") == "\x1b[38;5;200mx\x1b[48;2;1;2;3my"
    assert sanitize(OSC52) == "\\x1b]52;c;cHduZWQ=\\x07"
    assert sanitize(CLEAR) == "\\x1b[2J\\x1b[H"
    assert sanitize("\x1b[8mhidden") == "\\x1b[8mhidden"  # conceal is not a colour
    assert sanitize("\x1b[5mblink") == "\\x1b[5mblink"
    assert sanitize("a\rb\r\nc") == "a\\x0db\nc"
    assert sanitize("\x9b2J") == "\\u009b2J"
    assert sanitize("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    # The escapes are JSON escapes of the same characters: JSON text keeps its meaning.
    doc = json.dumps({"t": "\x9b\x7f"}, ensure_ascii=False)
    assert json.loads(sanitize(doc)) == {"t": "\x9b\x7f"}


def test_safe_stream_joins_a_split_sequence() -> None:
    out = io.StringIO()
    stream = SafeStream(out)
    stream.write("a\x1b[3")
    stream.flush()
    stream.write("1mred\x1b")
    stream.write("]0;x\x07")
    stream.close_pending()
    assert out.getvalue() == "a\x1b[31mred\\x1b]0;x\\x07"


@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich colours on: SGR must still pass
    monkeypatch.setenv("COLUMNS", "200")
    llm_server.set_responder([
        Reply(text=PAYLOAD, tool_calls=[ToolCallSpec("shell_exec", {"command": SHELL})]),
        Reply(text=f"final {OSC52} answer",
              tool_calls=[ToolCallSpec("terminate", {"answer": f"done{TITLE}{CLEAR}"})]),
    ])
    return llm_server


def test_run_show_and_export_print_no_raw_escape(server, tmp_path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    run = run_cli("run", "attack", "--approval", "yolo", "--workspace", str(ws))
    assert run.returncode == 0, run.stderr
    for text in (run.stdout, run.stderr):
        assert only_safe_sgr(text), repr(text)
    assert "\\x1b]52;c;cHduZWQ=" in run.stdout  # shown, visibly
    assert "tool\\x1b]52;" in run.stdout  # the sandbox's output too
    assert "\x1b[" in run.stdout  # colours are on, so the check above means something

    listed = json_events(run_cli("sessions", "list", "--json").stdout)
    session = listed[0]["id"]
    show = run_cli("sessions", "show", session)
    assert show.returncode == 0 and only_safe_sgr(show.stdout + show.stderr)
    assert "\\x1b]52;" in show.stdout
    export = run_cli("export", session)
    assert export.returncode == 0 and only_safe_sgr(export.stdout)
    # JSON output keeps its exact content (the escapes are JSON's own).
    shown = run_cli("sessions", "show", session, "--json")
    thoughts = [e["text"] for e in json_events(shown.stdout) if e["type"] == "thought"]
    assert PAYLOAD.replace("\r", "") in thoughts[0].replace("\r", "") or PAYLOAD in thoughts
