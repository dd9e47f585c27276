"""The result document: its packaged JSON schema accepts what `run` writes
and rejects damaged documents with the key path at fault."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from backtrace.document import SCHEMA_VERSION, DocumentError, validate_document

STUDY = (Path(__file__).resolve().parent.parent / "studies" / "na62_2021" / "trident"
         / "background.json")


@pytest.fixture(scope="module")
def document():
    return json.loads(STUDY.read_text())


def test_a_written_document_is_valid(document):
    assert document["schema_version"] == SCHEMA_VERSION
    assert validate_document(document) is document


@pytest.mark.parametrize("damage,where", [
    (lambda d: d.pop("regions"), "'regions' is a required property"),
    (lambda d: d["regions"]["SR"]["mu-mu"].pop("stat"), "regions.SR.mu-mu"),
    (lambda d: d["regions"]["CR"]["other"].update(n_mc=-1), "regions.CR.other.n_mc"),
    (lambda d: d["config"].update(tracks_sha256="xyz"), "config.tracks_sha256"),
    (lambda d: d["systematics"].update(level="some"), "systematics.level"),
    (lambda d: d.update(pot=0), "pot"),
])
def test_damaged_documents_are_rejected_naming_the_key(document, damage, where):
    doc = copy.deepcopy(document)
    damage(doc)
    with pytest.raises(DocumentError, match=where.replace(".", r"\.")):
        validate_document(doc, "result/background.json")


def test_unknown_schema_version_is_named(document):
    doc = dict(document, schema_version=99)
    with pytest.raises(DocumentError, match="version 99"):
        validate_document(doc)
    with pytest.raises(DocumentError, match="schema_version"):
        validate_document({"pot": 1.0})
