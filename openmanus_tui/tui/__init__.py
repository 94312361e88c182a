"""The Textual workbench: the only part of the package that imports textual.

Entry point: ``openmanus_tui.tui.app.run_tui(settings, session_id)``. Widgets consume the runtime's
typed events (``openmanus_tui.events``) and the runtime API only, never LangGraph.

Layout: ``app.py`` (the app, its bindings and workers) with its glue at this level (``app.tcss``,
``commands.py`` and ``session_commands.py`` for the palette and slash commands, ``branching.py``
for branch operations, ``transcript.py``, ``themes.py``, ``ui_state.py``, ``web_driver.py``);
``screens/`` holds the Screen and ModalScreen classes, ``widgets/`` the widgets. The recorded
scenes of the snapshot tests live in ``tests/scenes/``, outside the package.
"""
