"""The schema of the result document (``background.json``): the packaged
JSON schema ``backtrace/data/background-<version>.schema.json`` of the
document's ``schema_version``, checked once when a document is written and
when ``backtrace report`` reads one (:func:`validate_document`). The
document itself is built by :mod:`backtrace.prompt.document`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import jsonschema

from backtrace.prompt.document import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "DocumentError", "validate_document"]


class DocumentError(ValueError):
    """Raised when a result document does not match its schema."""


@lru_cache(maxsize=None)
def _schema(version: int) -> dict:
    path = resources.files("backtrace.data") / f"background-{version}.schema.json"
    if not path.is_file():
        raise DocumentError(f"background.json schema version {version} is unknown to "
                            f"this backtrace (it reads version {SCHEMA_VERSION})")
    return json.loads(path.read_text())


def validate_document(doc: dict, source: str = "background.json") -> dict:
    """Check ``doc`` against the schema of its ``schema_version``; raise
    :class:`DocumentError` naming the key path at fault."""
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if not isinstance(version, int):
        raise DocumentError(f"{source}: no integer schema_version")
    validator = jsonschema.Draft202012Validator(_schema(version))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(k) for k in err.absolute_path) or "(top level)"
        raise DocumentError(f"{source}: {where}: {err.message}")
    return doc
