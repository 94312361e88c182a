"""The right-hand panel's tabs: Inspector, Memory, Tools, Sources and Document (``#panel``).

The app mounts them into their slot just after its first frame (``OpenManusApp._mount_panel``):
they are about a third of the workbench's widgets and show nothing until a session is open, so
neither their import nor their styling is on the way to that frame.
"""

from __future__ import annotations

from textual.widgets import TabbedContent, TabPane

from openmanus_tui.tui.widgets.document import DocumentPane
from openmanus_tui.tui.widgets.inspector import Inspector
from openmanus_tui.tui.widgets.memory import MemoryPane
from openmanus_tui.tui.widgets.sources import SourcesPane
from openmanus_tui.tui.widgets.tools_pane import ToolsPane


def side_panel() -> TabbedContent:
    """The tabs, ready to mount (what ``with TabPane(...)`` in a ``compose`` would build)."""
    panel = TabbedContent(id="panel")
    panel.compose_add_child(TabPane("Inspector", Inspector(id="inspector"), id="tab-inspector"))
    panel.compose_add_child(TabPane("Memory", MemoryPane(id="memory"), id="tab-memory"))
    panel.compose_add_child(TabPane("Tools", ToolsPane(id="tools-pane"), id="tab-tools"))
    panel.compose_add_child(TabPane("Sources", SourcesPane(id="sources"), id="tab-sources"))
    panel.compose_add_child(TabPane("Document", DocumentPane(id="document"), id="tab-document"))
    return panel
