"""The context builder and token accounting without a runtime: whole turns under any budget,
the request always kept, placeholders, pins, summaries, calibration and bounded summaries."""

from __future__ import annotations

import random

from conftest import check_tool_pairing
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_openai.chat_models.base import _convert_message_to_dict

from openmanus_tui.agent.context import plan_context
from openmanus_tui.memory.compaction import (
    SUMMARY_MARKER,
    fit_summary,
    select_turns,
    summary_request,
)
from openmanus_tui.memory.tokens import TokenCounter, encoding_name, reconcile
from openmanus_tui.models.scripted import Script, ScriptedChatModel


def history(turns: int, seed: int = 7) -> list[BaseMessage]:
    rng = random.Random(seed)
    msgs: list[BaseMessage] = [HumanMessage(content="first task", id="u0")]
    for i in range(turns):
        if rng.random() < 0.1:
            msgs.append(HumanMessage(content=f"follow-up {i}", id=f"u{i + 1}"))
        calls = [
            {"id": f"c{i}_{j}", "name": "file_read", "args": {"path": f"f{i}_{j}.txt"}}
            for j in range(rng.randint(0, 3))
        ]
        msgs.append(AIMessage(content="word " * rng.randint(1, 60), tool_calls=calls, id=f"a{i}"))
        for c in calls:
            if rng.random() < 0.95:  # a few results are missing (a crash between steps)
                msgs.append(
                    ToolMessage(
                        content="x" * rng.randint(10, 3000),
                        tool_call_id=c["id"],
                        name="file_read",
                        id=f"r{c['id']}",
                    )
                )
    return msgs


def test_whole_turns_under_any_budget() -> None:
    msgs = history(120)
    last_user = [m for m in msgs if isinstance(m, HumanMessage)][-1]
    for budget in [50, 300, 1000, 2500, 6000, 20_000, 200_000]:
        plan = plan_context("system", msgs, budget)
        wire = [_convert_message_to_dict(m) for m in plan.messages]
        check_tool_pairing(wire)
        assert last_user in plan.messages or any(m.id == last_user.id for m in plan.messages)
        if plan.dropped:
            assert plan.tokens <= budget or len(plan.messages) == 2
        # Recent turns are kept contiguously: what is sent besides the request is a suffix.
        stored_ids = [m.id for m in msgs]
        real = [m.id for m in plan.messages[1:] if m.id in stored_ids and m.id != last_user.id]
        if real:
            start = stored_ids.index(real[0])
            assert real == [i for i in stored_ids[start:] if i != last_user.id]
    placeholder = [
        m
        for m in plan_context("s", msgs, 10**6).messages
        if isinstance(m, ToolMessage) and "No result was recorded" in str(m.content)
    ]
    assert placeholder  # the missing results were filled in


def test_pins_summary_and_memories_are_placed_and_counted() -> None:
    msgs = history(40, seed=3)
    counter = TokenCounter("gpt-4o")
    pinned = next(m for m in msgs if isinstance(m, AIMessage) and m.tool_calls)
    covered = [m.id for m in msgs if isinstance(m, AIMessage)][:10]
    plan = plan_context(
        "system prompt",
        msgs,
        3000,
        counter=counter,
        summary="Done: read f0_0.txt",
        covered=[*covered, pinned.id],
        pins=[pinned.id],
        memories=["[user] likes tea"],
    )
    system = plan.messages[0]
    assert isinstance(system, SystemMessage)
    assert "likes tea" in str(system.content) and "Done: read f0_0.txt" in str(system.content)
    assert pinned in plan.messages or any(m.id == pinned.id for m in plan.messages)
    sent = {m.id for m in plan.messages}
    assert not (set(covered) - {pinned.id}) & sent  # covered turns are not sent
    kinds = {p.kind for p in plan.parts}
    assert {"system", "memories", "summary", "pinned"} <= kinds
    included = sum(p.tokens for p in plan.parts if p.included and p.kind != "summary") + sum(
        p.tokens for p in plan.parts if p.kind == "summary"
    )
    assert abs(included + 3 - plan.tokens) <= 2 * len(plan.parts)


def test_token_counts_and_reconciliation() -> None:
    import bpe_openai  # the library's own tiktoken-style API (the app loads only its Rust core)

    counter = TokenCounter("openai:gpt-4o-mini")
    texts = ["Ünïcode, code: def f(x): return x ** 2  # and numbers 12345",
             "<|endoftext|> is ordinary text here", "a lone \ud800 surrogate", "x" * 250_000]
    for name, model in (("o200k_base", "openai:gpt-4o-mini"), ("cl100k_base", "gpt-4")):
        enc, counter = bpe_openai.get_encoding(name), TokenCounter(model)
        for text in texts[:3]:
            assert counter.text(text) == len(enc.encode_ordinary(text))
    assert counter.text(texts[3]) > 0  # longer than one piece: counted in pieces
    counter = TokenCounter("openai:gpt-4o-mini")
    assert encoding_name("gpt-4") == "cl100k_base" and encoding_name("some-local") == "o200k_base"
    ai = AIMessage(content="", tool_calls=[{"id": "c", "name": "file_read", "args": {"path": "a"}}])
    assert counter.message(ai) > counter.message(AIMessage(content=""))
    assert reconcile(1.0, 1000, 1300) == 1.3  # the server counts more: adopt at once
    assert reconcile(1.3, 1000, 1000) == 1.24  # it counts less: come back slowly
    assert reconcile(1.0, 1000, 500) == 1.0  # never below 1
    assert reconcile(1.1, 0, 500) == 1.1


def test_summary_limits_and_selection() -> None:
    counter = TokenCounter()
    long = "fact " * 2000
    cut = fit_summary(long, 100, counter)
    assert counter.text(cut) <= 100 and cut.endswith("[…]")
    msgs = history(30, seed=5)
    plan = plan_context("s", msgs, 4000, counter=counter)
    chosen = select_turns(
        plan.turns, fixed_tokens=plan.fixed_tokens, budget=4000, target=0.5, keep_recent=2
    )
    candidates = [t for t in plan.turns if not (t.is_request or t.pinned or t.covered)]
    assert chosen == candidates[: len(chosen)]  # the oldest first, contiguous
    assert all(t not in chosen for t in candidates[-2:])
    forced = select_turns(
        plan.turns,
        fixed_tokens=plan.fixed_tokens,
        budget=4000,
        target=0.5,
        keep_recent=2,
        force=True,
    )
    assert len(forced) == len(candidates) - 2


def test_scripted_model_answers_a_summary_request_with_the_facts() -> None:
    msgs = [
        HumanMessage(content="do it", id="u"),
        AIMessage(
            content="",
            id="a1",
            tool_calls=[
                {
                    "id": "c1",
                    "name": "file_write",
                    "args": {"path": "facts.txt", "content": "The code is ZEBRA-4417."},
                }
            ],
        ),
        ToolMessage(
            content="wrote 23 bytes to facts.txt", tool_call_id="c1", id="r1", name="file_write"
        ),
    ]
    plan = plan_context("s", msgs, 10_000)
    request = summary_request(plan.turns[1:], previous="Found: earlier fact Q-1", task="do it")
    assert SUMMARY_MARKER in str(request[0].content) and request[1].content == "do it"
    model = ScriptedChatModel(script=Script(steps=[]))
    first = model.invoke(request)
    assert first.content == model.invoke(request).content  # deterministic
    assert "ZEBRA-4417" in str(first.content) and "Q-1" in str(first.content)
    assert "facts.txt" in str(first.content)
