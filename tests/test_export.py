"""Session export (JSON, Markdown, HTML), redaction and import parsing, on real event streams
from the ``openmanus`` command and on hand-built sessions with branches."""

from __future__ import annotations

import json
import secrets as pysecrets
import typing
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cli_tty import CLI, TtyRun, answer_all
from conftest import cli, json_events, run_cli, use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec

from openmanus_tui import events as ev
from openmanus_tui.errors import OpenManusError
from openmanus_tui.export import (
    EXPORT_VERSION,
    REDACTED,
    ExportDoc,
    branches_from_events,
    from_json,
    prepare_export,
    redact,
    secrets_from_environ,
    select_branch,
    to_html,
    to_json,
    to_markdown,
)

LIVE_TYPES = {"thought_delta", "tool_output"}
EVENT_TYPES = {
    cls.model_fields["type"].default for cls in typing.get_args(typing.get_args(ev.Event)[0])
}


def _session_id(stdout: str) -> str:
    return json_events(stdout)[-1]["session_id"]


def _stored(session_id: str) -> list[dict[str, Any]]:
    shown = cli("sessions", "show", session_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return json_events(shown.stdout)


def _dumps(doc: ExportDoc) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in doc.events]


def _all_formats(doc: ExportDoc) -> dict[str, str]:
    return {"json": to_json(doc), "md": to_markdown(doc), "html": to_html(doc)}


# ---- import of real streams --------------------------------------------------------------
def test_run_json_stream_and_sessions_show_import() -> None:
    result = cli("run", "demo", "--json", "--approval", "yolo")
    assert result.returncode == 0, result.stderr
    printed = json_events(result.stdout)
    live = [e for e in printed if e["type"] in LIVE_TYPES]
    assert live, "the run printed no live lines; this test would not cover dropping them"

    doc = from_json(result.stdout, source="run.jsonl")
    session_id = _session_id(result.stdout)
    stored = _stored(session_id)
    assert _dumps(doc) == stored
    assert doc.session["id"] == session_id and doc.session["title"] == "demo"
    assert doc.session["status"] == "completed" and doc.session["model"] == "scripted:demo"
    assert doc.session["meta"]["import"]["dropped_live_events"] == len(live)

    checkpoints = [e["checkpoint_id"] for e in stored if e["type"] == "checkpoint"]
    assert len(checkpoints) > 5
    assert [(b["head"], b["checkpoints"]) for b in doc.branches] == [
        (checkpoints[-1], checkpoints)
    ]
    assert "demo" in doc.branches[0]["label"]

    shown = from_json(cli("sessions", "show", session_id, "--json").stdout)
    assert _dumps(shown) == stored and shown.branches == doc.branches


