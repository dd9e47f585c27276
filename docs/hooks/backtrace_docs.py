"""MkDocs hook of the documentation build (mkdocs.yml, ``hooks:``): show the
docstrings' Sphinx roles as plain code.

The docstrings of ``backtrace`` are free-form text with reStructuredText
roles (``:func:`name```, ``:mod:`...```, ``:class:`~pkg.Name```). Rendered
as Markdown, a role would print as ``:func:`` in front of the code span:
the role is dropped and, as Sphinx does, a ``~``-prefixed target is
shortened to its last component. Nothing else is changed.
"""

from __future__ import annotations

import re

_ROLE = re.compile(
    r":(?:py:)?(?:mod|func|class|meth|data|attr|exc|obj|const|term|ref):"
    r"<code>(~?)([^<]*)</code>")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    if tilde:
        target = target.rsplit(".", 1)[-1]
    return f"<code>{target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_role, html)
