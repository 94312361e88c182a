"""What ``run`` checks beyond the settings' own types, in one function that ``config validate``
and ``run``/``resume`` both call (issue 12, defect 15): what one accepts the other accepts.

Each check uses the same parser the runtime uses (the model spec and its script, the storage
URL, the MCP server entries and file, the agent profile, the workspace), so a value ``run``
would reject is reported by ``config validate`` with the same one-line message.
"""

from __future__ import annotations

from openmanus_tui.config import Settings
from openmanus_tui.errors import ConfigError, OpenManusError


def check_settings(settings: Settings) -> None:
    """Raise :class:`ConfigError` (one line) for the first setting ``run`` would reject."""
    from openmanus_tui.agent.prompts import resolve_profile
    from openmanus_tui.limits import check_workspace
    from openmanus_tui.models.factory import effective_model_settings
    from openmanus_tui.models.scripted import load_script
    from openmanus_tui.utilities.mcp_config import load_mcp_config, parse_mcp_config

    settings.db_path  # noqa: B018 - raises for an unsupported storage.url
    model = effective_model_settings(settings)
    if model.provider == "scripted":
        load_script(model.name)
    mcp = settings.mcp
    load_mcp_config(mcp.config_file)
    if mcp.servers:
        parse_mcp_config({"mcpServers": mcp.servers}, source="config: mcp.servers")
    if settings.sources.domains_file is not None:  # the user's domain classes (research/)
        from openmanus_tui.research.scoring import domain_classes

        domain_classes(settings.sources.domains_file)
    if resolve_profile(settings.agent.profile) is None:
        raise ConfigError(f"agent.profile: no profile named {settings.agent.profile!r}")
    if settings.sandbox.workspace is not None:
        try:
            check_workspace(settings.sandbox.workspace)
        except OpenManusError as exc:
            raise ConfigError(f"sandbox.workspace: {exc.message}", hint=exc.hint) from None