# ---- the JSON export round trip ----------------------------------------------------------
def _every_kind_of_event(session_id: str) -> list[ev.Event]:
    """One of each event type with unusual values (unicode, nesting, nulls, floats)."""
    base = {"session_id": session_id, "run_id": "run_x", "checkpoint_id": "ck-9"}
    call = ev.ApprovalCall(
        call_id="c9", tool="shell_exec", args={"command": "rm -rf ☃/", "n": [1, {"x": None}]},
        risk="execute", tier=1, rule="deny-rm", reason="matches a rule",
    )
    made: list[ev.Event] = [
        ev.RunStarted(**base, profile="research", model="m", input="héllo\nworld", resumed=True),
        ev.ThoughtDelta(**base, message_id="m1", text="he"),
        ev.Thought(**base, message_id="m1", text="**bold** ünïcode"),
        ev.ToolCall(**base, call_id="c9", tool="shell_exec", args=None, raw_args='{"bad', tier=2,
                    risk="execute", message_id="m1", invalid="invalid JSON"),
        ev.ApprovalRequested(**base, calls=[call]),
        ev.ApprovalDecided(**base, call_id="c9", tool="shell_exec", decision="edit",
                           args={"command": "ls"}, reason="safer", scope="session",
                           rule="r1", by="rule"),
        ev.ToolStarted(**base, call_id="c9", tool="shell_exec", args={"command": "ls"},
                       isolation="L2"),
        ev.ToolOutput(**base, call_id="c9", stream="stderr", text="warn"),
        ev.ToolFinished(**base, call_id="c9", tool="shell_exec", status="truncated",
                        result="a\nb", duration_ms=12.345678901, isolation="L2", truncated=True,
                        artifacts=["out.png"], replayed=True),
        ev.Usage(**base, message_id="m1", tokens_in=10, tokens_out=2, cost=0.1 + 0.2,
                 context_tokens=5, context_window=100, latency_ms=1.5, retries=1,
                 model="openai:b", fallback=True, cached=False, total_tokens_in=10,
                 total_tokens_out=2, total_cost=0.3),
        ev.Retry(**base, attempt=2, wait_s=0.25, error="429"),
        ev.Breaker(**base, name="model m@h:1", state="open", previous="closed", failures=5,
                   error="HTTP 500 ☃"),
        ev.Fallback(**base, from_model="openai:a", to_model="openai:b", reason="HTTP 503"),
        ev.CacheHit(**base, cache="tool", label="search_info", key="abc", call_id="c9"),
        ev.Memory(**base, action="compact", detail="summarised 3 turns", data={"k": [1.5e-9]}),
        ev.Checkpoint(**base, parent_id="ck-8", step=3, source="fork", nodes=["a"],
                      changed=["messages"]),
        ev.FinalAnswer(**base, text="done ✓"),
        ev.Error(**base, error_class="resource", message="disk full", hint="free space"),
        ev.Notice(**base, level="warning", text="note"),
        ev.InjectionFlagged(**base, call_id="c9", tool="web_fetch",
                            patterns=["ignore previous instructions"], excerpt="ïgnore"),
        ev.ResearchStep(**base, stage="verify", text="3 citation(s) checked: 2 supported",
                        data={"removed": 1, "nested": [{"n": None}]}),
        ev.Clarification(**base, question="Which bridge — ☃?", answer=None),
        ev.RunFinished(**base, status="stopped", reason="max steps", steps=3, tokens_in=10,
                       tokens_out=2, cost=0.30000000000000004),
    ]
    for seq, event in enumerate(made, start=100):
        event.seq = seq
    return made


DENIAL = "not from this test, thanks"


def _demo_with_denials(tmp_path: Path) -> None:
    """The demo at a terminal, every call that asks denied with ``DENIAL``."""
    run = TtyRun("run", "demo please", logs=tmp_path / "demo", launcher=CLI)
    assert answer_all(run, ["deny", DENIAL]) == 0, run.stderr[-3000:]


def test_json_round_trip_preserves_every_event_field(tmp_path: Path) -> None:
    _demo_with_denials(tmp_path)  # auto mode: the write and the shell command denied
    session_id = json.loads(run_cli("sessions", "list", "--json").stdout.splitlines()[0])["id"]
    real = from_json(run_cli("sessions", "show", session_id, "--json").stdout)
    assert {"approval_requested", "approval_decided"} <= {e.type for e in real.events}

    events = real.events + _every_kind_of_event(session_id)
    assert {e.type for e in events} == EVENT_TYPES
    doc = ExportDoc(
        session={**real.session, "meta": {"nested": {"a": [1, 2]}, "ü": "✓"}},
        events=events,
        branches=[*real.branches, {"head": "ck-9", "checkpoints": ["ck-8", "ck-9"], "label": "b"}],
        exported_at=1_700_000_000.123456,
    )
    text = to_json(doc)
    back = from_json(text, source="export.json")
    assert _dumps(back) == _dumps(doc)
    assert [type(e) for e in back.events] == [type(e) for e in doc.events]
    assert back.session == doc.session and back.branches == doc.branches
    assert (back.exported_at, back.version) == (doc.exported_at, EXPORT_VERSION)
    assert to_json(back) == text
    assert back.record().id == session_id


