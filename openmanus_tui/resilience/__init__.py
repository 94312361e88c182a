"""Resilience: circuit breakers, model-response and tool-result caches (issue 16)."""
