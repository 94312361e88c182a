"""``openmanus research``, ``openmanus research verify`` and ``openmanus run --agent``, through
the command line's real parsing and printing (``cli.main`` in-process), with the loopback model
server, the loopback fixture web server and real workspace files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import cli
from openai_server import OpenAITestServer
from test_research_graph import DOCS, no_web_search, responder
from web_fixture import WebFixture


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    for name, text in DOCS.items():
        (ws / name).write_text(text)
    return ws


def _model_env(server: OpenAITestServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test",
            "OPENMANUS_MODEL__NAME": "test-model"}


def test_research_writes_a_verified_report_and_its_json(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    with OpenAITestServer(responder) as server:
        proc = cli("research", "When did the harbour bridge open?", "--workspace",
                   str(workspace), "--source", str(workspace / "tolls.md"), "--depth", "quick",
                   "--approval", "yolo", "--format", "json", "-o", str(out),
                   env=_model_env(server))
    assert proc.returncode == 0, proc.stderr
    assert "research · verify" in proc.stdout and "removed" in proc.stdout
    data = json.loads(out.read_text())
    assert data["query"] == "When did the harbour bridge open?"
    # Numbers follow the report's order of citation; the reading list was read all the same.
    reading = [s for s in data["sources"] if s["from_reading_list"]]
    assert [s["location"] for s in reading] == ["file:tolls.md"]
    assert {v["status"] for v in data["verification"]["verdicts"]} >= {
        "supported", "fabricated", "misquote", "number_not_found"}
    assert "[9]" not in data["report"].split("## Citation check")[0]
    assert {"content", "source", "relevance", "credibility", "freshness", "key_points",
            "supporting_evidence"} <= set(data["findings"][0])


def test_research_refuses_a_source_outside_the_workspace(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.md"
    outside.write_text("# x\n")
    proc = cli("research", "Q?", "--workspace", str(workspace), "--source", str(outside))
    assert proc.returncode == 2
    assert "outside the workspace" in proc.stderr and "Traceback" not in proc.stderr


def _report(path: Path, body: str, refs: list[tuple[int, str, str]]) -> Path:
    lines = [body, "", "## References", ""]
    lines += [f"[{n}] {title} — {loc}" for n, title, loc in refs]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_verify_names_a_fabricated_citation_and_a_misquote_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bridge.md").write_text(DOCS["bridge.md"])
    report = _report(
        tmp_path / "report.md",
        "The harbour bridge opened in 1932 [1]. Martians painted it [2].\n"
        'The mayor called it "a marvel of glass and silk" [1].',
        [(1, "Harbour bridge history", "bridge.md")],
    )
    proc = cli("research", "verify", str(report))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("[1] supported")
    assert lines[1].startswith("[2] FABRICATED") and "Martians" in lines[1]
    assert lines[2].startswith("[1] MISQUOTE") and "a marvel of glass and silk" in lines[2]
    assert lines[3] == "1 of 3 citations supported (support threshold 0.5)"


def test_verify_a_clean_report_against_a_fetched_page_exits_0(tmp_path: Path) -> None:
    with WebFixture() as web:
        url = f"http://127.0.0.1:{web.port}/page"
        report = _report(
            tmp_path / "report.md",
            "Wind generation supplied 18.5% of electricity in the example grid during 2024 [1].",
            [(1, "Loopback fixture page", url)],
        )
        env = {"OPENMANUS_NETWORK__ALLOW_PRIVATE_ADDRESSES": "true"}
        clean = cli("research", "verify", str(report), "--json", env=env)
        refused = cli("research", "verify", str(report))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    data = json.loads(clean.stdout)
    assert data["ok"] and [v["status"] for v in data["verdicts"]] == ["supported"]
    # Without the setting, the same page is refused by the network policy: unreadable, exit 1.
    assert refused.returncode == 1
    assert re.search(r"^\[1\] UNREADABLE: .*(private|loopback)", refused.stdout, re.M | re.I)


def test_verify_with_a_session_uses_its_registry(workspace: Path) -> None:
    with OpenAITestServer(responder) as server:
        proc = cli("research", "When did the harbour bridge open?", "--workspace",
                   str(workspace), "--approval", "yolo", "-o", str(workspace / "r.md"),
                   env=_model_env(server))
    assert proc.returncode == 0, proc.stderr
    session = re.search(r"session (\d{8}-\d{6}-[0-9a-f]+)", proc.stdout).group(1)  # type: ignore[union-attr]
    report = workspace / "r.md"
    checked = cli("research", "verify", str(report), "--session", session)
    assert checked.returncode == 0, checked.stdout
    # A source the session never read is not fetched: it cannot support anything.
    text = report.read_text().replace("file:gazette.md", "file:nowhere.md")
    report.write_text(text)
    checked = cli("research", "verify", str(report), "--session", session)
    assert checked.returncode == 1
    assert "not a source of this session" in checked.stdout


def test_verify_bad_input_is_one_line(tmp_path: Path) -> None:
    proc = cli("research", "verify", str(tmp_path / "missing.md"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"openmanus: research verify: no such file: {tmp_path / 'missing.md'}"]


def test_run_agent_research_uses_the_research_graph(workspace: Path) -> None:
    proc = cli("run", "When did the harbour bridge open?", "--agent", "research",
               "--workspace", str(workspace), "--approval", "yolo", "--json",
               env={"OPENMANUS_MODEL__PROVIDER": "scripted", "OPENMANUS_MODEL__NAME": "demo"})
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["type"] == "run_started" and events[0]["profile"] == "research"
    assert any(e["type"] == "research_step" and e["stage"] == "verify" for e in events)
    answer = next(e for e in events if e["type"] == "final_answer")["text"]
    assert "## References" in answer and "1932" in answer


def test_run_agent_rejects_an_unknown_profile() -> None:
    proc = cli("run", "hello", "--agent", "poet")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("openmanus: run: --agent 'poet'")


def test_config_validate_rejects_an_unknown_profile(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[agent]\nprofile = "poet"\n')
    proc = cli("config", "validate", env={"OPENMANUS_CONFIG": str(config)})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "agent.profile" in lines[0] and "Traceback" not in proc.stderr



def test_research_usage_mistakes_are_one_line(workspace: Path) -> None:
    for args, message in [
        (("research", "Q?", "--allow-domain", "https://x.example/a"),
         "openmanus: research: --allow-domain: 'https://x.example/a' is not a domain"),
        (("research", "verify", "r.md", "--depth", "quick"),
         "openmanus: research verify: --depth is for research QUESTION"),
        (("research", "verify"), "openmanus: research verify: give one REPORT.md"),
        (("research", "Q?", "--session", "x"), "openmanus: research: --session is for"),
    ]:
        proc = cli(*args, "--workspace", str(workspace)) if args[1] != "verify" else cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), lines


_ = no_web_search  # autouse, from test_research_graph: no test here searches the internet


def test_allow_domain_refuses_other_sources_before_any_lookup(
    workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    with OpenAITestServer(responder) as server:
        proc = cli("research", "When did the harbour bridge open?", "--workspace",
                   str(workspace), "--allow-domain", "example.org", "--source",
                   "https://news.dailyclarion.com/solar-boom.html", "--approval", "yolo",
                   "--depth", "quick", "--format", "json", "-o", str(out),
                   env=_model_env(server))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    [skipped] = data["metadata"]["skipped"]
    assert skipped["id"].startswith("https://news.dailyclarion.com")
    assert "allowed" in skipped["reason"] and "example.org" in skipped["reason"]
    assert data["metadata"]["allow_domains"] == ["example.org"]
    assert all(s["location"].startswith("file:") for s in data["sources"])