# ---- Markdown and HTML -------------------------------------------------------------------
class _Tags(HTMLParser):
    """Collects tags and attributes, and checks that elements nest properly."""

    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse_html(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed elements: {parser.stack}"
    return parser


def test_markdown_and_html_show_calls_decisions_results_answer_and_totals(
    tmp_path: Path,
) -> None:
    _demo_with_denials(tmp_path)  # auto mode: the write and the shell command denied
    session_id = json.loads(run_cli("sessions", "list", "--json").stdout.splitlines()[0])["id"]
    imported = from_json(run_cli("sessions", "show", session_id, "--json").stdout)
    doc = prepare_export(imported.record(), imported.events, imported.branches, secrets=[])
    md, page = to_markdown(doc), to_html(doc)
    parsed = _parse_html(page)
    html_text = "".join(parsed.text)

    calls = [e for e in doc.events if isinstance(e, ev.ToolCall)]
    finished = {e.call_id: e for e in doc.events if isinstance(e, ev.ToolFinished)}
    decided = [e for e in doc.events if isinstance(e, ev.ApprovalDecided)]
    assert {d.by for d in decided} == {"user", "policy"}
    for call in calls:
        args = json.dumps(call.args, indent=2, ensure_ascii=False)
        assert call.tool in md and call.tool in html_text
        assert args in md and args in html_text
        done = finished[call.call_id]
        line = done.result.splitlines()[0]
        assert line in md and line in html_text
        head = f"{done.status} · {done.duration_ms:.0f} ms"
        assert f"**Result:** {head}" in md and head in html_text
        if done.isolation:
            iso = f"isolation {done.isolation}"
            assert iso in md and iso in html_text
    for d in decided:
        who = "the user" if d.by == "user" else "the approval policy"
        verb = "denied" if d.decision == "deny" else "approved"
        expected = f"{verb} by {who} — reason: {d.reason}"
        assert expected in md and expected in html_text
    assert f"denied by the user — reason: {DENIAL}" in md

    answer = next(e for e in doc.events if isinstance(e, ev.FinalAnswer))
    first_line = answer.text.splitlines()[0]
    assert "### Final answer" in md and first_line in md
    assert first_line.replace("`", "") in html_text  # rendered Markdown: code spans become tags
    assert md.count(first_line) == 1, "the answer is also the last thought; show it once"

    finish = next(e for e in doc.events if isinstance(e, ev.RunFinished))
    for part in (f"{finish.tokens_in:,} tokens in", f"{finish.tokens_out:,} tokens out",
                 f"{finish.steps} steps", "status completed", "cost $0.0000"):
        assert part in md and part in html_text
    assert "**Run totals:**" in md and "Run totals:" in html_text
    assert doc.branches and doc.branches[0]["head"] in md and doc.branches[0]["head"] in page


def test_html_is_self_contained_and_escapes_what_tools_and_models_write() -> None:
    base = {"session_id": "s1", "run_id": "r1", "checkpoint_id": "k1"}
    events: list[ev.Event] = [
        ev.RunStarted(**base, seq=1, model="m", input="<b>hi</b> & bye"),
        ev.Thought(**base, seq=2, message_id="m", text=(
            "See ![pic](http://example.invalid/x.png) and [x](javascript:alert(1)) "
            "<script>alert('thought')</script>"
        )),
        ev.ToolCall(**base, seq=3, call_id="c", tool="shell_exec",
                    args={"command": "echo '</pre><script>alert(2)</script>'"}),
        ev.ToolFinished(**base, seq=4, call_id="c", tool="shell_exec", status="ok",
                        result="<script>alert('output')</script>\n<img src=x onerror=alert(3)>"),
        ev.FinalAnswer(**base, seq=5, text="<iframe src='http://example.invalid'></iframe>"),
    ]
    doc = prepare_export({"id": "s1", "title": "<title>t</title>"}, events)
    page = to_html(doc)
    parsed = _parse_html(page)
    assert set(parsed.tags) <= {
        "html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3",
        "table", "tr", "td", "section", "p", "code", "pre", "div", "strong", "em", "a",
        "details", "summary",
    }
    assert not [a for a in parsed.attrs if a[0] in ("src", "onerror")]  # nothing loads
    hrefs = [v for k, v in parsed.attrs if k == "href"]
    assert hrefs == ["http://example.invalid/x.png"]  # an image became a plain link
    assert "&lt;script&gt;alert(&#x27;output&#x27;)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;" in page
    assert "&lt;b&gt;hi&lt;/b&gt; &amp; bye" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page.lower()


def test_long_tool_output_is_truncated_in_markdown_and_folded_in_html() -> None:
    output = "\n".join(f"line {i:03d}" for i in range(500))
    base = {"session_id": "s1", "run_id": "r1"}
    events: list[ev.Event] = [
        ev.ToolCall(**base, seq=1, call_id="c", tool="shell_exec", args={"command": "seq"}),
        ev.ToolOutput(**base, seq=1, call_id="c", text="line 000"),
        ev.ThoughtDelta(**base, seq=1, message_id="m", text="thinking"),
        ev.ToolFinished(**base, seq=2, call_id="c", tool="shell_exec", status="ok",
                        result=output, duration_ms=5),
        ev.ToolCall(**base, seq=3, call_id="d", tool="shell_exec", args={"command": "echo"}),
        ev.ToolFinished(**base, seq=4, call_id="d", tool="shell_exec", status="ok",
                        result="short one", duration_ms=5),
    ]
    doc = prepare_export({"id": "s1"}, events)
    assert [e.type for e in doc.events] == ["tool_call", "tool_finished"] * 2  # live lines dropped
    md, page = to_markdown(doc), to_html(doc)
    assert "line 000" in md and "line 039" in md and "line 040" not in md
    assert "_… 460 more lines" in md
    assert "line 499" not in md
    details = page[page.index("<details>") : page.index("</details>")]
    assert "line 000" in details and "line 499" in details and "500 lines" in details
    assert page.count("<details>") == 1  # only the long output; the short one is shown as is
    assert "short one" in page[page.index("</details>") :]


# ---- secrets -------------------------------------------------------------------------------
def test_secrets_in_args_and_output_never_reach_an_export(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "hunter2-" + pysecrets.token_hex(8)  # no recognisable shape: only the list finds it
    shaped = "sk-" + pysecrets.token_hex(16)  # not in the list: found by its shape
    replies = [
        Reply(tool_calls=[ToolCallSpec("shell_exec", {"command": f"echo {secret} {shaped}"})]),
        Reply(text=f"The command printed {secret}."),
    ]
    with OpenAITestServer(replies) as server:
        use_server(monkeypatch, server)
        result = cli("run", f"print {secret}", "--json", "--approval", "yolo")
    assert result.returncode == 0, result.stderr
    assert secret in result.stdout and shaped in result.stdout  # the stream itself holds them
    finished = [e for e in json_events(result.stdout) if e["type"] == "tool_finished"]
    assert finished and secret in finished[0]["result"] and shaped in finished[0]["result"]

    imported = from_json(result.stdout)
    doc = prepare_export(imported.record(), imported.events, imported.branches, [secret])
    for name, text in _all_formats(doc).items():
        assert secret not in text, name
        assert shaped not in text, name
        assert REDACTED in text, name
    call = next(e for e in doc.events if isinstance(e, ev.ToolCall))
    assert call.args == {"command": f"echo {REDACTED} {REDACTED}"}
    assert doc.session["title"] == f"print {REDACTED}"
    # Identifiers are untouched, so the redacted document still imports and links up.
    assert [e.call_id for e in doc.events if isinstance(e, ev.ToolFinished)] == [call.call_id]
    assert _dumps(from_json(to_json(doc))) == _dumps(doc)
    # The input document is left as it was.
    assert any(secret in json.dumps(e.model_dump()) for e in imported.events)


def test_redact_finds_credential_shapes_and_escaped_secrets() -> None:
    quoted = 'pa"ss\\word-123'
    base = {"session_id": "s1", "run_id": "r1"}
    events: list[ev.Event] = [
        ev.ToolCall(**base, seq=1, call_id="c", tool="http", args={
            "headers": {"Authorization": "Basic dXNlcjpwYXNzd29yZA==", "api_key": "abc123def"},
            "url": "postgres://admin:s3cretpw@db.local/x",
        }, raw_args=json.dumps({"password": quoted})),
        ev.ToolFinished(**base, seq=2, call_id="c", tool="http", status="ok", result=(
            "Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9abc.def12345678\n"
            f"token={'ghp_' + 'a' * 36}\nAWS AKIAABCDEFGHIJKLMNOP\n"
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"
            "OPENAI_API_KEY=not-a-known-shape-value\nx stays, tokens_in: 1552 stays"
        )),
    ]
    doc = ExportDoc(session={"id": "s1", "title": "t"}, events=events)
    out = redact(doc, [quoted, "x", ""])  # "x" is a placeholder key: too short to redact
    text = to_json(out)
    for leaked in ("dXNlcjpwYXNzd29yZA", "abc123def", "s3cretpw", "eyJhbGciOi", "ghp_aaaa",
                   "AKIAABCDEFGHIJKLMNOP", "MIIE", "not-a-known-shape-value", "pa\\\"ss"):
        assert leaked not in text, leaked
    assert "x stays, tokens_in: 1552 stays" in text
    assert "postgres://admin:[REDACTED]@db.local/x" in text
    call = out.events[0]
    assert isinstance(call, ev.ToolCall) and call.raw_args == '{"password": "[REDACTED]"}'
    assert to_json(doc) != text and "abc123def" in to_json(doc)  # input not mutated


def test_secrets_from_environ_picks_credential_variables() -> None:
    env = {"OPENAI_API_KEY": "sk-abcdef123456", "GITHUB_TOKEN": "ghp_zzzzzzzz", "HOME": "/home/u",
           "MY_SECRET": "short", "DB_PASSWORD": "correct horse"}
    assert sorted(secrets_from_environ(env)) == ["correct horse", "ghp_zzzzzzzz", "sk-abcdef123456"]


# ---- branches ------------------------------------------------------------------------------
def _branched_session() -> list[ev.Event]:
    """Run A: k1 → k2 → k3. Run B (a fork at k2): k2 → k4 → k5."""
    out: list[ev.Event] = []

    def add(event: ev.Event) -> None:
        event.seq = len(out) + 1
        event.session_id = "s1"
        out.append(event)

    add(ev.RunStarted(run_id="A", input="first try"))
    for cid, parent in (("k1", None), ("k2", "k1")):
        add(ev.Checkpoint(run_id="A", checkpoint_id=cid, parent_id=parent))
    add(ev.ToolCall(run_id="A", checkpoint_id="k2", call_id="a1", tool="shell_exec", args={}))
    add(ev.Checkpoint(run_id="A", checkpoint_id="k3", parent_id="k2"))
    add(ev.FinalAnswer(run_id="A", checkpoint_id="k3", text="answer A"))
    add(ev.RunStarted(run_id="B", checkpoint_id="k2", input="second try"))
    add(ev.Checkpoint(run_id="B", checkpoint_id="k4", parent_id="k2"))
    add(ev.Checkpoint(run_id="B", checkpoint_id="k5", parent_id="k4"))
    add(ev.FinalAnswer(run_id="B", checkpoint_id="k5", text="answer B"))
    return out


def test_branches_from_checkpoint_events_and_select_branch() -> None:
    events = _branched_session()
    branches = branches_from_events(events)
    assert [(b["head"], b["checkpoints"]) for b in branches] == [
        ("k3", ["k1", "k2", "k3"]),
        ("k5", ["k1", "k2", "k4", "k5"]),
    ]
    assert "first try" in branches[0]["label"] and "second try" in branches[1]["label"]

    doc = ExportDoc(session={"id": "s1"}, events=events, branches=branches)
    md = to_markdown(doc)
    assert "forks after `k2`" in md and "forks after <code>k2</code>" in to_html(doc)

    b = select_branch(doc, "k5")
    answers = [e.text for e in b.events if isinstance(e, ev.FinalAnswer)]
    assert answers == ["answer B"]
    # Run A's start and its k1, k2 events are shared; k3 and its answer are not.
    assert [e.seq for e in b.events] == [1, 2, 3, 4, 7, 8, 9, 10]
    assert b.branches == [branches[1]]
    with pytest.raises(OpenManusError, match="no branch matches 'k9'") as info:
        select_branch(doc, "k9")
    assert info.value.error_class == "user"


# ---- bad input -----------------------------------------------------------------------------
# Fixed times: the texts are the tests' ids, which must be the same in every pytest-xdist worker.
_EVENT = json.dumps(ev.Notice(session_id="s1", seq=1, ts=1.0, text="hi").model_dump())
_OTHER = json.dumps(ev.Notice(session_id="s2", seq=2, ts=2.0, text="hi").model_dump())
_EXPORT = to_json(
    ExportDoc(session={"id": "s1"}, events=[ev.Notice(ts=1.0, text="x")], exported_at=3.0)
)
_SESSION_LINE = 1 + next(i for i, line in enumerate(_EXPORT.splitlines()) if '"session"' in line)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "in.jsonl: empty"),
        ("  \n\n", "in.jsonl: empty"),
        (f"{_EVENT}\nnot json at all\n", "in.jsonl line 2: not valid JSON"),
        (f"\n{_EVENT}\n[1, 2]\n", "in.jsonl line 3: expected a JSON object"),
        ('{"type": "bogus", "seq": 1}', "in.jsonl line 1: unknown event type 'bogus'"),
        ('{"seq": 1}\n{"seq": 2}', 'in.jsonl line 1: not an event (no "type" field)'),
        ('{"type": "tool_call", "seq": 1}', "line 1: not a valid tool_call event: call_id"),
        (f"{_EVENT}\n{_OTHER}", "in.jsonl line 2: event of session 's2' in a stream of session"),
        (f"{_EVENT}\n{_EVENT}", "in.jsonl line 2: seq 1 repeats the event on line 1"),
        ('{"type": "thought_delta", "message_id": "m", "text": "x"}', "no stored events"),
        ("[1, 2]", "neither an OpenManus export nor JSON lines"),
        (_EXPORT.replace('"version": 1', '"version": 99'), "version 99 is newer"),
        (_EXPORT.replace('"notice"', '"nope"'), "in.jsonl: events[0] (seq 0): unknown event type"),
        (
            _EXPORT.replace('"session": {', '"session": {"x": 1, "y'),
            f"in.jsonl line {_SESSION_LINE}: not valid JSON",
        ),
        (_EXPORT[: len(_EXPORT) // 2], "in.jsonl line"),
        (_EXPORT.replace('"branches": []', '"branches": [{"head": 1}]'), "branches[0] must"),
    ],
)
def test_bad_input_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(OpenManusError) as info:
        from_json(text, source="in.jsonl")
    assert message in str(info.value)
    assert info.value.error_class == "user" and "\n" not in str(info.value)


def test_bad_bytes_and_files_written_to_disk(tmp_path: Path) -> None:
    with pytest.raises(OpenManusError, match="not UTF-8"):
        from_json(b"\xff\xfe{}", source="x")
    doc = prepare_export({"id": "s1", "title": "t"}, _branched_session(), secrets=[])
    path = tmp_path / "export.json"
    path.write_text(to_json(doc), encoding="utf-8")
    back = from_json(path.read_bytes(), source=str(path))
    assert _dumps(back) == _dumps(doc)
