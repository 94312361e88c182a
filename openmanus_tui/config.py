"""Validated configuration: defaults < TOML file < environment < command-line flags.

The TOML file is ``platformdirs.user_config_dir("openmanus")/config.toml``, or the file named by
``OPENMANUS_CONFIG``; ``OPENMANUS_ENV=dev`` merges ``config.dev.toml`` (next to it) over it, table
by table (``read_config_files``). Environment variables follow pydantic-settings' nesting,
``OPENMANUS_<SECTION>__<KEY>``; the standard ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` fill the
model section below the ``OPENMANUS_`` ones. Every mistake becomes one ``ConfigError`` line that
names the file or variable, the key and what was expected. A secret setting written
``"secret:NAME"`` gets its value from the encrypted store (``secret_store.py``) once the
settings are built.
"""

from __future__ import annotations

import os
import re
import threading
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from openmanus_tui.errors import ConfigError
from openmanus_tui.paths import (
    DEFAULT_THEME,
    ENV_PREFIX,
    ENV_VAR,
    config_env,
    default_data_dir,
    overlay_path,
)
from openmanus_tui.paths import config_path as config_path  # re-exported: callers use config's

Isolation = Literal["L0", "L1", "L2", "L3"]
ApprovalMode = Literal["ask", "auto", "yolo"]


# The offline demo model that runs when no API key or base URL is configured.
DEMO_SPEC = "scripted:demo"

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ---- fallback models (issue 16, part 2) ------------------------------------------------------
class FallbackModel(_Section):
    """One model to try when the one before it is down: ``"openai:NAME"`` shares the primary's
    base URL and key; ``"openai:NAME@URL"`` or a table with its own ``base_url`` talks to
    another server and never gets the primary's key (``api_key`` / ``api_key_env`` give it one)."""

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="environment variable holding the key")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            spec, sep, url = data.partition("@")
            data = {"model": spec.strip(), "base_url": url.strip() if sep else None}
        return data

    @field_validator("model")
    @classmethod
    def _spec(cls, value: str) -> str:
        provider, sep, name = value.partition(":")
        if not sep or not name or provider not in ("openai", "scripted"):
            raise ValueError(f"{value!r} is not a model spec; expected openai:<model>[@base_url]")
        return value


class ModelSettings(_Section):
    provider: Literal["openai", "scripted"] = "openai"
    name: str = "gpt-4.1-mini"
    base_url: str | None = None
    api_key: SecretStr | None = None
    temperature: float = Field(0.2, ge=0, le=2)
    timeout: float = Field(120.0, gt=0, le=3600, description="seconds per model request")
    max_retries: int = Field(3, ge=0, le=10)
    retry_backoff: float = Field(
        1.0, ge=0, le=600, description="seconds before the first retry; doubles"
    )
    context_window: int | None = Field(None, gt=0, le=100_000_000)
    stream: bool = Field(True, description="stream replies token by token; false: whole replies")
    price_in_per_1m: float | None = Field(None, ge=0, le=100_000)
    price_out_per_1m: float | None = Field(None, ge=0, le=100_000)
    # Tried in order when this model's retries end in a transient error or its breaker is open.
    fallbacks: list[FallbackModel] = Field(default_factory=list)

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def offline(self) -> bool:
        """No API key and no base URL: ``models/factory.py`` runs the offline demo instead."""
        return self.provider == "openai" and self.api_key is None and not self.base_url

    @property
    def spec_in_use(self) -> str:
        """The model a new session really runs: the configured one, or the offline demo."""
        return DEMO_SPEC if self.offline else self.spec


class AgentSettings(_Section):
    profile: Literal["manus", "research", "writing", "data_analysis"] = Field(
        "manus", description="the agent profile new sessions use"
    )
    max_steps: int = Field(30, gt=0, le=10_000)
    token_budget: int = Field(
        2_000_000, gt=0, le=10**12, description="tokens in+out per run"
    )
    repeat_limit: int = Field(
        3, ge=2, le=1_000, description="identical (tool, args) calls that stop a run"
    )
    system_prompt: str | None = None


class ApprovalSettings(_Section):
    mode: ApprovalMode = "auto"


