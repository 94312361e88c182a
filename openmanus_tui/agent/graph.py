"""The ReAct state machine (seed 002): call_llm → approve → call_tool → call_llm … → finalize.

- ``call_llm`` fits the history into the context window (whole turns; with a memory manager,
  pinned turns, the rolling summary and recalled memories too, compacting older turns first when
  the window is nearly full), calls the model with retries, and applies the guards:
  ``max_steps``, the per-run token budget, and the same (tool, arguments) proposed
  ``repeat_limit`` times. Unknown tools and unparseable arguments are
  marked invalid here and answered with error results, never raised.
- ``approve`` is side-effect free: it applies the approval policy and calls ``interrupt()`` for the
  calls that need a person. A node re-runs from its top on every resume, so no tool runs here.
- ``call_tool`` has no interrupts; it hands the approved calls to the runtime's journaled runner
  (``AgentContext.run_tools``), which runs each approved call exactly once across resumes.
- ``finalize`` records the answer or the stop reason and closes calls left without results.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.constants import TAG_NOSTREAM
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from openmanus_tui.agent.approval import ApprovalPolicy, Decision
from openmanus_tui.agent.context import build_context
from openmanus_tui.agent.state import AgentState
from openmanus_tui.errors import ModelError
from openmanus_tui.limits import DEFAULT_MESSAGE_CHARS, cut, scrub, scrub_value
from openmanus_tui.memory.tokens import reconcile
from openmanus_tui.models.factory import Endpoint, ModelInfo
from openmanus_tui.models.fallback import OnFallback, call_chain
from openmanus_tui.models.retry import with_retries
from openmanus_tui.models.toolcalls import strict_args, strict_message, unique_call_ids
from openmanus_tui.tools.base import ToolRegistry
from openmanus_tui.tools.provenance import marked, tool_sources, with_note

if TYPE_CHECKING:
    from openmanus_tui.memory.manager import MemoryManager
    from openmanus_tui.resilience.breakers import BreakerBoard
    from openmanus_tui.resilience.model_cache import ModelCache

RunTools = Callable[
    [list[dict[str, Any]], dict[str, dict[str, Any]], str],
    Awaitable[tuple[list[ToolMessage], list[dict[str, Any]]]],
]


@dataclass
class AgentContext:
    """Everything the nodes use that is not state: passed per invocation, never checkpointed."""

    model: BaseChatModel | Runnable
    model_info: ModelInfo
    registry: ToolRegistry
    policy: ApprovalPolicy
    system_prompt: str
    run_tools: RunTools
    max_steps: int = 30
    token_budget: int = 2_000_000
    repeat_limit: int = 3
    max_retries: int = 3
    retry_backoff: float = 1.0
    on_retry: Callable[[int, float, ModelError], Awaitable[None]] | None = None
    # Context building, compaction and recall; without one, plain whole-turn trimming.
    memory: MemoryManager | None = None
    summary_model: BaseChatModel | Runnable | None = None  # the model without tools bound
    tool_schemas: list[dict[str, Any]] | None = None  # they count against the window
    # Model replies longer than this are cut (limits.message_chars), in state and in prompts.
    message_chars: int = DEFAULT_MESSAGE_CHARS
    # (tool, canonical arguments) per call id, so the repeat guard serialises each call once.
    call_keys: dict[str, str] = field(default_factory=dict)
    # The primary model and its fallbacks, tools bound (models/factory.py make_chain); None:
    # ``model`` alone. Breakers guard each; the cache answers repeated requests (issue 16).
    chain: list[Endpoint] | None = None
    summary_chain: list[Endpoint] | None = None  # the same models without tools
    breakers: BreakerBoard | None = None
    on_fallback: OnFallback | None = None
    cache: ModelCache | None = None
    on_cache_hit: Callable[[str, str], Awaitable[None]] | None = None
    session_id: str = ""
    # Each history message as sent (see _as_sent), by identity.
    sent_cache: dict[int, tuple[BaseMessage, BaseMessage]] = field(default_factory=dict)

    @property
    def prompt_budget(self) -> int:
        window = self.model_info.context_window
        return window - min(window // 4, 16_384)  # the rest is left for the answer


def _canonical(name: str, args: Any) -> str:
    return name + ":" + json.dumps(args, sort_keys=True, default=str)


def _current_run(messages: list[BaseMessage]) -> list[BaseMessage]:
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    return messages[start + 1 :]


def _bounded(ai: AIMessage, limit: int) -> AIMessage:
    """The reply as stored: lone surrogates replaced (they cannot be encoded), text cut to
    ``limit`` characters with a marker."""
    update: dict[str, Any] = {}
    if isinstance(ai.content, str):
        text, _ = cut(scrub(ai.content), limit, "reply", "limits.message_chars")
        if text is not ai.content:
            update["content"] = text
    if ai.tool_calls or ai.invalid_tool_calls:
        update["tool_calls"] = [{**tc, **scrub_value({"name": tc["name"], "args": tc["args"]})}
                                for tc in ai.tool_calls]
        update["invalid_tool_calls"] = [scrub_value(dict(tc)) for tc in ai.invalid_tool_calls]
    return ai.model_copy(update=update) if update else ai


def _clipped(message: BaseMessage, limit: int) -> BaseMessage:
    content = message.content
    if isinstance(content, str) and len(content) > limit:
        text, _ = cut(content, limit, "message", "limits.message_chars")
        return message.model_copy(update={"content": text})
    return message


def _as_sent(message: BaseMessage, ctx: AgentContext, sources: dict[str, str]) -> BaseMessage:
    """The message as the model gets it (cut, tool results marked); cached by identity, as the
    history's messages are the same objects from step to step."""
    hit = ctx.sent_cache.get(id(message))
    if hit is not None and hit[0] is message:
        return hit[1]
    sent = marked(_clipped(message, ctx.message_chars), sources)
    if len(ctx.sent_cache) > 20_000:
        ctx.sent_cache.clear()
    ctx.sent_cache[id(message)] = (message, sent)  # keeps it alive: its id is not reused
    return sent


