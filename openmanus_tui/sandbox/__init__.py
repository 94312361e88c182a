"""The local subprocess sandbox: isolation levels L0-L3, probing, and running commands.

See /work/shared/design/SANDBOX.md for the profile, the levels and the attack matrix.
"""

from openmanus_tui.errors import SandboxError
from openmanus_tui.sandbox.core import Sandbox
from openmanus_tui.sandbox.probe import Mechanism, ProbeReport, format_report, probe
from openmanus_tui.sandbox.types import (
    BelowMinIsolation,
    ExecResult,
    IsolationLevel,
    SandboxLimits,
)

__all__ = [
    "BelowMinIsolation",
    "ExecResult",
    "IsolationLevel",
    "Mechanism",
    "ProbeReport",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "format_report",
    "probe",
]
