"""The command line's side of issue 16: a run that falls back says so, ``doctor`` shows the
breaker another process opened, ``cache stats|clear`` (the real loopback model server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, use_server
from openai_server import OpenAITestServer, Reply


@pytest.fixture
def fallback():
    with OpenAITestServer([Reply(text="the fallback answers")],
                          models=("fallback-model",)) as server:
        yield server


def test_run_falls_back_and_doctor_shows_the_open_breaker(
    llm_server: OpenAITestServer, fallback: OpenAITestServer, monkeypatch, isolated_env: Path
):
    use_server(monkeypatch, llm_server)
    llm_server.inject("status", status=502, times=10**6)
    (isolated_env / "config.toml").write_text(
        "[model]\nmax_retries = 1\n"
        f'fallbacks = ["openai:fallback-model@{fallback.base_url}"]\n'
        "[resilience]\nfailure_threshold = 2\n"
    )
    done = cli("run", "--approval", "yolo", "hello")
    assert done.returncode == 0, done.stderr
    assert "the fallback answers" in done.stdout
    name = f"model test-model@127.0.0.1:{llm_server.port}"
    assert f"⚡ circuit breaker {name} opened after 2 failures" in done.stdout + done.stderr
    assert "fell back from openai:test-model to openai:fallback-model" in done.stdout + done.stderr
    doctor = cli("doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert f"fallback: openai:fallback-model at {fallback.base_url}" in doctor.stdout
    assert f"  {name}: OPEN (probe in " in doctor.stdout
    assert "HTTP 502" in doctor.stdout


def test_cache_stats_and_clear(llm_server: OpenAITestServer, monkeypatch, isolated_env: Path):
    use_server(monkeypatch, llm_server)
    llm_server.set_responder([Reply(text="cached answer")])
    (isolated_env / "config.toml").write_text("[model]\ntemperature = 0\n[cache]\nmodel = true\n")
    for _ in range(2):
        assert cli("run", "--approval", "yolo", "same question").returncode == 0
    assert llm_server.request_count == 1
    stats = cli("cache", "stats")
    assert stats.returncode == 0, stats.stderr
    assert "model cache (on): 1 entries" in stats.stdout
    assert "1 hits / 2 lookups (50%)" in stats.stdout
    assert "  openai:test-model: 1/2 (50%)" in stats.stdout
    cleared = cli("cache", "clear", "model")
    assert cleared.stdout.strip() == "model cache: 1 entries removed"
    assert "model cache (on): 0 entries" in cli("cache", "stats").stdout
    bad = cli("cache", "clear", "everything")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
