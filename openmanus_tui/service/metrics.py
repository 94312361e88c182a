"""Prometheus metrics of the API server, every name prefixed ``openmanus_``.

Counted from the typed event stream (``observe``: the listener every run gets) and from the
pool (queue depth, active runs, queue wait, run time). Each app has a registry of its own, so
several servers in one process (tests) keep apart.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from openmanus_tui import events as ev

# The ``*_created`` timestamp series double the output and say nothing a scrape needs.
disable_created_metrics()

_LATENCY = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_RUN_TIME = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.runs = Counter("openmanus_runs", "API runs by final status", ["status"], registry=r)
        self.steps = Counter("openmanus_steps", "model steps", registry=r)
        self.model_latency = Histogram(
            "openmanus_model_latency_seconds", "model call latency", buckets=_LATENCY, registry=r
        )
        self.ttft = Histogram(
            "openmanus_model_time_to_first_token_seconds",
            "from a model call's start to its first streamed token",
            buckets=_LATENCY,
            registry=r,
        )
        self.tokens = Counter("openmanus_tokens", "tokens", ["direction"], registry=r)
        self.cost = Counter("openmanus_cost_usd", "model cost in USD", registry=r)
        self.tool_calls = Counter(
            "openmanus_tool_calls", "tool calls by tool and status", ["tool", "status"], registry=r
        )
        self.tool_latency = Histogram(
            "openmanus_tool_duration_seconds", "tool run time", ["tool"], buckets=_LATENCY,
            registry=r,
        )
        self.errors = Counter("openmanus_errors", "errors by class", ["error_class"], registry=r)
        self.approvals = Counter(
            "openmanus_approvals", "approval decisions", ["decision", "by"], registry=r
        )
        self.queue_depth = Gauge("openmanus_queue_depth", "runs waiting for a slot", registry=r)
        self.active_runs = Gauge("openmanus_active_runs", "runs executing", registry=r)
        self.queue_wait = Histogram(
            "openmanus_run_queue_wait_seconds", "time a run waited for a slot",
            buckets=_RUN_TIME, registry=r,
        )
        self.run_time = Histogram(
            "openmanus_run_duration_seconds", "run time, queue wait excluded",
            buckets=_RUN_TIME, registry=r,
        )

    def listener(self, known_tools: Any = None) -> Any:
        """A listener for one run's events (it keeps the run's model-call timing). A tool
        name not in ``known_tools`` (a model's invention) is counted as ``unknown``: labels
        must stay few."""
        call_started = [time.monotonic()]

        def tool_label(name: str) -> str:
            return name if known_tools is None or name in known_tools else "unknown"

        first_token = [False]

        def observe(event: ev.Event) -> None:
            if isinstance(event, ev.ThoughtDelta):
                if not first_token[0]:
                    first_token[0] = True
                    self.ttft.observe(max(0.0, time.monotonic() - call_started[0]))
                return
            if isinstance(event, ev.RunStarted | ev.ToolFinished | ev.ApprovalDecided):
                call_started[0] = time.monotonic()
                first_token[0] = False
            if isinstance(event, ev.Usage):
                self.steps.inc()
                self.model_latency.observe(event.latency_ms / 1000)
                self.tokens.labels("in").inc(event.tokens_in)
                self.tokens.labels("out").inc(event.tokens_out)
                self.cost.inc(max(0.0, event.cost))
            elif isinstance(event, ev.ToolFinished):
                tool = tool_label(event.tool)
                self.tool_calls.labels(tool, event.status).inc()
                self.tool_latency.labels(tool).observe(event.duration_ms / 1000)
            elif isinstance(event, ev.Error):
                self.errors.labels(event.error_class).inc()
            elif isinstance(event, ev.ApprovalDecided):
                self.approvals.labels(event.decision, event.by).inc()

        return observe
