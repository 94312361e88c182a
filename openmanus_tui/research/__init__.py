"""Research: sources you can check (issue 13).

The research graph (``graph.py``) plans sub-questions, researches them in parallel, extracts
findings with exact quotes, cross-references them (``crossref.py``), writes a report with
numbered citations and verifies every citation against the stored source text (``verify.py``).
"""
