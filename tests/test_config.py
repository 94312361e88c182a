"""Configuration: precedence of the sources, and one clear line for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, run_cli

from openmanus_tui.config import config_path, load_settings, model_limits, settings_as_dict
from openmanus_tui.errors import ConfigError


def write_config(tmp: Path, text: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(text)
    return path


def test_defaults(isolated_env: Path) -> None:
    s = load_settings()
    assert s.approval.mode == "auto"
    assert s.model.provider == "openai" and s.model.name == "gpt-4.1-mini"
    assert s.db_path == isolated_env / "data" / "openmanus.db"
    assert s.workspace_for("abc") == isolated_env / "data" / "workspaces" / "abc"


def test_precedence_file_env_flags(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(
        isolated_env,
        '[model]\nname = "gpt-4.1-nano"\ncontext_window = 9000\n'
        "temperature = 0.5\n[agent]\nmax_steps = 5\n",
    )
    s = load_settings()
    assert (s.model.name, s.model.context_window, s.agent.max_steps) == ("gpt-4.1-nano", 9000, 5)
    monkeypatch.setenv("OPENMANUS_MODEL__CONTEXT_WINDOW", "8000")
    s = load_settings()
    assert s.model.context_window == 8000  # env beats file
    assert s.model.temperature == 0.5  # untouched keys still come from the file
    s = load_settings({"model": {"context_window": 7000}, "agent": {"max_steps": 9}})
    assert (s.model.context_window, s.agent.max_steps) == (7000, 9)  # flags beat env
    assert s.model.name == "gpt-4.1-nano"


def test_openai_standard_variables(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    write_config(isolated_env, '[model]\nbase_url = "http://file.invalid/v1"\n')
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai-var")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    s = load_settings()
    assert s.model.api_key is not None
    assert s.model.api_key.get_secret_value() == "sk-from-openai-var"
    assert s.model.base_url == "http://127.0.0.1:9/v1"  # beats the file
    monkeypatch.setenv("OPENMANUS_MODEL__API_KEY", "sk-ours")
    assert (
        load_settings().model.api_key.get_secret_value() == "sk-ours"
    )  # ours beat the standard one


def test_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    data = settings_as_dict(load_settings())
    assert data["model"]["api_key"] == "****"
    result = cli("config", "show", "--json")
    assert result.returncode == 0
    assert "sk-very-secret" not in result.stdout and '"****"' in result.stdout


def test_data_dir_and_config_env(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = isolated_env / "elsewhere.toml"
    other.write_text('[approval]\nmode = "yolo"\n')
    monkeypatch.setenv("OPENMANUS_CONFIG", str(other))
    monkeypatch.setenv("OPENMANUS_DATA_DIR", str(isolated_env / "d2"))
    assert config_path() == other
    s = load_settings()
    assert s.approval.mode == "yolo" and s.db_path == isolated_env / "d2" / "openmanus.db"
    result = run_cli("config", "path")
    assert str(other) in result.stdout and str(isolated_env / "d2") in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[model]\nnam = "x"\n', "model.nam: unknown key"),
        ("[bogus]\nx = 1\n", "bogus: unknown key"),
        ('[agent]\nmax_steps = "many"\n', "agent.max_steps: Input should be a valid integer"),
        ("[agent]\nmax_steps = 0\n", "agent.max_steps: Input should be greater than 0"),
        (
            '[approval]\nmode = "sometimes"\n',
            "approval.mode: Input should be 'ask', 'auto' or 'yolo'",
        ),
        ("[model\nname = 1\n", "broken TOML"),
    ],
)
def test_bad_file(isolated_env: Path, text: str, expected: str) -> None:
    path = write_config(isolated_env, text)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message
    result = cli("config", "validate")
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        (
            "OPENMANUS_MODEL__CONTEXT_WINDOW",
            "abc",
            "OPENMANUS_MODEL__CONTEXT_WINDOW: model.context_window",
        ),
        ("OPENMANUS_MODEL__BOGUS", "1", "OPENMANUS_MODEL__BOGUS: model.bogus: unknown key"),
        ("OPENMANUS_SANDBOX__NETWORK", "maybe", "OPENMANUS_SANDBOX__NETWORK: sandbox.network"),
    ],
)
def test_bad_environment(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value)
    result = run_cli("config", "validate")
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_missing_named_config(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    monkeypatch.setenv("OPENMANUS_CONFIG", str(isolated_env / "nope.toml"))
    result = run_cli("config", "show")
    assert result.returncode == 2 and "config file not found" in result.stderr


def test_bad_flags() -> None:
    result = cli("run", "x", "--approval", "sometimes")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    result = cli("run", "x", "--max-steps", "0")
    assert result.returncode == 2 and "command line: agent.max_steps" in result.stderr
    result = cli("run", "x", "--model", "claude")
    assert result.returncode == 2 and "not a model spec" in result.stderr


def test_model_limits_known_and_configured() -> None:
    s = load_settings({"model": {"name": "gpt-4o-mini"}})
    assert model_limits(s.model) == (128_000, 0.15, 0.60)
    s = load_settings(
        {"model": {"name": "gpt-4o-mini", "context_window": 4000, "price_in_per_1m": 1}}
    )
    assert model_limits(s.model) == (4000, 1.0, 0.60)