def _call_ids(messages: list[BaseMessage]) -> set[str]:
    ids: set[str] = set()
    for m in messages:
        if isinstance(m, AIMessage):
            ids.update(tc["id"] for tc in [*m.tool_calls, *m.invalid_tool_calls] if tc.get("id"))
        elif isinstance(m, ToolMessage):
            ids.add(m.tool_call_id)
    return ids


def _invalid_reason(itc: Any) -> str:
    """What the model and the user are told about a call whose arguments did not parse."""
    raw = itc.get("args")
    _, why = strict_args(raw)
    why = why or "the arguments are not valid JSON"
    return (
        f"{why}. Nothing was run. Send the call again with one complete JSON object "
        "matching the tool's schema (keep it shorter if it was cut off)"
    )


def _proposed_calls(
    ai: AIMessage, registry: ToolRegistry
) -> tuple[AIMessage, list[dict[str, Any]]]:
    """Normalise the model's calls: every call gets an id; unusable ones carry ``invalid``."""
    calls: list[dict[str, Any]] = []
    tool_calls = []
    for tc in ai.tool_calls:
        call_id = tc.get("id") or f"call_{uuid.uuid4().hex[:12]}"
        tool_calls.append({**tc, "id": call_id})
        invalid = None
        if tc["name"] not in registry:
            invalid = f"unknown tool {tc['name']!r}; available tools: {', '.join(registry.names())}"
        calls.append({"id": call_id, "name": tc["name"], "args": tc["args"], "invalid": invalid})
    invalid_calls = []
    for itc in ai.invalid_tool_calls:
        call_id = itc.get("id") or f"call_{uuid.uuid4().hex[:12]}"
        invalid_calls.append({**itc, "id": call_id})
        calls.append(
            {
                "id": call_id,
                "name": itc.get("name") or "(no name)",
                "args": {},
                "raw_args": itc.get("args") or "",
                "invalid": _invalid_reason(itc),
            }
        )
    fixed = ai.model_copy(update={"tool_calls": tool_calls, "invalid_tool_calls": invalid_calls})
    return fixed, calls


