"""Build the chat model named by a spec (``openai:<model>`` or ``scripted:<name>``).

``openai:`` goes through langchain-openai's ``ChatOpenAI`` with streaming and usage reporting on,
against any OpenAI-compatible base URL. Its own retries are off: the agent retries transient
failures itself so that each retry is visible as an event. With no API key and no base URL
configured, the offline ``scripted:demo`` model is used and ``ModelInfo.offline_reason`` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from openmanus_tui.config import FallbackModel, ModelSettings, Settings, model_limits
from openmanus_tui.errors import ConfigError
from openmanus_tui.models.scripted import ScriptedChatModel, load_script


@dataclass
class ModelInfo:
    spec: str
    context_window: int
    price_in_per_1m: float
    price_out_per_1m: float
    offline_reason: str = ""

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.price_in_per_1m + tokens_out * self.price_out_per_1m) / 1e6


def parse_spec(spec: str) -> tuple[str, str]:
    provider, sep, name = spec.partition(":")
    if not sep or not name or provider not in ("openai", "scripted"):
        raise ConfigError(
            f"model: {spec!r} is not a model spec; expected openai:<model> or scripted:<name>"
        )
    return provider, name


def effective_model_settings(settings: Settings, spec: str | None = None) -> ModelSettings:
    """The model section with a ``--model``/session spec applied (``make_model`` then falls
    back to the demo model when it is ``offline``)."""
    model = settings.model.model_copy()
    if spec:
        model.provider, model.name = parse_spec(spec)  # type: ignore[assignment]
    return model


def make_model(settings: Settings, spec: str | None = None) -> tuple[BaseChatModel, ModelInfo]:
    return _build(effective_model_settings(settings, spec))


def _build(model: ModelSettings) -> tuple[BaseChatModel, ModelInfo]:
    offline_reason = ""
    if model.offline:
        offline_reason = (
            "No API key is configured, so the offline demo model (scripted:demo) is running. "
            "Set OPENAI_API_KEY (and OPENAI_BASE_URL for Ollama, vLLM, LM Studio or Gemini) "
            "to use a real model."
        )
        model.provider, model.name = "scripted", "demo"
    window, pin, pout = model_limits(model)
    info = ModelInfo(model.spec, window, pin, pout, offline_reason)
    if model.provider == "scripted":
        return ScriptedChatModel(script=load_script(model.name)), info

    from langchain_openai import ChatOpenAI  # deferred: importing openai costs ~0.3 s

    # Local servers (Ollama, LM Studio...) accept any key but the client insists on one.
    key = model.api_key.get_secret_value() if model.api_key else "not-needed"
    chat = ChatOpenAI(
        model=model.name,
        base_url=model.base_url,
        api_key=key,  # type: ignore[arg-type]
        temperature=model.temperature,
        timeout=model.timeout,
        max_retries=0,
        streaming=model.stream,
        # stream = false: whole replies (astream falls back to one ainvoke).
        disable_streaming=not model.stream,
        stream_usage=True,
    )
    return chat, info


# ---- the model chain: the primary and its fallbacks (issue 16) -------------------------------
@dataclass
class Endpoint:
    """One model of the chain: what to call, what it costs, and the breaker guarding it."""

    spec: str
    model: BaseChatModel
    info: ModelInfo
    breaker: str  # the circuit breaker's name: model and server


def breaker_name(model: ModelSettings) -> str:
    if model.provider == "scripted":
        return f"model {model.spec}"
    host = urlsplit(model.base_url).netloc if model.base_url else "api.openai.com"
    return f"model {model.name}@{host or model.base_url}"


def _fallback_settings(primary: ModelSettings, fallback: FallbackModel) -> ModelSettings:
    model = primary.model_copy()
    model.provider, model.name = parse_spec(fallback.model)  # type: ignore[assignment]
    own_key = fallback.api_key
    if own_key is None and fallback.api_key_env and os.environ.get(fallback.api_key_env):
        own_key = SecretStr(os.environ[fallback.api_key_env])
    if fallback.base_url and fallback.base_url != primary.base_url:
        # Another server never gets the primary's key.
        model.base_url, model.api_key = fallback.base_url, own_key
    elif own_key is not None:
        model.api_key = own_key
    # Context window and prices are the fallback model's own (KNOWN_MODELS), not the primary's.
    model.context_window = model.price_in_per_1m = model.price_out_per_1m = None
    return model


def make_chain(settings: Settings, spec: str | None = None) -> list[Endpoint]:
    """The primary model (as ``make_model``) followed by ``model.fallbacks`` in order. The
    offline demo has no fallbacks: it cannot fail the way a server does."""
    primary = effective_model_settings(settings, spec)
    chat, info = _build(primary)
    chain = [Endpoint(info.spec, chat, info, breaker_name(primary))]
    if info.offline_reason:
        return chain
    for fallback in primary.fallbacks:
        model = _fallback_settings(primary, fallback)
        if model.provider == "openai" and not model.base_url and model.api_key is None:
            continue  # nothing to reach it with; `openmanus doctor` names it
        fb_chat, fb_info = _build(model)
        if fb_info.spec == info.spec and breaker_name(model) == chain[0].breaker:
            continue  # the primary itself
        chain.append(Endpoint(fb_info.spec, fb_chat, fb_info, breaker_name(model)))
    return chain
