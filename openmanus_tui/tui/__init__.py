"""The Textual workbench: the only part of the package that imports textual.

Entry point: ``openmanus_tui.tui.app.run_tui(settings, session_id)``. Widgets consume the runtime's
typed events (``openmanus_tui.events``) and the runtime API only, never LangGraph.
"""