class SandboxSettings(_Section):
    workspace: Path | None = None
    network: bool = False
    level: Literal["auto", "L0", "L1", "L2", "L3"] = "auto"
    min_isolation: Isolation = "L0"
    below_min: Literal["refuse", "ask"] = "refuse"
    timeout: float = Field(
        120.0, gt=0, le=86_400,
        description="default seconds per command (shell_exec, code_exec); at most 1800",
    )
    cpu_seconds: int = Field(120, gt=0, le=86_400)
    memory_mb: int = Field(2048, gt=0, le=1_048_576)
    max_processes: int = Field(256, gt=0, le=65_536)
    max_file_mb: int = Field(512, gt=0, le=1_048_576)
    max_open_files: int = Field(512, gt=0, le=65_536)
    output_cap_kb: int = Field(64, gt=0, le=1_048_576)
    # every process of one command together (a cgroup when writable; see `openmanus doctor`)
    memory_total_mb: int = Field(4096, ge=64, le=1_048_576)
    max_pids: int = Field(256, ge=8, le=65_536)
    # how much the workspace may grow during one command; 0 = unbounded
    workspace_write_mb: int = Field(1024, ge=0, le=1_048_576)


class StorageSettings(_Section):
    path: Path | None = None
    url: str | None = None
    retention_days: int | None = Field(None, gt=0, le=36_500)
    keep_last: int | None = Field(None, gt=0, le=10_000_000)
    # what one workspace snapshot may cost (store/snapshot_budget.py); skipped files are named
    snapshot_max_mb: int = Field(512, ge=1, le=65_536, description="new content read per snapshot")
    snapshot_max_files: int = Field(20_000, ge=1, le=1_000_000)
    snapshot_max_file_mb: int = Field(100, ge=1, le=16_384)
    snapshot_time_limit: float = Field(30.0, gt=0, le=3600, description="seconds per snapshot")
    snapshot_exclude: list[str] = Field(
        default_factory=lambda: [".venv", "node_modules", "__pycache__"],
        description="names or /-paths (fnmatch) never captured nor touched by a rewind",
    )


class UISettings(_Section):
    theme: str = DEFAULT_THEME
    keymap: dict[str, str] = Field(default_factory=dict)


class McpSettings(_Section):
    servers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    config_file: Path | None = None


class MemorySettings(_Section):
    """The context window, compaction, long-term memory and large observations."""

    reserve_share: float = Field(
        0.25, gt=0, lt=0.9, description="share of the context window left for the answer"
    )
    reserve_max: int = Field(
        16_384, gt=0, le=10_000_000, description="at most this many tokens are reserved"
    )
    auto_compact: bool = True
    # Shares of the room the prompt budget leaves for turns, once the system prompt, tool
    # definitions, summary, recalled memories, pinned turns and the request are counted.
    compact_trigger: float = Field(
        0.85, gt=0, le=1, description="compact when the turns would fill this share of the room"
    )
    compact_target: float = Field(
        0.5, gt=0, lt=1, description="after compacting, the turns fill at most this share"
    )
    keep_recent_turns: int = Field(
        2, ge=1, le=1_000, description="newest turns never summarised"
    )
    summary_share: float = Field(
        0.15, gt=0, lt=0.5, description="the summary's size limit as a share of the budget"
    )
    recall: int = Field(
        3, ge=0, le=100, description="long-term memories recalled into each call"
    )
    project: str | None = Field(None, description="project namespace (default: the workspace)")
    observation_threshold_kb: float = Field(
        4.0, gt=0, le=1_048_576,
        description="tool results larger than this are stored once and excerpted",
    )
    observation_excerpt_chars: int = Field(1200, ge=200, le=1_000_000)
    embeddings_model: str | None = Field(
        None, description="an OpenAI-compatible embeddings model: semantic search when set"
    )
    embeddings_base_url: str | None = None
    embeddings_api_key: SecretStr | None = None
    embeddings_timeout: float = Field(30.0, gt=0, le=3600)


# ---- resilience and caching (issue 16, parts 1, 3, 4) ---------------------------------------
class ResilienceSettings(_Section):
    """Circuit breakers (``resilience/breakers.py``), retries of tools (``runtime/tool_runner``)."""

    failure_threshold: int = Field(5, ge=1, le=1_000, description="failures that open a breaker")
    recovery_timeout: float = Field(
        60.0, gt=0, le=86_400, description="seconds an open breaker waits before a probe"
    )
    tool_retry_backoff: float = Field(
        0.5, ge=0, le=600, description="seconds before a read-only tool's first retry; doubles"
    )


