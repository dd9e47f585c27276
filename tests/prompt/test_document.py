"""The result document: its packaged JSON schema accepts what `run` writes
and rejects damaged documents with the key path at fault."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from backtrace.output.schema import SCHEMA_VERSION, DocumentError, validate_document

STUDY = (Path(__file__).resolve().parents[2] / "studies" / "na62_2021" / "trident"
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


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real estimate on 20 synthetic tracks (one history each)."""
    from backtrace.prompt.pipeline import RunConfig, run_estimate
    from backtrace.tracks import Tracks, write_tracks

    from ..conftest import synthetic_tracks

    path = write_tracks(tmp_path_factory.mktemp("doc") / "t.parquet",
                        synthetic_tracks(20, seed=4), pot=1e9)
    return run_estimate(Tracks.open(path), RunConfig(samples_per_track=1,
                                                     interactions_per_history=1),
                        systematics="none", progress=False).document


def test_the_document_lists_the_vetoes_and_every_estimated_parameter(tiny_run):
    det = tiny_run["detector"]
    vetoes = {v["name"]: v for v in det["vetoes"]}
    assert sorted(vetoes, key=lambda n: int(n[3:])) == [f"LAV{i}" for i in range(1, 13)]
    for v in vetoes.values():
        assert v["inefficiency"] == pytest.approx(1e-3) and v["estimated"]
        assert v["volume"].endswith("/lead_glass") and "[est" in v["source"]
    assert det["muon_id"]["efficiency"] == pytest.approx(0.995)
    assert det["muon_id"]["e_over_p_max"] == pytest.approx(0.2)
    assert det["prompt_boundary_z_m"] == pytest.approx(105.095)
    est = {e["element"]: e for e in det["estimated_parameters"]}
    for name in ("tank-end-cap", "ANTI0", "ANTI0.detector", "LAV3.detector",
                 "MUV3.detector", "LKr.detector", "sweeper"):
        assert name in est and est[name]["source"], name
    assert all(e["source"] for e in est.values())


def test_every_cell_splits_prompt_and_upstream_prompt(tiny_run):
    for cats in tiny_run["regions"].values():
        for cell in cats.values():
            zones = cell["zones"]
            assert set(zones) == {"prompt", "upstream_prompt"}
            assert zones["prompt"]["value"] + zones["upstream_prompt"]["value"] == \
                pytest.approx(cell["value"], rel=1e-12, abs=1e-300)
            assert zones["prompt"]["n_mc"] + zones["upstream_prompt"]["n_mc"] == cell["n_mc"]
