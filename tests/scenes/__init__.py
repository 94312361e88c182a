"""Recorded scenes for the snapshot tests and ``screenshots/make_screenshots.py``: fixed app
states without a model (``workbench``: the main screen, approvals, memory; ``history``: the
branch tree, compare view and replay bar). Test fixtures only: nothing in ``openmanus_tui``
imports them. Imported as ``from scenes import workbench as scenes`` (``tests/`` is on the path).
"""
