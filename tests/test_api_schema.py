"""schemathesis against the real server's ``/openapi.json``: generated requests for every
operation get no 500 and responses that match the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from api_helpers import serve
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from openmanus_tui.config import load_settings  # noqa: F401 (loaded before the env changes)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    # Module-scoped: the autouse per-test isolation is not in place yet, so the same
    # isolation is made here (config, data folder, no keys from the environment).
    home = tmp_path_factory.mktemp("api_schema")
    with pytest.MonkeyPatch.context() as mp:
        import os

        for key in list(os.environ):
            if key.startswith(("OPENAI_", "OPENMANUS_")) and key != "OPENMANUS_TEST_UID_SLOT":
                mp.delenv(key)
        (home / "config.toml").write_text("")
        mp.setenv("OPENMANUS_CONFIG", str(home / "config.toml"))
        mp.setenv("OPENMANUS_DATA_DIR", str(home / "data"))
        with serve() as srv:
            yield schemathesis.openapi.from_url(f"{srv.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_server_errors(case: schemathesis.Case, tmp_path: Path) -> None:
    response = case.call(timeout=30)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:300]}"
    assert "Traceback" not in response.text
    if response.status_code < 300 and "event-stream" not in response.headers.get(
        "content-type", [""]
    )[0]:
        case.validate_response(response, checks=[response_schema_conformance])
