"""Call the model chain: the primary model, then its fallbacks, each through its breaker.

A model is left for the next one when its retries end in a transient failure (5xx, 429,
timeouts, dropped connections) or when its circuit breaker is open. A permanent failure (bad
key, unknown model, a rejected request) is raised at once: falling back from it would hide a
mistake the person has to fix. Only transient failures count against a breaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage

from openmanus_tui.errors import CircuitOpen, ModelError
from openmanus_tui.models.factory import Endpoint
from openmanus_tui.models.retry import classify, with_retries

if TYPE_CHECKING:
    from openmanus_tui.resilience.breakers import BreakerBoard

T = TypeVar("T")

OnFallback = Callable[[Endpoint, Endpoint, ModelError], Awaitable[None]]
OnRetry = Callable[[int, float, ModelError], Awaitable[None]]


def counts_against_endpoint(exc: BaseException) -> bool:
    """Does this failure say the endpoint is unhealthy? Transient ones do."""
    if isinstance(exc, asyncio.CancelledError | CircuitOpen):
        return False
    return classify(exc).error_class == "transient"


async def call_chain(
    chain: list[Endpoint],
    attempt: Callable[[Endpoint], Awaitable[T]],
    *,
    board: BreakerBoard | None,
    max_retries: int,
    base_delay: float,
    on_retry: OnRetry | None = None,
    on_fallback: OnFallback | None = None,
) -> tuple[T, int, Endpoint]:
    """``attempt(endpoint)`` on the first endpoint that answers; returns the answer, the
    retries the answering endpoint took, and that endpoint."""
    for index, endpoint in enumerate(chain):

        async def once(endpoint: Endpoint = endpoint) -> T:
            if board is None:
                return await attempt(endpoint)
            return await board.call(
                endpoint.breaker, lambda: attempt(endpoint), counts=counts_against_endpoint,
                describe=lambda exc: classify(exc).message,
            )

        try:
            value, used = await with_retries(
                once, max_retries=max_retries, base_delay=base_delay, on_retry=on_retry
            )
            return value, used, endpoint
        except ModelError as error:
            if error.error_class != "transient" or index == len(chain) - 1:
                raise
            if on_fallback is not None:
                await on_fallback(endpoint, chain[index + 1], error)
    raise AssertionError("an empty model chain")  # make_chain always has the primary


@dataclass(kw_only=True)
class ChainCalls:
    """The path a graph's own model calls take (the research and writing graphs' contexts
    inherit it): the primary model and its fallbacks without tools (the agent's
    ``summary_chain``), the runtime's breakers and the session's retry/fallback events, as the
    agent's calls do. No chain: the plain model alone, with retries."""

    chain: list[Endpoint] | None = None
    breakers: BreakerBoard | None = None
    on_fallback: OnFallback | None = None
    max_retries: int = 3
    retry_backoff: float = 1.0
    on_retry: OnRetry | None = None

    async def invoke(self, model: Any, messages: list[BaseMessage], config: Any,
                     ) -> tuple[AIMessage, Endpoint | None]:
        """One call: the reply and the endpoint that answered (None without a chain)."""
        if self.chain:

            async def on(endpoint: Endpoint) -> AIMessage:
                return await endpoint.model.ainvoke(messages, config=config)  # type: ignore[no-any-return]

            reply, _, endpoint = await call_chain(
                self.chain, on, board=self.breakers, max_retries=self.max_retries,
                base_delay=self.retry_backoff, on_retry=self.on_retry,
                on_fallback=self.on_fallback,
            )
            return reply, endpoint

        async def attempt() -> AIMessage:
            return await model.ainvoke(messages, config=config)  # type: ignore[no-any-return]

        reply, _ = await with_retries(
            attempt, max_retries=self.max_retries, base_delay=self.retry_backoff,
            on_retry=self.on_retry,
        )
        return reply, None
