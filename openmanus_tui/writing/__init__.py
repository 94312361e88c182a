"""The writing system: citations formatted by code (CSL styles), readability, style and
structure scores, the writing graph (outline → parallel drafts → rubric review → revise →
assemble) and document output (Markdown, HTML, PDF, DOCX). Core package: never imports Textual."""
