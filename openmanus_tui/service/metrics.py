"""Prometheus metrics of the API server, every name prefixed ``openmanus_``.

Counted from the typed event stream (``observe``: the listener every run gets) and from the
pool (queue depth, active runs, queue wait, run time). Each app has a registry of its own, so
several servers in one process (tests) keep apart.

The resilience figures (circuit breakers, steps per answering model, fallbacks, cache hits and
misses) are not counted here a second time: ``ResilienceCollector`` reports, at each scrape, the
snapshot the ``/metrics`` route takes from ``runtime.api`` just before (the cache counters live
in the database and are async to read, a collector's ``collect`` is not).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from openmanus_tui import events as ev

# The ``*_created`` timestamp series double the output and say nothing a scrape needs.
disable_created_metrics()

_LATENCY = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_RUN_TIME = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


# A breaker's state as a number: alert on ``openmanus_breaker_state == 2``.
BREAKER_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


class ResilienceCollector(Collector):
    """Breakers, model answers, fallbacks and caches, from the last ``update`` snapshot."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.caches: dict[str, Any] = {}

    def update(self, status: dict[str, Any], caches: dict[str, Any]) -> None:
        """``status`` from ``api.resilience_status``, ``caches`` from ``api.cache_stats``."""
        self.status, self.caches = status, caches

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "openmanus_breaker_state",
            "circuit breaker state: 0 closed, 1 half-open, 2 open", labels=["breaker"],
        )
        failures = GaugeMetricFamily(
            "openmanus_breaker_failures", "a breaker's failures in a row", labels=["breaker"]
        )
        for b in self.status.get("breakers", []):
            state.add_metric([b["name"]], BREAKER_STATE_VALUE.get(b["state"], 0))
            failures.add_metric([b["name"]], b.get("failures", 0))
        yield state
        yield failures
        answered = CounterMetricFamily(
            "openmanus_model_steps", "model steps by the model that answered", labels=["model"]
        )
        for model, count in sorted(self.status.get("answers", {}).items()):
            answered.add_metric([model], count)
        yield answered
        yield CounterMetricFamily(
            "openmanus_model_fallbacks", "steps that left a model for the next fallback",
            value=self.status.get("fallbacks", 0),
        )
        hits = CounterMetricFamily("openmanus_cache_hits", "cache hits", labels=["cache"])
        misses = CounterMetricFamily("openmanus_cache_misses", "cache misses", labels=["cache"])
        entries = GaugeMetricFamily(
            "openmanus_cache_entries", "live (unexpired) cache entries", labels=["cache"]
        )
        size = GaugeMetricFamily("openmanus_cache_bytes", "cache size", labels=["cache"])
        for name, stats in sorted(self.caches.items()):
            hits.add_metric([name], stats.get("hits", 0))
            misses.add_metric([name], stats.get("misses", 0))
            entries.add_metric([name], stats.get("entries", 0))
            size.add_metric([name], stats.get("bytes", 0))
        yield from (hits, misses, entries, size)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.resilience = ResilienceCollector()
        r.register(self.resilience)
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