class CacheSettings(_Section):
    """Model responses (opt-in) and read-only network tool results (``resilience/*_cache.py``)."""

    model: bool = Field(False, description="answer identical model requests from the cache")
    model_any_temperature: bool = Field(
        False, description="also cache requests made with temperature > 0"
    )
    model_ttl: float = Field(7 * 86_400.0, gt=0, le=10**9, description="seconds")
    model_max_mb: int = Field(100, ge=1, le=1_048_576)
    tools: bool = Field(True, description="cache results of read-only network tools")
    tool_ttl: float = Field(3600.0, gt=0, le=10**9, description="seconds")
    tool_max_mb: int = Field(50, ge=1, le=1_048_576)


class ToolsSettings(_Section):
    max_file_mb: float = Field(
        10.0, gt=0, le=1_048_576, description="largest content file_write accepts"
    )


class LimitsSettings(_Section):
    """Input sizes (``limits.py``): what is refused (the task) or cut (replies, results)."""

    task_chars: int = Field(1_000_000, ge=1, le=100_000_000, description="longest task accepted")
    message_chars: int = Field(
        1_000_000, ge=1_000, le=100_000_000, description="model replies longer than this are cut"
    )
    tool_result_chars: int = Field(
        1_000_000, ge=1_000, le=100_000_000, description="tool results longer than this are cut"
    )


# ---- service (issue 15): the REST API of `openmanus serve --api` -----------------------------
class ServiceSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(2024, ge=1, le=65_535)
    max_concurrent_runs: int = Field(10, ge=1, le=1000, description="runs executing at once")
    max_queue: int = Field(100, ge=0, le=100_000, description="runs waiting for a slot")
    request_timeout: float = Field(
        3600.0, gt=0, le=604_800, description="seconds a run may take before it is stopped"
    )
    resume_on_start: bool = False
    token: SecretStr | None = Field(None, description="bearer token (default: generated)")
    cors_origins: list[str] = Field(default_factory=list)
    max_body_kb: int = Field(2048, ge=1, le=1_048_576, description="largest request body")
    drain_timeout: float = Field(30.0, ge=0, le=3600, description="seconds SIGTERM waits")


# --- writing (openmanus_tui/writing) ---------------------------------------------------------
class WritingSettings(_Section):
    """The writing system: citation style, review rounds, the long-sentence limit."""

    citation_style: Literal["apa", "mla", "chicago-author-date", "chicago-notes"] = Field(
        "apa", description="default citation style of write, write check and cite")
    max_revision_rounds: int = Field(
        2, ge=0, le=5, description="review → revise rounds before a section is kept as it is")
    long_sentence_words: int = Field(
        25, ge=8, le=200, description="a sentence longer than this counts as long")
    length_tolerance: float = Field(
        0.15, ge=0.0, le=1.0, description="accepted distance from the target length (share)")


# ---- secrets at rest (secret_store.py) -------------------------------------------------------
class SecretsSettings(_Section):
    keyring: bool = Field(
        True, description="keep the secrets key in the system keyring when one is usable"
    )


# ---- research graph (issue 13: research/graph.py) --------------------------------------------
class ResearchSettings(_Section):
    """Bounds of the research graph (``openmanus research``, the Research profile)."""

    depth: Literal["quick", "standard", "deep"] = Field(
        "standard", description="sub-questions, sources and rounds (research/graph.py DEPTHS)"
    )
    max_research_sources: int = Field(
        12, ge=1, le=200, description="new sources one research run may read"
    )
    research_timeout: float = Field(
        600.0, gt=0, le=86_400,
        description="seconds after which a researcher starts no new round (each from its start)"
    )
    enable_cross_referencing: bool = Field(
        True, description="cluster claims across sources and list contradictions"
    )


