"""The approval policy: which tool calls run by themselves, which ask a person, which are refused.

Modes: ``ask`` — every call asks, except ``terminate`` and ``ask_human`` which have no effect;
``auto`` (default) — read-only tools run, the rest ask; ``yolo`` — nothing asks. When the sandbox
runs below ``sandbox.min_isolation`` with ``below_min = "ask"``, every executing call asks
whatever the mode. Decisions a person gives are ``approve``, ``edit`` (new arguments), ``deny``
(with a reason the model receives as the call's result) or ``always`` (approve and remember).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from openmanus_tui.tools.base import Risk, ToolRegistry

NO_EFFECT_TOOLS = frozenset({"terminate", "ask_human"})


class Decision(BaseModel):
    """A person's answer for one pending call."""

    decision: Literal["approve", "edit", "deny", "always"]
    args: dict[str, Any] | None = None
    reason: str = ""
    scope: Literal["session", "project", "global"] | None = None
    rule: str | None = None


@dataclass
class Verdict:
    action: Literal["allow", "ask", "deny"]
    rule: str | None = None
    reason: str = ""


class ApprovalPolicy:
    def __init__(self, mode: str, registry: ToolRegistry, *, force_ask_execute: bool = False):
        self.mode = mode
        self.registry = registry
        self.force_ask_execute = force_ask_execute

    def evaluate(self, tool: str, args: dict[str, Any]) -> Verdict:
        spec = self.registry.get(tool)
        risk = spec.risk if spec else Risk.EXECUTE
        if tool in NO_EFFECT_TOOLS:
            return Verdict("allow", reason="no side effects")
        if self.force_ask_execute and risk == Risk.EXECUTE:
            return Verdict("ask", reason="the sandbox is below the configured minimum isolation")
        if self.mode == "yolo":
            return Verdict("allow", reason="approval mode yolo")
        if self.mode == "auto" and risk == Risk.READ:
            return Verdict("allow", reason="read-only tool in approval mode auto")
        return Verdict("ask", reason=f"{risk.value} tool in approval mode {self.mode}")


class Decisions(BaseModel):
    """The resume value of the approval interrupt: call id -> decision."""

    by_call: dict[str, Decision] = Field(default_factory=dict)
