"""Approval rules: pattern matching (compound shell commands, path globs, deny wins), the rules
table (CRUD, examples, hits), the reach preview over stored calls, and "always allow" through the
real runtime and the loopback model server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import use_server
from openai_server import OpenAITestServer, Reply, ToolCallSpec, script_responder

from openmanus_tui import events as ev
from openmanus_tui.agent.approval import ApprovalPolicy, Decision
from openmanus_tui.agent.rules import (
    Rule,
    RuleError,
    RulePattern,
    decide,
    explain_miss,
    split_command,
    suggest_pattern,
)
from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.store.db import Database, SessionRecord
from openmanus_tui.store.rules import RuleStore, rule_reach
from openmanus_tui.tools.builtin import build_registry


def rule(text: str, action: str = "allow", scope: str = "global", rule_id: int = 1) -> Rule:
    return Rule(RulePattern.parse(text), action, scope, id=rule_id)  # type: ignore[arg-type]


def shell(command: str) -> dict[str, Any]:
    return {"command": command}


# ---- matching ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("git status", True),
        ("git status -s", True),
        ("git  status   --short", True),  # whitespace is normalised
        ("git statusx", False),
        ("git push", False),
        ("git status && rm -rf build", False),  # every part must match
        ("git status; rm -rf build", False),
        ("git status || rm -rf build", False),
        ("git status | sh", False),
        ("git status\nrm -rf build", False),
        ("git status & rm -rf build", False),
        ("(git status) && (rm x)", False),
        ("git status $(rm -rf build)", False),  # substitution is never allowed by a pattern
        ("git status `rm -rf build`", False),
        ("git status <(rm x)", False),
        ('git status "unbalanced', False),
        ('git status "a && b"', True),  # quoted operators are not operators
        ("git status > out.txt", True),  # a redirection belongs to its command
    ],
)
def test_shell_allow_rule_needs_every_part(command: str, allowed: bool) -> None:
    decision = decide([rule("shell_exec(git status *)")], "shell_exec", shell(command))
    assert (decision is not None and decision.action == "allow") is allowed


def test_compound_command_covered_by_several_allow_rules() -> None:
    rules = [rule("shell_exec(git status *)", rule_id=1), rule("shell_exec(ls *)", rule_id=2)]
    decision = decide(rules, "shell_exec", shell("git status | ls -l && ls"))
    assert decision is not None and decision.action == "allow"
    assert decision.ids == [1, 2]
    assert decide(rules, "shell_exec", shell("git status && cat x")) is None


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf /tmp/x",
        "echo ok && rm -rf x",
        "FOO=1 rm -rf x",  # assignments in front
        "env nohup /bin/rm -rf x",  # wrappers and a directory in front
        'bash -c "ls; rm -rf x"',  # a shell's -c body
        "echo $(rm -rf x)",
        "echo `rm -rf x`",
    ],
)
def test_deny_rule_finds_the_command_anywhere_and_wins(command: str) -> None:
    rules = [rule("shell_exec", "allow", rule_id=1), rule("shell_exec(rm *)", "deny", rule_id=2)]
    decision = decide(rules, "shell_exec", shell(command))
    assert decision is not None and decision.action == "deny" and decision.ids == [2]


def test_precedence_deny_then_ask_then_allow() -> None:
    allow = rule("file_write(src/**)", "allow", rule_id=1)
    ask = rule("file_write(src/secrets/**)", "ask", rule_id=2)
    deny = rule("file_write(src/secrets/keys.txt)", "deny", rule_id=3)
    rules = [allow, ask, deny]
    assert decide(rules, "file_write", {"path": "src/a.py"}).action == "allow"  # type: ignore[union-attr]
    assert decide(rules, "file_write", {"path": "src/secrets/x"}).action == "ask"  # type: ignore[union-attr]
    assert decide(rules, "file_write", {"path": "src/secrets/keys.txt"}).action == "deny"  # type: ignore[union-attr]
    # The narrowest scope is reported first among rules of one action.
    broad = rule("file_write(**)", "allow", "global", rule_id=4)
    narrow = rule("file_write(src/*)", "allow", "session", rule_id=9)
    assert decide([broad, narrow], "file_write", {"path": "src/a"}).ids == [9]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("src/**", "src", True),
        ("src/**", "src/a.py", True),
        ("src/**", "src/deep/er/a.py", True),
        ("src/**", "./src/../src/a.py", True),
        ("src/**", "srcx/a.py", False),
        ("src/**", "src/../secrets.txt", False),
        ("src/**", "../src/a.py", False),  # leaves the workspace
        ("src/**", "/src/a.py", False),  # absolute
        ("**", "../outside", False),
        ("*.py", "a.py", True),
        ("*.py", "src/a.py", False),  # * stays within one folder
        ("**/*.py", "a.py", True),
        ("**/*.py", "src/x/a.py", True),
        ("src/?.py", "src/a.py", True),
    ],
)
def test_file_rules_glob_the_normalised_workspace_path(
    pattern: str, path: str, matches: bool
) -> None:
    assert RulePattern.parse(f"file_write({pattern})").matches(
        "file_write", {"path": path}
    ) is matches


def test_tool_names_bare_rules_mcp_and_json_args() -> None:
    assert RulePattern.parse("file_read").matches("file_read", {"path": "anything"})
    assert not RulePattern.parse("file_read").matches("file_write", {"path": "a"})
    server = RulePattern.parse("mcp__files")
    assert server.matches("mcp__files__read_file", {})
    assert not server.matches("mcp__filesystem__read_file", {})
    assert RulePattern.parse("mcp__files__*").matches("mcp__files__write", {})
    search = RulePattern.parse('search_info(*"query": "weather *)')
    assert search.matches("search_info", {"query": "weather in Paris", "max_results": 3})
    assert not search.matches("search_info", {"query": "news"})
    # Claude Code's ``:*`` suffix is a prefix at a word boundary.
    npm = RulePattern.parse("shell_exec(npm run test:*)")
    assert npm.matches("shell_exec", shell("npm run test"))
    assert npm.matches("shell_exec", shell("npm run test -- -k x"))
    assert not npm.matches("shell_exec", shell("npm run testx"))


@pytest.mark.parametrize("text", ["", "shell_exec(", "two words", "file_write()", "x(a)b"])
def test_bad_rules_are_one_line_errors(text: str) -> None:
    with pytest.raises(RuleError) as info:
        RulePattern.parse(text)
    assert "\n" not in info.value.message


def test_split_and_suggest() -> None:
    assert split_command("a && b | c; d\ne") == ["a", "b", "c", "d", "e"]
    assert split_command("echo 'x y' >> log") == ["echo x y >> log"]
    assert suggest_pattern("shell_exec", shell("git status -s && ls")) == "shell_exec(git status *)"
    assert suggest_pattern("shell_exec", shell("ls -la")) == "shell_exec(ls *)"
    assert suggest_pattern("shell_exec", shell("python3 s.py")) == "shell_exec(python3 s.py *)"
    assert suggest_pattern("file_write", {"path": "src/pkg/a.py"}) == "file_write(src/pkg/**)"
    assert suggest_pattern("file_write", {"path": "a.py"}) == "file_write(a.py)"
    assert suggest_pattern("list_files", {"path": "."}) == "list_files(**)"
    assert suggest_pattern("code_exec", {"code": "print(1)"}) == "code_exec"
    # A suggestion always covers its own (simple) call.
    for tool, args in [("shell_exec", shell("git log --oneline")),
                       ("file_edit", {"path": "docs/x.md"}), ("search_info", {"query": "q"})]:
        assert explain_miss(RulePattern.parse(suggest_pattern(tool, args)), tool, args) is None


def test_explain_miss_says_why() -> None:
    git = RulePattern.parse("shell_exec(git status *)")
    assert explain_miss(git, "shell_exec", shell("git status && npm test")) == \
        "not covered: 'npm test'"
    assert explain_miss(git, "shell_exec", shell("git status && npm test"),
                        [rule("shell_exec(npm test*)")]) is None
    assert "$(...)" in (explain_miss(git, "shell_exec", shell("git status $(x)")) or "")
    assert "file_write" in (explain_miss(git, "file_write", {"path": "a"}) or "")
    assert "blocked" in (explain_miss(RulePattern.parse("shell_exec"), "shell_exec",
                                      shell("rm x"), [rule("shell_exec(rm *)", "deny")]) or "")


def test_policy_modes_and_rules() -> None:
    registry = build_registry()
    allow = rule("shell_exec(echo *)", "allow", rule_id=1)
    deny = rule("file_read(secret*)", "deny", rule_id=2)
    ask = rule("file_write(**)", "ask", rule_id=3)
    for mode in ("ask", "auto"):
        policy = ApprovalPolicy(mode, registry, rules=[allow, deny, ask])
        verdict = policy.evaluate("shell_exec", shell("echo hi"))
        assert verdict.action == "allow" and verdict.rule == "shell_exec(echo *)"
        assert verdict.rule_ids == [1]
        assert policy.evaluate("shell_exec", shell("ls")).action == "ask"
    yolo = ApprovalPolicy("yolo", registry, rules=[allow, deny, ask])
    assert yolo.evaluate("file_read", {"path": "secret.txt"}).action == "deny"  # even in yolo
    assert yolo.evaluate("file_write", {"path": "a"}).action == "ask"  # ask rules ask in yolo
    assert yolo.evaluate("shell_exec", shell("echo hi")).rule is None  # the mode allowed it
    # An allow rule never lifts the below-minimum-isolation guard.
    guarded = ApprovalPolicy("ask", registry, force_ask_execute=True, rules=[allow])
    assert guarded.evaluate("shell_exec", shell("echo hi")).action == "ask"


# ---- the rules table -----------------------------------------------------------------------
async def open_db(tmp_path) -> Database:  # type: ignore[no-untyped-def]
    db = await Database.open(tmp_path / "rules.db")
    await db.create_session(SessionRecord(id="s1", workspace="/work/p1"))
    await db.create_session(SessionRecord(id="s2", workspace="/work/p1"))
    await db.create_session(SessionRecord(id="s3", workspace="/work/p2"))
    return db


async def test_store_crud_scopes_examples_and_hits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = await open_db(tmp_path)
    store = RuleStore(db)
    try:
        a = await store.add("shell_exec( git   status * )", scope="session", session_id="s1",
                            match=["git status", "git status -s"], not_match=["git push"])
        assert a.text == "shell_exec(git status *)" and a.id is not None
        assert await store.add("shell_exec(git status *)", scope="session", session_id="s1") == a
        b = await store.add("file_write(src/**)", scope="project", project="/work/p1")
        c = await store.add("shell_exec(rm *)", action="deny", scope="global")
        with pytest.raises(RuleError, match="listed as not_match"):
            await store.add("shell_exec(git *)", not_match=["git push"], scope="global")
        with pytest.raises(RuleError, match="does not match its example"):
            await store.add("file_write(src/*)", match=["src/a/b.py"], scope="global")
        with pytest.raises(RuleError, match="needs a session"):
            await store.add("file_read", scope="session")
        with pytest.raises(RuleError, match="unknown action"):
            await store.add("file_read", action="maybe", scope="global")  # type: ignore[arg-type]

        ids = lambda rules: {r.id for r in rules}  # noqa: E731
        assert ids(await store.applicable("s1", "/work/p1")) == {a.id, b.id, c.id}
        assert ids(await store.applicable("s2", "/work/p1")) == {b.id, c.id}
        assert ids(await store.applicable("s3", "/work/p2")) == {c.id}
        assert [r.scope for r in await store.list()] == ["global", "project", "session"]

        await store.record_hits([a.id, a.id, c.id], ts=1000.0)  # type: ignore[list-item]
        got = await store.get(a.id)  # type: ignore[arg-type]
        assert (got.hits, got.last_hit) == (2, 1000.0)
        edited = await store.update(a.id, text="shell_exec(git *)", not_match=[])  # type: ignore[arg-type]
        assert edited.text == "shell_exec(git *)" and edited.hits == 2
        assert edited.match == ["git status", "git status -s"]
        with pytest.raises(RuleError, match="listed as not_match"):
            await store.update(a.id, not_match=["git log"])  # type: ignore[arg-type]
        await store.delete(b.id)  # type: ignore[arg-type]
        assert ids(await store.list()) == {a.id, c.id}
        # Rules of a deleted session go with it (the next time the table is opened).
        await db.delete_session("s1")
        assert ids(await RuleStore(db).list()) == {c.id}
    finally:
        await db.close()


async def test_rule_reach_over_stored_calls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = await open_db(tmp_path)
    calls = [
        ("s1", "git status"), ("s1", "git status -s && rm -rf x"), ("s2", "git status"),
        ("s3", "git status --short"), ("s3", "ls"),
    ]
    try:
        for n, (sid, command) in enumerate(calls, 1):
            await db.append_event(ev.ToolCall(
                session_id=sid, seq=n, call_id=f"c{n}", tool="shell_exec",
                args=shell(command), ts=time.time() + n,
            ))
        await db.append_event(ev.ToolCall(session_id="s1", seq=90, call_id="bad",
                                          tool="shell_exec", args=shell("git status"),
                                          invalid="schema"))
        await db.append_event(ev.ToolCall(session_id="s1", seq=91, call_id="fw",
                                          tool="file_write", args={"path": "git status"}))
        everywhere = await rule_reach(db, "shell_exec(git status *)")
        assert everywhere.count == 3 and everywhere.examined == 5
        assert [c.call_id for c in everywhere.calls] == ["c4", "c3", "c1"]  # newest first
        assert (await rule_reach(db, "shell_exec(git status *)", scope="session",
                                 session_id="s1")).count == 1
        project = await rule_reach(db, "shell_exec(git status *)", scope="project",
                                   project="/work/p1", exclude_call="c3")
        assert [c.call_id for c in project.calls] == ["c1"]
        # A deny rule reaches every call with one matching part.
        assert (await rule_reach(db, "shell_exec(rm *)", action="deny")).count == 1
        capped = await rule_reach(db, "shell_exec", limit=2)
        assert capped.count == 5 and len(capped.calls) == 2
        assert (await rule_reach(db, "file_write(git*)")).count == 1
    finally:
        await db.close()


# ---- "always allow" through the runtime -------------------------------------------------------
@pytest.fixture
def server(llm_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAITestServer:
    use_server(monkeypatch, llm_server)
    return llm_server


async def test_always_allow_stores_a_rule_that_decides_later_calls(
    server: OpenAITestServer,
) -> None:
    server.set_responder(script_responder([
        Reply(tool_calls=[ToolCallSpec("shell_exec", shell("echo one > one.txt"))]),
        Reply(tool_calls=[ToolCallSpec("shell_exec", shell("echo two > two.txt"))]),
        Reply(tool_calls=[ToolCallSpec("shell_exec", shell("touch three.txt"))]),
        Reply(tool_calls=[ToolCallSpec("shell_exec", shell("echo four && touch four.txt"))]),
        Reply(text="Done."),
    ]))
    asked: list[str] = []

    async def approver(request: ev.ApprovalRequested) -> dict[str, Decision]:
        (call,) = request.calls
        asked.append(call.args["command"])
        if call.args["command"].startswith("echo one"):
            return {call.call_id: Decision(decision="always", rule="shell_exec(echo *)",
                                           scope="project")}
        return {call.call_id: Decision(decision="deny", reason="not that one")}

    runtime = await Runtime.open(load_settings({"approval": {"mode": "ask"}}))
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        outcome = await session.run("go", approver=approver, on_event=seen.append)
        (stored,) = await session.rules.list()
        # A second session of the same workspace gets the project rule, another one not.
        same = await runtime.create_session(workspace=session.workspace)
        other = await runtime.create_session()
        same_rules = await same.rules.applicable(same.id, str(same.workspace))
        other_rules = await other.rules.applicable(other.id, str(other.workspace))
    finally:
        await runtime.close()

    assert outcome.status == "completed"
    # Asked for the first call and for the two that the rule does not cover, not the second.
    assert asked == ["echo one > one.txt", "touch three.txt", "echo four && touch four.txt"]
    assert (session.workspace / "two.txt").read_text() == "two\n"
    assert not (session.workspace / "three.txt").exists()
    decided = [e for e in seen if isinstance(e, ev.ApprovalDecided)]
    assert [(e.decision, e.by) for e in decided] == [
        ("always", "user"), ("approve", "rule"), ("deny", "user"), ("deny", "user"),
    ]
    assert decided[0].rule == "shell_exec(echo *)" and decided[0].scope == "project"
    assert decided[1].rule == "shell_exec(echo *)"
    assert (stored.text, stored.scope, stored.project) == (
        "shell_exec(echo *)", "project", str(session.workspace))
    assert stored.hits == 1 and stored.last_hit is not None
    assert [r.id for r in same_rules] == [stored.id] and other_rules == []


async def test_a_rule_that_does_not_cover_its_call_is_not_saved(
    server: OpenAITestServer,
) -> None:
    server.set_responder(script_responder([
        Reply(tool_calls=[ToolCallSpec("shell_exec", shell("echo a && touch b"))]),
        Reply(text="Done."),
    ]))

    async def approver(request: ev.ApprovalRequested) -> dict[str, Decision]:
        (call,) = request.calls
        return {call.call_id: Decision(decision="always", rule="shell_exec(echo *)")}

    runtime = await Runtime.open(load_settings({"approval": {"mode": "ask"}}))
    seen: list[ev.Event] = []
    try:
        session = await runtime.create_session()
        outcome = await session.run("go", approver=approver, on_event=seen.append)
        rules = await session.rules.list()
    finally:
        await runtime.close()
    assert outcome.status == "completed" and rules == []
    notice = next(e for e in seen if isinstance(e, ev.Notice) and "not saved" in e.text)
    assert "not covered: 'touch b'" in notice.text
    decided = next(e for e in seen if isinstance(e, ev.ApprovalDecided))
    assert decided.decision == "approve" and decided.rule is None  # approved once
    assert (session.workspace / "b").exists()


async def test_deny_rule_blocks_in_yolo_and_counts_hits(server: OpenAITestServer) -> None:
    server.set_responder(script_responder([
        Reply(tool_calls=[ToolCallSpec("shell_exec", shell("touch keep.txt && rm -f x"))]),
        Reply(text="Done."),
    ]))
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    try:
        await RuleStore(runtime.db).add("shell_exec(rm *)", action="deny", scope="global")
        session = await runtime.create_session()
        outcome = await session.run("go")
        events = await runtime.db.events(session.id)
        (stored,) = await session.rules.list()
    finally:
        await runtime.close()
    assert outcome.status == "completed"
    finished = next(e for e in events if isinstance(e, ev.ToolFinished))
    assert finished.status == "denied" and "blocked by rule shell_exec(rm *)" in finished.result
    assert not (session.workspace / "keep.txt").exists()
    assert stored.hits == 1