async def call_llm(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    steps = state.get("steps", 0)
    run_tokens = state.get("run_tokens", 0)
    if steps >= ctx.max_steps:
        return {"stop_reason": f"stopped after {steps} steps: the agent.max_steps limit"}
    if run_tokens >= ctx.token_budget:
        return {
            "stop_reason": f"stopped: the run used {run_tokens} tokens, over agent.token_budget"
        }

    ratio = float(state.get("token_ratio") or 1.0)
    memory_outcome: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    summary_in = summary_out = 0
    if ctx.memory is not None:

        async def summarise(model: Any, request: list[BaseMessage]) -> AIMessage:
            async def attempt() -> AIMessage:
                # Not streamed: a summary is not the agent's thought.
                return await model.ainvoke(  # type: ignore[no-any-return]
                    request, config={"tags": [TAG_NOSTREAM, "openmanus:summary"]}, stream=False
                )

            if ctx.summary_chain and model is ctx.summary_chain[0].model:
                # A summary is a model call too: the fallbacks take it when the primary is down.
                async def on(endpoint: Endpoint) -> AIMessage:
                    return await endpoint.model.ainvoke(  # type: ignore[no-any-return]
                        request, config={"tags": [TAG_NOSTREAM, "openmanus:summary"]},
                        stream=False,
                    )

                reply, _, _ = await call_chain(
                    ctx.summary_chain, on, board=ctx.breakers, max_retries=ctx.max_retries,
                    base_delay=ctx.retry_backoff, on_retry=ctx.on_retry,
                    on_fallback=ctx.on_fallback,
                )
                return reply
            reply, _ = await with_retries(
                attempt,
                max_retries=ctx.max_retries,
                base_delay=ctx.retry_backoff,
                on_retry=ctx.on_retry,
            )
            return reply

        prepared = await ctx.memory.prepare(
            dict(state),
            model=ctx.summary_model or ctx.model,
            system_prompt=ctx.system_prompt,
            tools=ctx.tool_schemas or [],
            window=ctx.model_info.context_window,
            invoke=summarise,
        )
        prompt = prepared.plan.messages
        local_tokens = prepared.plan.tokens
        context_tokens = prepared.plan.planned_tokens
        dropped = prepared.plan.dropped
        memory_outcome = prepared.outcome()
        if prepared.compaction is not None:
            extra["summaries"] = [prepared.compaction.summary]
            summary_in = prepared.compaction.usage.get("input_tokens", 0)
            summary_out = prepared.compaction.usage.get("output_tokens", 0)
    else:
        prompt, context_tokens, dropped = build_context(
            ctx.system_prompt, state.get("messages", []), ctx.prompt_budget
        )
        local_tokens = context_tokens

    # Messages stored before limits.message_chars existed may be huge: cut in the prompt only.
    # Tool results go inside untrusted provenance delimiters (tools/provenance.py).
    sources = tool_sources(ctx.registry)
    prompt = with_note([_as_sent(m, ctx, sources) for m in prompt])

    # Tokens go out through the custom stream: LangGraph's "messages" mode costs a scan of
    # the whole state at every node start (bench/step_overhead.py).
    write = get_stream_writer()

    async def once(endpoint: Endpoint) -> AIMessage:
        full = None
        async for chunk in endpoint.model.astream(prompt):
            full = chunk if full is None else full + chunk
            text = chunk.text if isinstance(getattr(chunk, "text", None), str) else ""
            if text:
                write({"token": text, "message_id": chunk.id or ""})
        if full is None:
            raise ModelError("the model returned an empty stream", error_class="transient")
        # Never the client's repaired arguments: cut-off JSON becomes an invalid call.
        return _bounded(strict_message(full), ctx.message_chars)

    started = time.perf_counter()
    chain = ctx.chain or [Endpoint(ctx.model_info.spec, ctx.model, ctx.model_info, "")]  # type: ignore[arg-type]
    ai, retries, endpoint, cached = await _ask_chain(ctx, chain, prompt, once, write)
    latency_ms = (time.perf_counter() - started) * 1000
    if not ai.id:
        ai.id = f"ai_{uuid.uuid4().hex}"
    # A repeated call id would make two calls share one result: renamed before anything runs.
    ai = unique_call_ids(ai, _call_ids(state.get("messages", [])))
    ai, calls = _proposed_calls(ai, ctx.registry)
    finish = ai.response_metadata.get("finish_reason")
    if finish == "length":
        for call in calls:
            call["invalid"] = call["invalid"] or (
                "the reply was cut off at the output token limit, so these arguments may be "
                "incomplete; send the call again, shorter"
            )

    usage = ai.usage_metadata or {}
    reported_in = int(usage.get("input_tokens", 0) or 0)
    tokens_in = reported_in or context_tokens
    tokens_out = int(usage.get("output_tokens", 0))
    if cached:  # no request was made: nothing spent
        reported_in = tokens_in = tokens_out = 0
    cost = endpoint.info.cost(tokens_in, tokens_out)
    # A compaction's own model call counts towards the totals and the run's budget too.
    all_in, all_out = tokens_in + summary_in, tokens_out + summary_out
    cost_all = cost + ctx.model_info.cost(summary_in, summary_out)
    if ctx.memory is not None and reported_in:
        extra["token_ratio"] = reconcile(ratio, local_tokens, reported_in)
    update: dict[str, Any] = {
        **extra,
        "messages": [ai],
        "tool_calls": calls,
        "decisions": {},
        "steps": steps + 1,
        "run_tokens": run_tokens + all_in + all_out,
        "tokens_in": state.get("tokens_in", 0) + all_in,
        "tokens_out": state.get("tokens_out", 0) + all_out,
        "cost": state.get("cost", 0.0) + cost_all,
        "agent_outcome": {
            "message_id": ai.id,
            "text": ai.text if isinstance(ai.text, str) else str(ai.content),
            "finish_reason": finish,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost": cost,
            "latency_ms": latency_ms,
            "retries": retries,
            # Which model answered (a fallback when the primary was down) and whether the
            # reply came from the model cache.
            "model": endpoint.spec,
            "fallback": endpoint is not chain[0],
            "cached": cached,
            "context_tokens": context_tokens,
            "context_window": ctx.model_info.context_window,
            "turns_dropped": dropped,
            "memory": memory_outcome,
        },
    }
    for call in calls:
        if call["name"] == "terminate" and not call["invalid"]:
            update["final_answer"] = str(call["args"].get("answer", ""))
            return update
    seen: dict[str, int] = {}
    for msg in [*_current_run(state.get("messages", [])), ai]:
        if isinstance(msg, AIMessage):
            for tc in msg.tool_calls:
                key = ctx.call_keys.get(tc["id"]) or _canonical(tc["name"], tc["args"])
                ctx.call_keys[tc["id"]] = key
                seen[key] = seen.get(key, 0) + 1
                if seen[key] >= ctx.repeat_limit:
                    update["stop_reason"] = (
                        f"stopped: {tc['name']} was called {seen[key]} times with the same "
                        "arguments (agent.repeat_limit)"
                    )
                    return update
    decisions, pending = policy_decisions(calls, ctx)
    if not pending:
        update["decisions"] = decisions  # routes straight to call_tool (see _after_llm)
    return update


async def _ask_chain(
    ctx: AgentContext,
    chain: list[Endpoint],
    prompt: list[BaseMessage],
    once: Callable[[Endpoint], Awaitable[AIMessage]],
    write: Callable[[Any], None],
) -> tuple[AIMessage, int, Endpoint, bool]:
    """The reply from the cache when it has one, else from the first model of the chain that
    answers. Returns (reply, retries, the endpoint that answered, from the cache)."""
    cache = ctx.cache
    keys: list[str] = []
    if cache is not None and cache.enabled:
        keys = [
            cache.key(f"{endpoint.spec} {endpoint.breaker}", prompt, ctx.tool_schemas)
            for endpoint in chain
        ]
        found = await cache.lookup([(k, e.spec) for k, e in zip(keys, chain, strict=True)])
        if found is not None:
            index, hit = found
            endpoint = chain[index]
            # A message id of its own: the same id twice in a history would replace the
            # earlier message.
            hit = hit.model_copy(update={"id": f"ai_{uuid.uuid4().hex}"})
            if ctx.on_cache_hit is not None:
                await ctx.on_cache_hit(endpoint.spec, keys[index])
            text = hit.text if isinstance(hit.text, str) else ""
            if text:
                write({"token": text, "message_id": hit.id or ""})
            return hit, 0, endpoint, True
    ai, retries, endpoint = await call_chain(
        chain,
        once,
        board=ctx.breakers,
        max_retries=ctx.max_retries,
        base_delay=ctx.retry_backoff,
        on_retry=ctx.on_retry,
        on_fallback=ctx.on_fallback,
    )
    if cache is not None and keys:
        await cache.put(keys[chain.index(endpoint)], endpoint.spec, ai, ctx.session_id)
    return ai, retries, endpoint, False


def policy_decisions(
    calls: list[dict[str, Any]], ctx: AgentContext
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The decisions the approval policy takes alone, and the calls that need a person."""
    decisions: dict[str, dict[str, Any]] = {}
    pending: list[dict[str, Any]] = []
    for call in calls:
        if call.get("invalid"):
            decisions[call["id"]] = {
                "decision": "error",
                "reason": call["invalid"],
                "by": "system",
                "tool": call["name"],
            }
            continue
        verdict = ctx.policy.evaluate(call["name"], call["args"])
        if verdict.action == "allow":
            decisions[call["id"]] = {
                "decision": "approve",
                "by": "rule" if verdict.rule else "policy",
                "tool": call["name"],
                "rule": verdict.rule,
                "reason": verdict.reason,
            }
        elif verdict.action == "deny":
            decisions[call["id"]] = {
                "decision": "deny",
                "by": "rule",
                "rule": verdict.rule,
                "tool": call["name"],
                "reason": verdict.reason or f"blocked by rule {verdict.rule}",
            }
        else:
            spec = ctx.registry.get(call["name"])
            pending.append(
                {
                    "call_id": call["id"],
                    "tool": call["name"],
                    "args": call["args"],
                    "risk": spec.risk.value if spec else "execute",
                    "tier": spec.tier if spec else None,
                    "rule": verdict.rule,
                    "reason": verdict.reason,
                }
            )
    return decisions, pending


def approve(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    decisions, pending = policy_decisions(state.get("tool_calls", []), ctx)
    update: dict[str, Any] = {"decisions": decisions}
    if not pending:
        return update

    answer = interrupt({"calls": pending})
    answers = answer if isinstance(answer, dict) else {}
    edited: dict[str, dict[str, Any]] = {}
    for item in pending:
        raw = answers.get(item["call_id"])
        try:
            decision = Decision.model_validate(raw) if raw is not None else None
        except ValueError:
            decision = None
        if decision is None:
            decisions[item["call_id"]] = {
                "decision": "deny",
                "by": "system",
                "reason": "no valid decision was given",
                "tool": item["tool"],
            }
            continue
        entry = decision.model_dump(exclude_none=True)
        entry["by"] = "user"
        entry["tool"] = item["tool"]
        if decision.decision == "edit":
            if decision.args is None:
                entry = {
                    "decision": "deny",
                    "by": "system",
                    "tool": item["tool"],
                    "reason": "an edit decision came without arguments",
                }
            else:
                edited[item["call_id"]] = decision.args
        decisions[item["call_id"]] = entry
    if edited:
        # The history must show what really ran: rewrite the calls in the model's message.
        last_ai = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))
        new_calls = [{**tc, "args": edited.get(tc["id"], tc["args"])} for tc in last_ai.tool_calls]
        update["messages"] = [last_ai.model_copy(update={"tool_calls": new_calls})]
        update["tool_calls"] = [
            {**c, "args": edited.get(c["id"], c["args"]), "sent_args": c["args"]}
            if c["id"] in edited
            else c
            for c in state.get("tool_calls", [])
        ]
    return update


async def call_tool(
    state: AgentState, config: RunnableConfig, runtime: Runtime[AgentContext]
) -> dict[str, Any]:
    # The checkpoint this step starts from: the same on every resume of this step, different
    # on a fork. It keys the tool journal so that an approved call runs exactly once.
    base = config["configurable"].get("checkpoint_map", {}).get("", "")
    messages, results = await runtime.context.run_tools(
        state.get("tool_calls", []), state.get("decisions", {}), base
    )
    return {"messages": messages, "tool_results": results, "tool_calls": [], "decisions": {}}


def finalize(state: AgentState) -> dict[str, Any]:
    reason = state.get("stop_reason")
    answer = state.get("final_answer")
    last_ai = next(
        (m for m in reversed(state.get("messages", [])) if isinstance(m, AIMessage)), None
    )
    closing: list[ToolMessage] = []
    if last_ai is not None and (last_ai.tool_calls or last_ai.invalid_tool_calls):
        answered = {m.tool_call_id for m in state.get("messages", []) if isinstance(m, ToolMessage)}
        for tc in [*last_ai.tool_calls, *last_ai.invalid_tool_calls]:
            if tc["id"] in answered:
                continue
            text = "The run ended here." if tc["name"] == "terminate" else f"Not run: {reason}"
            closing.append(
                ToolMessage(
                    content=text,
                    tool_call_id=tc["id"],
                    name=tc["name"],
                    id=f"result_{tc['id']}",
                    status="success" if tc["name"] == "terminate" else "error",
                )
            )
    if answer is None and reason is None:
        answer = (state.get("agent_outcome") or {}).get("text", "")
    return {"final_answer": answer, "messages": closing, "tool_calls": [], "decisions": {}}


async def _after_llm(state: AgentState) -> str:
    # Async on purpose: LangGraph runs a plain function's route in a worker thread, one trip
    # there and back per step for three dictionary lookups (bench/step_overhead.py).
    if state.get("stop_reason") or state.get("final_answer") is not None:
        return "finalize"
    calls = state.get("tool_calls")
    if not calls:
        return "finalize"
    # When the policy decided every call (call_llm recorded it), there is nobody to ask:
    # skip the approve step and its checkpoint.
    decided = state.get("decisions") or {}
    return "call_tool" if all(c["id"] in decided for c in calls) else "approve"


def build_graph() -> StateGraph:
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("call_llm", call_llm)
    graph.add_node("approve", approve)
    graph.add_node("call_tool", call_tool)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "call_llm")
    graph.add_conditional_edges("call_llm", _after_llm, ["approve", "call_tool", "finalize"])
    graph.add_edge("approve", "call_tool")
    graph.add_edge("call_tool", "call_llm")
    graph.add_edge("finalize", END)
    return graph
