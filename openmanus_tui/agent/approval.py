"""The approval policy: which tool calls run by themselves, which ask a person, which are refused.

Modes: ``ask`` — every call asks, except ``terminate`` and ``ask_human`` which have no effect;
``auto`` (default) — read-only tools run, the rest ask; ``yolo`` — nothing asks. When the sandbox
runs below ``sandbox.min_isolation`` with ``below_min = "ask"``, every executing call asks
whatever the mode. Decisions a person gives are ``approve``, ``edit`` (new arguments), ``deny``
(with a reason the model receives as the call's result) or ``always`` (approve and remember: the
runtime stores the rule, ``store/rules.py``).

Stored rules (``agent/rules.py``) come first and last: a deny rule blocks a call in every mode,
an ask rule asks even in ``yolo``, and an allow rule lets through a call the mode would ask about
(never past the below-minimum-isolation guard).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from openmanus_tui.agent.rules import Rule, RuleDecision, decide
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
    rule_ids: list[int] = field(default_factory=list)


class ApprovalPolicy:
    def __init__(
        self,
        mode: str,
        registry: ToolRegistry,
        *,
        force_ask_execute: bool = False,
        rules: Sequence[Rule] = (),
    ):
        self.mode = mode
        self.registry = registry
        self.force_ask_execute = force_ask_execute
        self.rules: list[Rule] = list(rules)

        self._deferred: list[Rule] = []

    def add_rule(self, rule: Rule, *, deferred: bool = False) -> None:
        """Add a rule saved during a run. A ``deferred`` one waits for ``activate_deferred``:
        the approve node re-runs on resume, and a rule made by answering its question must
        not answer that question in the person's place."""
        (self._deferred if deferred else self.rules).append(rule)

    def activate_deferred(self) -> None:
        self.rules += self._deferred
        self._deferred = []

    def evaluate(self, tool: str, args: dict[str, Any]) -> Verdict:
        spec = self.registry.get(tool)
        risk = spec.risk if spec else Risk.EXECUTE
        matched = decide(self.rules, tool, args) if self.rules else None
        if matched is not None and matched.action == "deny":
            return _from_rule(matched, f"blocked by rule {matched.text}")
        if tool in NO_EFFECT_TOOLS:
            return Verdict("allow", reason="no side effects")
        if self.force_ask_execute and risk == Risk.EXECUTE:
            return Verdict("ask", reason="the sandbox is below the configured minimum isolation")
        if matched is not None and matched.action == "ask":
            return _from_rule(matched, matched.describe())
        if self.mode == "yolo":
            return Verdict("allow", reason="approval mode yolo")
        if self.mode == "auto" and risk == Risk.READ:
            return Verdict("allow", reason="read-only tool in approval mode auto")
        if matched is not None:  # an allow rule spares the person this question
            return _from_rule(matched, matched.describe())
        return Verdict("ask", reason=f"{risk.value} tool in approval mode {self.mode}")

    def deciding_rules(self, tool: str, args: dict[str, Any]) -> list[int]:
        """Ids of the stored rules behind ``evaluate``'s verdict (for hit counts)."""
        return self.evaluate(tool, args).rule_ids


def _from_rule(matched: RuleDecision, reason: str) -> Verdict:
    return Verdict(matched.action, rule=matched.text, reason=reason, rule_ids=matched.ids)


class Decisions(BaseModel):
    """The resume value of the approval interrupt: call id -> decision."""

    by_call: dict[str, Decision] = Field(default_factory=dict)
