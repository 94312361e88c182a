"""Assistants: one per agent profile, with an id that is the same on every server.

The LangGraph API addresses a graph through an assistant; ours are the agent profiles
(``manus``, ``research``, ...). Each has a deterministic ``uuid5`` id, and the profile name is
accepted wherever an assistant id is.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from openmanus_tui.runtime import api

NAMESPACE = uuid.UUID("6f1f3a8e-58d2-5c57-9c0e-0a5b4d3c2e11")
GRAPH_ID = "agent"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC).isoformat()


def profiles() -> list[str]:
    return list(api.PROFILES)


def assistant_id(profile: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"openmanus:{profile}"))


def resolve(assistant: str) -> str | None:
    """The profile an assistant id or name names, or None."""
    for profile in profiles():
        if assistant in (profile, assistant_id(profile)):
            return profile
    if assistant == GRAPH_ID:  # the graph's name: the default profile
        return "manus"
    return None


def describe(profile: str) -> dict[str, Any]:
    return {
        "assistant_id": assistant_id(profile),
        "graph_id": GRAPH_ID,
        "name": profile,
        "description": f"The OpenManus agent with the {profile!r} profile",
        "config": {"configurable": {}},
        "context": {"profile": profile},
        "metadata": {"profile": profile, "created_by": "system"},
        "version": 1,
        "created_at": _EPOCH,
        "updated_at": _EPOCH,
    }
