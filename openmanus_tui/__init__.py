"""OpenManus TUI: a terminal workbench for running, watching and steering an AI agent."""

__version__ = "0.1.0"
