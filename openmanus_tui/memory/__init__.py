"""The memory manager: token accounting, the context builder's compaction, long-term memory
(LangGraph store over SQLite, FTS5 / semantic search) and large-observation handles.

- ``tokens``: offline BPE counts (bpe-openai) and their reconciliation with reported usage.
- ``compaction``: which turns to summarise, the summarisation prompt, the summary record.
- ``longterm``: facts, preferences and notes across sessions, in user / project / session
  namespaces.
- ``observations``: large tool results stored once and read in pieces by handle.
- ``manager``: one session's memory, used by the agent graph and the runtime's session.

The prompt assembly itself lives in ``agent/context.py``.
"""
