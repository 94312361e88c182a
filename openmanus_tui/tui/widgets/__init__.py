"""The workbench's widgets: the stream and its blocks, the sidebar, the side panel's tabs
(inspector, memory, tools), prompt, status line, welcome, resume banner, queued messages and
the replay bar."""
