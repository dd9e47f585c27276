"""Outputs: the ``background.json`` document and its schema, tables
(terminal, Markdown, LaTeX, CSV), plots, the pyhf model and the summary.
"""
