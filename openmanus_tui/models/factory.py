"""Build the chat model named by a spec (``openai:<model>`` or ``scripted:<name>``).

``openai:`` goes through langchain-openai's ``ChatOpenAI`` with streaming and usage reporting on,
against any OpenAI-compatible base URL. Its own retries are off: the agent retries transient
failures itself so that each retry is visible as an event. With no API key and no base URL
configured, the offline ``scripted:demo`` model is used and ``ModelInfo.offline_reason`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from openmanus_tui.config import ModelSettings, Settings, model_limits
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
    model = effective_model_settings(settings, spec)
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
