"""Prompt tokens per step and context-building time over a 500-step session: the memory
manager's context builder (whole turns, rolling summary, excerpts of large results) against
"send the whole history", measured in the same run on the same synthetic history.

The session: one request, then per step an assistant message with a tool call and its result
(200–1,500 characters, and a 20 KB output every 25th step). Compaction summaries come from the
offline scripted model (deterministic); its calls are counted but are not context building.

    python bench/memory.py [--steps 500] [--window 32000]
"""

from __future__ import annotations

import argparse
import json
import random
import time

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from openmanus_tui.agent.context import plan_context
from openmanus_tui.agent.prompts import system_prompt
from openmanus_tui.memory.compaction import fit_summary, select_turns, summary_request
from openmanus_tui.memory.tokens import TokenCounter, content_text
from openmanus_tui.models.scripted import Script, ScriptedChatModel
from openmanus_tui.tools.builtin import build_registry


def step_messages(i: int, rng: random.Random) -> list[BaseMessage]:
    call = {"id": f"c{i}", "name": "shell_exec", "args": {"command": f"ls -la dir{i}"}}
    size = 20_000 if i % 25 == 0 else rng.randint(200, 1500)
    words = " ".join(f"file{i}_{k}.txt" for k in range(size // 14))
    return [
        AIMessage(content=f"Step {i}: listing dir{i}.", tool_calls=[call], id=f"a{i}"),
        ToolMessage(content=words[:size], tool_call_id=f"c{i}", name="shell_exec", id=f"r{i}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--window", type=int, default=32_000)
    args = parser.parse_args()

    counter = TokenCounter("gpt-4o")
    baseline_counter = TokenCounter("gpt-4o")
    tools = build_registry(plugins=False).openai_schemas()
    system = system_prompt("manus", isolation="L1", network=False)
    budget = args.window - min(args.window // 4, 16_384)
    summariser = ScriptedChatModel(script=Script(steps=[]))
    rng = random.Random(42)

    history: list[BaseMessage] = [HumanMessage(content="Inventory every directory.", id="u0")]
    covered: list[str] = []
    summary: str | None = None
    managed_tokens: list[int] = []
    whole_tokens: list[int] = []
    managed_s = whole_s = 0.0
    summary_calls = 0
    over_window = 0
    for i in range(args.steps):
        history.extend(step_messages(i, rng))

        started = time.perf_counter()
        plan = plan_context(
            system,
            history,
            budget,
            counter=counter,
            tools=tools,
            summary=summary,
            covered=covered,
            observation_chars=4096,
        )
        if plan.over(0.85):
            chosen = select_turns(
                plan.turns,
                fixed_tokens=plan.fixed_tokens,
                budget=budget,
                target=0.5,
                keep_recent=2,
            )
            if chosen:
                managed_s += time.perf_counter() - started
                request = summary_request(chosen, previous=summary, task=history[0].content)
                reply = summariser.invoke(request)  # the model's time, not context building
                summary_calls += 1
                started = time.perf_counter()
                summary = fit_summary(content_text(reply.content), int(budget * 0.15), counter)
                covered.extend(t.messages[0].id or "" for t in chosen)
                plan = plan_context(
                    system,
                    history,
                    budget,
                    counter=counter,
                    tools=tools,
                    summary=summary,
                    covered=covered,
                    observation_chars=4096,
                )
        managed_s += time.perf_counter() - started
        managed_tokens.append(plan.tokens)

        started = time.perf_counter()
        whole = [SystemMessage(content=system), *history]
        n = baseline_counter.prompt(whole, tools)
        whole_s += time.perf_counter() - started
        whole_tokens.append(n)
        over_window += n > args.window

    total_m, total_w = sum(managed_tokens), sum(whole_tokens)
    print(f"steps: {args.steps}, window: {args.window:,} tokens, prompt budget: {budget:,}")
    for label, series in (("memory manager", managed_tokens), ("whole history", whole_tokens)):
        marks = {k: series[k - 1] for k in (1, 50, 100, 200, 300, 400, 500) if k <= len(series)}
        print(
            f"{label:>15}: prompt tokens at step "
            + ", ".join(f"{k}: {v:,}" for k, v in marks.items())
        )
    print(
        f"total prompt tokens: memory manager {total_m:,}; whole history {total_w:,}; "
        f"ratio whole/managed {total_w / total_m:.1f}x"
    )
    print(
        f"largest prompt: memory manager {max(managed_tokens):,} (never over the budget: "
        f"{max(managed_tokens) <= budget}); whole history {max(whole_tokens):,}, over the "
        f"window at {over_window} of {args.steps} steps"
    )
    print(
        f"context building: memory manager {managed_s * 1000:.0f} ms "
        f"({managed_s / args.steps * 1000:.2f} ms/step); whole history {whole_s * 1000:.0f} ms "
        f"({whole_s / args.steps * 1000:.2f} ms/step); ratio {managed_s / whole_s:.1f}x"
    )
    print(
        f"compactions (summary calls): {summary_calls}; summary size now "
        f"{counter.text(summary or ''):,} tokens"
    )
    print(
        json.dumps(
            {
                "managed_total": total_m,
                "whole_total": total_w,
                "token_ratio": round(total_w / total_m, 2),
                "build_ms_managed": round(managed_s * 1000, 1),
                "build_ms_whole": round(whole_s * 1000, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