# ---- research sources (issue 13: research/policy.py, research/fetch.py, research/scoring.py) --
class NetworkSettings(_Section):
    """What ``web_fetch``, ``openmanus fetch`` and ``search_info`` results may reach."""

    allowed_domains: list[str] = Field(
        default_factory=list,
        description="when not empty, only these domains and their subdomains are reachable",
    )
    blocked_domains: list[str] = Field(
        default_factory=list, description="these domains and their subdomains are refused"
    )
    allow_private_addresses: bool = Field(
        False, description="allow loopback, link-local and private addresses (SSRF guard off)"
    )
    fetch_timeout: float = Field(15.0, gt=0, le=600, description="seconds per fetch, all hops")
    fetch_max_mb: float = Field(5.0, gt=0, le=1024, description="largest response body read")
    max_redirects: int = Field(5, ge=0, le=30)
    cache_ttl_hours: float = Field(
        24.0, ge=0, le=87_600, description="a page fetched again within this time is not re-read"
    )

    hosts: dict[str, str] = Field(
        default_factory=dict,
        description="names answered without DNS, like /etc/hosts (the addresses are checked)",
    )

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: dict[str, str]) -> dict[str, str]:
        import ipaddress

        for name, address in value.items():
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{name}: {address!r} is not an IP address") from None
        return {k.strip().lower().rstrip("."): v for k, v in value.items()}

    @field_validator("allowed_domains", "blocked_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        out = []
        for raw in value:
            domain = raw.strip().lower().removeprefix("*.").strip(".")
            if not domain or any(c in domain for c in "/:@ ?#\t"):
                raise ValueError(f"{raw!r} is not a domain (write example.com, not a URL)")
            if not domain.isascii():  # matched against hosts in their IDNA form
                try:
                    domain = domain.encode("idna").decode("ascii")
                except UnicodeError:
                    raise ValueError(f"{raw!r} is not a valid domain name") from None
            out.append(domain)
        return out


class SourcesSettings(_Section):
    """How sources are scored (``research/scoring.py``)."""

    domains_file: Path | None = Field(
        None, description="a TOML file of domain classes added to (and overriding) the shipped one"
    )
    half_life_days: float = Field(
        365.0, gt=0, le=36_500, description="freshness halves every this many days"
    )


class _Sections(BaseModel):
    """The file's shape: the same sections, validated on their own to name the file in errors."""

    model_config = ConfigDict(extra="forbid")

    model: ModelSettings = Field(default_factory=ModelSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    ui: UISettings = Field(default_factory=UISettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)


    writing: WritingSettings = Field(default_factory=WritingSettings)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    sources: SourcesSettings = Field(default_factory=SourcesSettings)
    data_dir: Path | None = None


class _OpenAIEnvSource(PydanticBaseSettingsSource):
    """``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``, the variables every OpenAI client reads."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        model: dict[str, Any] = {}
        if os.environ.get("OPENAI_API_KEY"):
            model["api_key"] = os.environ["OPENAI_API_KEY"]
        if os.environ.get("OPENAI_BASE_URL"):
            model["base_url"] = os.environ["OPENAI_BASE_URL"]
        return {"model": model} if model else {}


class _FileSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]):
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class Settings(BaseSettings, _Sections):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    # Set by ``load_settings``; class-level so that the custom sources can see it.
    _file_data: dict[str, Any] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _OpenAIEnvSource(settings_cls),
            _FileSource(settings_cls, cls._file_data),
        )

    # ---- derived paths -------------------------------------------------------------------
    @property
    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    @property
    def db_path(self) -> Path:
        if self.storage.url:
            url = self.storage.url
            if url.startswith("sqlite:///"):
                return Path(url.removeprefix("sqlite:///")).expanduser()
            raise ConfigError(
                f"storage.url: {url!r} is not supported yet; expected sqlite:///PATH",
                hint="Postgres support is planned; use storage.path for SQLite.",
            )
        return Path(self.storage.path or self.resolved_data_dir / "openmanus.db").expanduser()

    def workspace_for(self, session_id: str) -> Path:
        if self.sandbox.workspace is not None:
            return Path(self.sandbox.workspace).expanduser().resolve()
        return self.resolved_data_dir / "workspaces" / session_id


def _expected(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    return str(err.get("msg", "invalid value"))


def _key(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not isinstance(p, int)) or "(root)"


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        if os.environ.get(f"{ENV_PREFIX}CONFIG"):
            raise ConfigError(f"{path}: config file not found (named by {ENV_PREFIX}CONFIG)")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: broken TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        _Sections.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        got = err.get("input")
        got_text = (
            f" (got {got!r})" if err.get("type") != "extra_forbidden" and got is not None else ""
        )
        raise ConfigError(f"{path}: {_key(err['loc'])}: {_expected(err)}{got_text}") from None
    return data


def _env_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if parts[:2] == ["model", "api_key"] and f"{ENV_PREFIX}MODEL__API_KEY" not in os.environ:
        return "OPENAI_API_KEY"
    if parts[:2] == ["model", "base_url"] and f"{ENV_PREFIX}MODEL__BASE_URL" not in os.environ:
        return "OPENAI_BASE_URL"
    return ENV_PREFIX + "__".join(p.upper() for p in parts)


# ---- environment overlays (OPENMANUS_ENV) ------------------------------------------------------
_LOAD_LOCK = threading.Lock()
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: tables merge key by key, anything else
    (a value, an array) in ``over`` replaces ``base``'s."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_sources() -> list[tuple[str, Path, bool]]:
    """(what, path, present) for each file the settings are read from, lowest first."""
    base = config_path()
    sources = [("config file", base, base.exists())]
    overlay = overlay_path()
    if overlay is not None:
        sources.append((f"overlay ({ENV_VAR}={config_env()})", overlay, overlay.exists()))
    return sources


def read_config_files() -> dict[str, Any]:
    """The config file with the environment's overlay merged over it, each file checked on
    its own first (so that an error names the file it is in)."""
    data = _read_file(config_path())
    env = config_env()
    if env is None:
        return data
    if not ENV_NAME.match(env):
        raise ConfigError(
            f"environment variable {ENV_VAR}: {env!r} is not an environment name "
            "(letters, digits, '_' or '-'; dev, staging, prod...)"
        )
    overlay = overlay_path(env)
    assert overlay is not None
    if not overlay.exists():
        raise ConfigError(
            f"{ENV_VAR}={env}: no overlay file {overlay}",
            hint=f"Create it (it may be empty), or unset {ENV_VAR}.",
        )
    return deep_merge(data, _read_file(overlay))


def load_settings(
    overrides: dict[str, Any] | None = None, *, resolve_secrets: bool = True
) -> Settings:
    """Build the settings from all sources; raises ``ConfigError`` with one clear line.
    ``resolve_secrets=False`` leaves ``"secret:NAME"`` references as they are (what
    ``openmanus secrets`` needs, to store a secret the config already names)."""
    overrides = overrides or {}
    try:
        # One load at a time: the file data reaches the settings' sources through the class
        # (a hot reload loads in a thread while the sandbox may load on the event loop).
        with _LOAD_LOCK:
            Settings._file_data = read_config_files()
            settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        top = str(loc[0]) if loc else ""
        section = overrides.get(top)
        key = _key(loc)
        in_flags = top in overrides and (
            not isinstance(section, dict) or (len(loc) > 1 and str(loc[1]) in section)
        )
        origin = "command line" if in_flags else f"environment variable {_env_name(loc)}"
        raise ConfigError(f"{origin}: {key}: {_expected(err)}") from None
    if resolve_secrets:
        resolve_secret_refs(settings)
    return settings


def resolve_secret_refs(settings: Settings) -> None:
    """Replace every ``"secret:NAME"`` (a ``SecretStr`` setting, or an MCP server's ``env``
    or ``headers`` value) by the stored secret, in place; a missing one is one line."""
    from openmanus_tui.secret_store import SecretError, SecretStore, secret_name

    store: SecretStore | None = None

    def value_of(key: str, name: str) -> str:
        nonlocal store
        if store is None:
            store = SecretStore(settings.resolved_data_dir, use_keyring=settings.secrets.keyring)
        try:
            return store.get(name)
        except SecretError as exc:
            raise SecretError(f"{key}: {exc.message}", hint=exc.hint) from None

    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        if not isinstance(section, BaseModel):
            continue
        for field_name in type(section).model_fields:
            value = getattr(section, field_name)
            if isinstance(value, SecretStr):
                name = secret_name(value.get_secret_value())
                if name is not None:
                    key = f"{section_name}.{field_name}"
                    setattr(section, field_name, SecretStr(value_of(key, name)))
    for server, entry in settings.mcp.servers.items():
        for block in ("env", "headers"):
            values = entry.get(block) if isinstance(entry, dict) else None
            if not isinstance(values, dict):
                continue
            for k, v in values.items():
                name = secret_name(v)
                if name is not None:
                    values[k] = value_of(f"mcp.servers.{server}.{block}.{k}", name)


def _mask_url_password(value: str) -> str:
    """``https://user:****@host/`` for a URL that carries a password (a base URL may)."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(value).password
    except ValueError:
        return value
    return value.replace(f":{password}@", ":****@", 1) if password else value


def mask_secrets(data: Any) -> Any:
    """A copy of a settings dump with every secret replaced by ``****``: ``SecretStr``
    values and passwords inside URLs."""
    if isinstance(data, dict):
        return {k: mask_secrets(v) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_secrets(v) for v in data]
    if isinstance(data, SecretStr):
        return "****" if data.get_secret_value() else ""
    if isinstance(data, str) and "://" in data and "@" in data:
        return _mask_url_password(data)
    return data


def settings_as_dict(settings: Settings, *, reveal: bool = False) -> dict[str, Any]:
    raw = settings.model_dump(mode="python")
    if reveal:
        return raw
    masked = mask_secrets(raw)
    # MCP server env blocks often hold tokens: mask their values too.
    for server in masked.get("mcp", {}).get("servers", {}).values():
        if isinstance(server, dict) and isinstance(server.get("env"), dict):
            server["env"] = {k: "****" for k in server["env"]}
        if isinstance(server, dict) and isinstance(server.get("headers"), dict):
            server["headers"] = {k: "****" for k in server["headers"]}
    return masked


# Context windows and prices (USD per 1M tokens in / out) for common models; configurable.
KNOWN_MODELS: dict[str, tuple[int, float, float]] = {
    "gpt-4.1": (1_047_576, 2.00, 8.00),
    "gpt-4.1-mini": (1_047_576, 0.40, 1.60),
    "gpt-4.1-nano": (1_047_576, 0.10, 0.40),
    "gpt-4o": (128_000, 2.50, 10.00),
    "gpt-4o-mini": (128_000, 0.15, 0.60),
    "gpt-4-turbo": (128_000, 10.00, 30.00),
    "gpt-4": (8_192, 30.00, 60.00),
    "gpt-3.5-turbo": (16_385, 0.50, 1.50),
    "gpt-5": (400_000, 1.25, 10.00),
    "gpt-5-mini": (400_000, 0.25, 2.00),
    "gpt-5-nano": (400_000, 0.05, 0.40),
    "o3": (200_000, 2.00, 8.00),
    "o3-mini": (200_000, 1.10, 4.40),
    "o4-mini": (200_000, 1.10, 4.40),
    "deepseek-chat": (64_000, 0.27, 1.10),
    "qwen2.5-coder": (32_768, 0.0, 0.0),
    "llama3.1": (128_000, 0.0, 0.0),
    "gemini-2.5-flash": (1_048_576, 0.30, 2.50),
    "gemini-2.5-pro": (1_048_576, 1.25, 10.00),
}
DEFAULT_CONTEXT_WINDOW = 128_000
SCRIPTED_CONTEXT_WINDOW = 32_000


def model_limits(model: ModelSettings) -> tuple[int, float, float]:
    """(context window, price in, price out per 1M tokens) for the configured model."""
    if model.provider == "scripted":
        window, pin, pout = SCRIPTED_CONTEXT_WINDOW, 0.0, 0.0
    else:
        name = model.name.split("/")[-1]
        # Dated and tagged variants (gpt-4o-2024-08-06, qwen2.5-coder:7b) take the longest
        # known prefix.
        known = KNOWN_MODELS.get(name) or next(
            (KNOWN_MODELS[k] for k in sorted(KNOWN_MODELS, key=len, reverse=True)
             if name.startswith(k)),
            None,
        )
        window, pin, pout = known or (DEFAULT_CONTEXT_WINDOW, 0.0, 0.0)
    return (
        model.context_window or window,
        pin if model.price_in_per_1m is None else model.price_in_per_1m,
        pout if model.price_out_per_1m is None else model.price_out_per_1m,
    )
