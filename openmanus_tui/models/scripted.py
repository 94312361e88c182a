"""``scripted:<name>``: an offline chat model that follows a script, for demos, tests and benches.

It supports ``bind_tools`` and streams text and tool-call chunks like a real OpenAI model. The
reply is chosen from the message history, not from call order: step *k* of the script answers a
history with *k* assistant messages after the last user message. So a restart, a replay or a
retry of the same history gets the same reply, and ids are derived from the history too.

A script is JSON (a file path, or a name of one shipped in ``models/scripts/``)::

    {"steps": [{"text": "thinking...", "tool_calls": [{"name": "file_read", "args": {...}}]}, ...],
     "final": "the answer; {last_result} is replaced by the latest tool result"}

``args`` may also be a string: it is sent verbatim (malformed JSON included), which is how tests
drive the invalid-tool-call paths.

A summarisation request (memory compaction, marked with ``SUMMARY_MARKER`` in its system message)
is answered by :func:`scripted_summary`, which quotes the turns it is given, deterministically;
a research stage (``research/prompts.py``) by ``scripted_research.scripted_research``; a
writing-graph step (``writing/prompts.py``) by ``scripted_writing.scripted_writing``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from openmanus_tui.errors import ConfigError
from openmanus_tui.memory.compaction import SUMMARY_MARKER
from openmanus_tui.models.scripted_research import scripted_research
from openmanus_tui.models.scripted_writing import scripted_writing
from openmanus_tui.research.prompts import stage_of
from openmanus_tui.tools.provenance import unwrap
from openmanus_tui.writing.prompts import SYSTEM as WRITING_SYSTEM


class ScriptedToolCall(BaseModel):
    name: str
    args: dict[str, Any] | str = Field(default_factory=dict)


class ScriptStep(BaseModel):
    text: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)


class Script(BaseModel):
    name: str = "script"
    description: str = ""
    steps: list[ScriptStep] = Field(default_factory=list)
    final: str = "Done."
    # Seconds to wait before each streamed token: lets a person watch the demo stream.
    token_delay: float = 0.0


def load_script(name: str) -> Script:
    """A script by shipped name (``demo``) or by path to a JSON file."""
    path = Path(name).expanduser()
    try:
        if path.suffix == ".json" or path.exists():
            text = path.read_text(encoding="utf-8")
        else:
            res = resources.files("openmanus_tui.models").joinpath("scripts", f"{name}.json")
            if not res.is_file():
                shipped = sorted(
                    p.name.removesuffix(".json")
                    for p in resources.files("openmanus_tui.models").joinpath("scripts").iterdir()
                )
                raise ConfigError(
                    f"model: no script named {name!r}; shipped scripts: {', '.join(shipped)}"
                )
            text = res.read_text(encoding="utf-8")
        data = json.loads(text)
        data.setdefault("name", path.stem)
        return Script.model_validate(data)
    except ConfigError:
        raise
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model: cannot load script {name!r}: {exc}") from None


def _turn(messages: Sequence[BaseMessage]) -> tuple[int, int, str]:
    """(user messages so far, assistant replies since the last one, last tool result)."""
    humans = 0
    since = 0
    last_result = ""
    for msg in messages:
        if isinstance(msg, HumanMessage):
            humans += 1
            since = 0
        elif isinstance(msg, AIMessage):
            since += 1
        elif isinstance(msg, ToolMessage):
            # the model is sent results inside provenance delimiters; the demo quotes the result
            last_result = unwrap(str(msg.content))
    return humans, since, last_result


_PATH = re.compile(r"(?<![\w.-])/?(?:[\w.-]+/)*[\w-]+\.[A-Za-z0-9]{1,5}\b")
_LINE_CHARS = 120


def _short(text: str, chars: int = _LINE_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= chars else line[: chars - 1] + "…"


def scripted_summary(instructions: str, request: str) -> str:
    """A deterministic stand-in for a model's summary of the turns in ``request``.

    Keeps the previous summary's lines first (so early facts survive every compaction), adds a
    line per call, result and message of the new turns, and ends with the file paths seen;
    within the word limit the instructions state.
    """
    limit_match = re.search(r"At most (\d+) words", instructions)
    limit = int(limit_match.group(1)) if limit_match else 300
    previous = re.search(r"<previous_summary>\n(.*?)\n</previous_summary>", instructions, re.S)
    turns = re.search(r"<turns>\n(.*?)\n</turns>", request, re.S)
    lines: list[str] = []
    files: list[str] = []
    omitted = 0
    if previous:
        for line in previous.group(1).splitlines():
            if line.startswith("Files: "):
                files.extend(f for f in line[7:].split(", ") if f)
            elif m := re.match(r"\(\+(\d+) more steps not listed\)", line):
                omitted += int(m.group(1))
            elif line.strip():
                lines.append(line)
    kinds = {"call": "Done", "result": "Found", "user": "Asked", "assistant": "Noted"}
    for raw in (turns.group(1) if turns else "").splitlines():
        m = re.match(r"\[(call|result|user|assistant)(?: ([^\]]*))?\] ?(.*)", raw)
        if not m:
            continue
        kind, name, text = m.group(1), m.group(2) or "", m.group(3)
        files.extend(f for f in _PATH.findall(text) if f not in files)
        lines.append(f"{kinds[kind]}: {name + ' ' if name else ''}{_short(text)}")
    files = list(dict.fromkeys(files))[-20:]
    budget = limit - 2 - len(files)
    kept: list[str] = []
    words = 0
    for line in lines:
        n = len(line.split())
        if words + n > budget:
            omitted += 1
            continue
        kept.append(line)
        words += n
    if omitted:
        kept.append(f"(+{omitted} more steps not listed)")
    if files:
        kept.append("Files: " + ", ".join(files))
    return "\n".join(kept) or "Nothing to summarise."


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


class ScriptedChatModel(BaseChatModel):
    """A deterministic chat model driven by a ``Script``."""

    script: Script
    tools: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"script": self.script.name}

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):  # type: ignore[override]
        schemas = [convert_to_openai_tool(t) for t in tools]
        return self.model_copy(update={"tools": schemas}).bind(**kwargs)

    # -- reply selection ----------------------------------------------------------------------
    def reply_for(self, messages: Sequence[BaseMessage]) -> AIMessage:
        if messages and isinstance(messages[0], SystemMessage):
            system = str(messages[0].content)
            if SUMMARY_MARKER in system:
                text = scripted_summary(system, str(messages[-1].content))
                digest = hashlib.sha1(text.encode()).hexdigest()[:10]
                return AIMessage(content=text, id=f"msg_summary_{digest}")
            if system.startswith(WRITING_SYSTEM):  # the writing graph (writing/prompts.py)
                text = scripted_writing(str(messages[-1].content)) or ""
                digest = hashlib.sha1(text.encode()).hexdigest()[:10]
                return AIMessage(content=text, id=f"msg_writing_{digest}")
            stage = stage_of(system)
            if stage is not None:  # the research graph (research/prompts.py)
                text = scripted_research(stage, system, str(messages[-1].content))
                digest = hashlib.sha1(text.encode()).hexdigest()[:10]
                return AIMessage(content=text, id=f"msg_research_{digest}")
        humans, index, last_result = _turn(messages)
        digest = hashlib.sha1(
            f"{self.script.name}:{humans}:{messages[-1].content if messages else ''}".encode()
        ).hexdigest()[:10]
        if index < len(self.script.steps):
            step = self.script.steps[index]
            calls, invalid = [], []
            for i, call in enumerate(step.tool_calls):
                call_id = f"call_{digest}_{index}_{i}"
                if isinstance(call.args, str):
                    try:
                        parsed = json.loads(call.args)
                        if not isinstance(parsed, dict):
                            raise ValueError("arguments are not an object")
                        calls.append({"name": call.name, "args": parsed, "id": call_id})
                    except ValueError as exc:
                        invalid.append(
                            {
                                "name": call.name,
                                "args": call.args,
                                "id": call_id,
                                "error": str(exc),
                                "type": "invalid_tool_call",
                            }
                        )
                else:
                    calls.append({"name": call.name, "args": call.args, "id": call_id})
            return AIMessage(
                content=step.text,
                tool_calls=calls,
                invalid_tool_calls=invalid,
                id=f"msg_{digest}_{index}",
            )
        excerpt = last_result.strip()
        if len(excerpt) > 400:
            excerpt = excerpt[:400] + "…"
        text = self.script.final.replace("{last_result}", excerpt)
        return AIMessage(content=text, id=f"msg_{digest}_{index}")

    def _usage(self, messages: Sequence[BaseMessage], reply: AIMessage) -> dict[str, int]:
        prompt = sum(_tokens(str(m.content)) + 4 for m in messages)
        prompt += sum(_tokens(json.dumps(t)) for t in self.tools)
        out = _tokens(str(reply.content)) + sum(
            _tokens(json.dumps(c["args"])) + 4 for c in reply.tool_calls
        )
        return {"input_tokens": prompt, "output_tokens": out, "total_tokens": prompt + out}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self.reply_for(messages)
        reply.usage_metadata = self._usage(messages, reply)  # type: ignore[assignment]
        reply.response_metadata = {"finish_reason": "tool_calls" if reply.tool_calls else "stop"}
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        reply = self.reply_for(messages)
        text = str(reply.content)
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            if piece:
                yield AIMessageChunk(content=piece, id=reply.id)
        for i, call in enumerate(reply.tool_calls):
            args = json.dumps(call["args"])
            mid = len(args) // 2
            yield AIMessageChunk(
                content="",
                id=reply.id,
                tool_call_chunks=[
                    tool_call_chunk(name=call["name"], args=args[:mid], id=call["id"], index=i)
                ],
            )
            yield AIMessageChunk(
                content="",
                id=reply.id,
                tool_call_chunks=[tool_call_chunk(name=None, args=args[mid:], id=None, index=i)],
            )
        offset = len(reply.tool_calls)
        for j, bad in enumerate(reply.invalid_tool_calls):
            yield AIMessageChunk(
                content="",
                id=reply.id,
                tool_call_chunks=[
                    tool_call_chunk(
                        name=bad["name"], args=bad["args"], id=bad["id"], index=offset + j
                    )
                ],
            )
        yield AIMessageChunk(
            content="",
            id=reply.id,
            usage_metadata=self._usage(messages, reply),  # type: ignore[arg-type]
            response_metadata={"finish_reason": "tool_calls" if reply.tool_calls else "stop"},
            chunk_position="last",
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            if run_manager and isinstance(chunk.content, str) and chunk.content:
                run_manager.on_llm_new_token(
                    chunk.content, chunk=ChatGenerationChunk(message=chunk)
                )
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            if self.script.token_delay and chunk.content:
                await asyncio.sleep(self.script.token_delay)
            gen = ChatGenerationChunk(message=chunk)
            if run_manager and isinstance(chunk.content, str) and chunk.content:
                await run_manager.on_llm_new_token(chunk.content, chunk=gen)
            yield gen
