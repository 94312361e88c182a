"""Map LangGraph's ``astream`` output to our events: the one place they are produced from it.

Stream modes used: ``messages`` (token deltas of the model call), ``updates`` (what each node
returned: thoughts, tool calls, usage, decisions, the answer, interrupts) and ``checkpoints``
(the checkpoint lineage, which branching and replay are built on).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import AIMessage

from openmanus_tui import events as ev
from openmanus_tui.runtime.sink import EventSink
from openmanus_tui.tools.base import ToolRegistry


class StreamMapper:
    def __init__(
        self,
        sink: EventSink,
        registry: ToolRegistry,
        seen_checkpoints: set[str],
        on_checkpoint: Callable[[ev.Checkpoint], Awaitable[None]] | None = None,
    ):
        self.sink = sink
        self.on_checkpoint = on_checkpoint
        self.registry = registry
        self.seen_checkpoints = seen_checkpoints
        self.approval: ev.ApprovalRequested | None = None
        # A clarifying question of the research graph waiting for its answer.
        self.question: str | None = None
        self.final_answer: str | None = None
        self.stop_reason: str | None = None
        self.totals: dict[str, Any] = {}
        self._changed: list[str] = []
        self._nodes: list[str] = []
        self._recalled: list[str] = []

    async def handle(self, namespace: tuple[str, ...], mode: str, data: Any) -> None:
        if mode == "custom":
            self._on_custom(data)
        elif mode == "updates":
            for node, update in data.items():
                await self._on_update(node, update)
        elif mode == "checkpoints":
            await self._on_checkpoint(data)

    def _on_custom(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("token"):
            delta = ev.ThoughtDelta(message_id=data.get("message_id", ""), text=data["token"])
            self.sink.emit_live(delta)

    async def _on_update(self, node: str, update: Any) -> None:
        if node == "__interrupt__":
            for item in update:
                value = item.value if hasattr(item, "value") else item
                if isinstance(value, dict) and "question" in value and "calls" not in value:
                    self.question = str(value["question"])
                    await self.sink.emit(ev.Clarification(question=self.question))
                    continue
                calls = [ev.ApprovalCall(**c) for c in value.get("calls", [])]
                self.approval = await self.sink.emit(ev.ApprovalRequested(calls=calls))
            return
        if not isinstance(update, dict):
            return
        self._nodes.append(node)
        self._changed.extend(k for k in update if k not in self._changed)
        for key in ("tokens_in", "tokens_out", "cost", "steps"):
            if key in update:
                self.totals[key] = update[key]
        if node == "call_llm":
            await self._on_llm(update)
            await self._on_decisions(update)  # calls the policy decided alone, if any
        elif node in ("approve", "approve_web"):
            await self._on_decisions(update)
        elif node == "call_tool":
            await self._on_memory_saves(update)
        elif node == "finalize" and update.get("final_answer") is not None:
            self.final_answer = update["final_answer"]
            await self.sink.emit(ev.FinalAnswer(text=self.final_answer or ""))
        await self._on_research(node, update)

    async def _on_research(self, node: str, update: dict[str, Any]) -> None:
        """The research graph's steps (research/graph.py): its log, the answered question and
        the verified report."""
        if node == "clarify" and update.get("clarification"):
            c = update["clarification"]
            await self.sink.emit(ev.Clarification(question=c["question"], answer=c["answer"]))
        for entry in update.get("research_log") or []:
            if "stage" not in entry:
                continue  # the reset a new run starts with
            await self.sink.emit(
                ev.ResearchStep(stage=entry["stage"], text=entry["text"],
                                data=entry.get("data") or {})
            )
        if node in ("cross_reference", "write_report") and "tokens_in" in update:
            # The research graph's model calls, as totals (its researchers run in parallel).
            await self.sink.emit(ev.Usage(
                total_tokens_in=update["tokens_in"], total_tokens_out=update["tokens_out"],
                total_cost=update.get("cost", 0.0),
            ))
        if node in ("verify", "assemble") and update.get("final_answer") is not None:
            # verify: the research graph's report; assemble: the writing graph's document.
            self.final_answer = update["final_answer"]
            await self.sink.emit(ev.FinalAnswer(text=self.final_answer or ""))

    async def _on_llm(self, update: dict[str, Any]) -> None:
        if update.get("stop_reason"):
            self.stop_reason = update["stop_reason"]
        outcome = update.get("agent_outcome") or {}
        await self._on_memory(outcome.get("memory") or {}, update.get("summaries") or [])
        message = next((m for m in update.get("messages", []) if isinstance(m, AIMessage)), None)
        if message is None:
            return
        text = outcome.get("text", "")
        if text:
            await self.sink.emit(ev.Thought(message_id=message.id or "", text=text))
        for call in update.get("tool_calls", []):
            spec = self.registry.get(call["name"])
            await self.sink.emit(
                ev.ToolCall(
                    call_id=call["id"],
                    tool=call["name"],
                    args=call.get("args"),
                    raw_args=call.get("raw_args", ""),
                    tier=spec.tier if spec else None,
                    risk=spec.risk.value if spec else None,
                    message_id=message.id or "",
                    invalid=call.get("invalid"),
                )
            )
        await self.sink.emit(
            ev.Usage(
                message_id=message.id or "",
                tokens_in=outcome.get("tokens_in", 0),
                tokens_out=outcome.get("tokens_out", 0),
                cost=outcome.get("cost", 0.0),
                context_tokens=outcome.get("context_tokens", 0),
                context_window=outcome.get("context_window", 0),
                latency_ms=outcome.get("latency_ms", 0.0),
                retries=outcome.get("retries", 0),
                model=outcome.get("model", ""),
                fallback=bool(outcome.get("fallback")),
                cached=bool(outcome.get("cached")),
                total_tokens_in=update.get("tokens_in", 0),
                total_tokens_out=update.get("tokens_out", 0),
                total_cost=update.get("cost", 0.0),
            )
        )

    async def _on_memory(self, memory: dict[str, Any], summaries: list[dict[str, Any]]) -> None:
        """Compaction, recall and stored observations of one model call (memory/manager.py)."""
        compaction = memory.get("compaction")
        if compaction:
            record = next((s for s in summaries if s["id"] == compaction["summary_id"]), {})
            await self.sink.emit(
                ev.Memory(
                    action="compacted",
                    detail=f"{compaction['turns']} turns summarised automatically: "
                    f"{compaction['tokens_before']:,} → {compaction['tokens_after']:,} tokens",
                    data={**compaction, "auto": True, "summary": record.get("text", "")},
                )
            )
        if memory.get("compaction_error"):
            await self.sink.emit(
                ev.Memory(
                    action="compaction_failed",
                    detail=memory["compaction_error"],
                    data={"budget": memory.get("budget")},
                )
            )
        recalled = memory.get("recalled") or []
        if recalled and recalled != self._recalled:
            await self.sink.emit(
                ev.Memory(
                    action="recalled",
                    detail=f"{len(recalled)} long-term memories in the context",
                    data={"memories": recalled},
                )
            )
        self._recalled = recalled
        for handle in memory.get("observations") or []:
            await self.sink.emit(
                ev.Memory(
                    action="observation_stored",
                    detail=f"a large tool result is sent as an excerpt; its handle is {handle}",
                    data={"handle": handle},
                )
            )

    async def _on_memory_saves(self, update: dict[str, Any]) -> None:
        saved = {
            r["call_id"]
            for r in update.get("tool_results") or []
            if r.get("tool") == "memory_save" and r.get("status") == "ok"
        }
        for msg in update.get("messages") or []:
            if getattr(msg, "tool_call_id", None) in saved:
                await self.sink.emit(
                    ev.Memory(
                        action="saved", detail=str(msg.content), data={"call_id": msg.tool_call_id}
                    )
                )

    async def _on_decisions(self, update: dict[str, Any]) -> None:
        for call_id, d in (update.get("decisions") or {}).items():
            if d.get("decision") == "error":
                continue  # invalid calls: the tool_finished event carries the error
            await self.sink.emit(
                ev.ApprovalDecided(
                    call_id=call_id,
                    tool=d.get("tool", ""),
                    decision=d["decision"],
                    args=d.get("args"),
                    reason=d.get("reason", ""),
                    scope=d.get("scope"),
                    rule=d.get("rule"),
                    by=d.get("by", "user"),
                )
            )

    async def _on_checkpoint(self, data: dict[str, Any]) -> None:
        checkpoint_id = data["config"]["configurable"]["checkpoint_id"]
        self.sink.checkpoint_id = checkpoint_id
        if checkpoint_id in self.seen_checkpoints:
            return  # a resume re-announces the checkpoint it starts from
        self.seen_checkpoints.add(checkpoint_id)
        parent = (data.get("parent_config") or {}).get("configurable", {}).get("checkpoint_id")
        metadata = data.get("metadata") or {}
        event = await self.sink.emit(
            ev.Checkpoint(
                checkpoint_id=checkpoint_id,
                parent_id=parent,
                step=metadata.get("step", 0),
                source=metadata.get("source", ""),
                nodes=self._nodes,
                changed=self._changed,
            )
        )
        self._changed = []
        self._nodes = []
        if self.on_checkpoint is not None:
            await self.on_checkpoint(event)  # type: ignore[arg-type]
