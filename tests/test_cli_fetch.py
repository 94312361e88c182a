"""``openmanus fetch URL [--json]`` against the loopback fixture web server: the source record
with its scores, one line and exit 2 for a refused URL."""

from __future__ import annotations

import json

from conftest import cli, run_cli
from web_fixture import WebFixture

ALLOW = {"OPENMANUS_NETWORK__ALLOW_PRIVATE_ADDRESSES": "true"}


def test_fetch_prints_the_record_as_json_when_private_addresses_are_allowed(
    web: WebFixture,
) -> None:
    url = f"http://127.0.0.1:{web.port}/page"
    done = run_cli("fetch", url, "--json", env=ALLOW)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["title"] == "Loopback fixture page"
    assert (record["published"], record["domain"], record["author"]) == (
        "2025-06-01", "127.0.0.1", "Fixture Author",
    )  # fmt: skip
    cred = record["credibility"]
    assert 0 <= cred["value"] <= 1
    assert {f["name"] for f in cred["factors"]} >= {"domain class", "author", "date", "HTTPS"}
    assert cred["value"] == round(sum(f["effect"] for f in cred["factors"]), 2)
    assert 0 < record["freshness"]["value"] <= 1
    assert record["freshness"]["factors"][0]["detail"] == "published 2025-06-01"
    assert record["site"] is None  # no site name on the page: not the host name instead
    assert "number" not in record  # not registered in a session


def test_without_the_setting_the_same_fetch_is_refused_in_one_line(web: WebFixture) -> None:
    url = f"http://127.0.0.1:{web.port}/page"
    done = run_cli("fetch", url, "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"openmanus: refused {url}: 127.0.0.1 is loopback; set "
        "network.allow_private_addresses = true to allow it\n"
    )
    assert web.requests == []


def test_text_output_the_hosts_setting_and_a_session(web: WebFixture) -> None:
    env = {
        **ALLOW,
        "OPENMANUS_NETWORK__HOSTS": '{"stats.energy-agency.gov": "127.0.0.1"}',
        "OPENMANUS_SOURCES__HALF_LIFE_DAYS": "36500",
    }
    url = f"http://stats.energy-agency.gov:{web.port}/report-2024.html"
    done = cli("fetch", url, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Renewables 2024: solar capacity statistics"
    assert "  author       Maria Okafor" in lines and "  published    2024-03-05" in lines
    assert "    +0.90 domain class: stats.energy-agency.gov: government (gov)" in lines
    assert "    -0.05 HTTPS: no (plain HTTP)" in lines
    assert "          half-life: 36500 days" in lines
    assert web.requests == [("stats.energy-agency.gov", "/report-2024.html")]
    # the second time it comes from the cache, and --session registers it
    cli("run", "--model", "scripted:demo", "--approval", "yolo", "hello", env=env)
    session = json.loads(cli("sessions", "list", "--json", env=env).stdout.splitlines()[0])["id"]
    again = cli("fetch", url, "--json", "--session", session, env=env)
    record = json.loads(again.stdout)
    assert record["from_cache"] and record["number"] == 1 and record["session_id"] == session
    assert len(web.requests) == 1


def test_blocked_domains_unknown_sessions_and_unreachable_pages(web: WebFixture) -> None:
    blocked = cli(
        "fetch", "https://www.blocked.example.com/x",
        env={"OPENMANUS_NETWORK__BLOCKED_DOMAINS": '["blocked.example.com"]'},
    )  # fmt: skip
    assert blocked.returncode == 2
    assert "under the blocked domain blocked.example.com" in blocked.stderr
    assert len(blocked.stderr.splitlines()) == 1
    unknown = cli("fetch", f"http://127.0.0.1:{web.port}/page", "--session", "nope", env=ALLOW)
    assert unknown.returncode == 2 and "no session matches 'nope'" in unknown.stderr
    missing = cli("fetch", f"http://127.0.0.1:{web.port}/missing", env=ALLOW)
    assert missing.returncode == 1
    assert missing.stderr.startswith("openmanus: fetch failed: ") and "HTTP 404" in missing.stderr
    bad = cli("fetch", "ftp://example.com/file")
    assert bad.returncode == 2 and "only http and https" in bad.stderr
