"""The sensitivity table of the combinatorial estimate on the shipped example:
the CDA cut re-applied to pairs measured once equals a run with that cut;
the spill-model inputs and the flux scale follow their formulas; the values
the inputs would need to reach the published numbers do reach them."""

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from backtrace.combinatorial.pairing import CombinatorialConfig, run_combinatorial
from backtrace.combinatorial.spill import load_spill_model
from backtrace.regions import load_regions
from backtrace.tracks import Tracks

EXAMPLE = Path(__file__).parents[2] / "examples" / "sample.parquet"


@pytest.fixture(scope="module")
def example():
    return run_combinatorial(Tracks.open(EXAMPLE), CombinatorialConfig(), progress=False)


def _point(entry, x):
    return next(p["regions"] for p in entry["points"] if p["value"] == pytest.approx(x))


def test_nominal_row_is_the_estimate(example):
    doc = example.document
    sens = doc["sensitivity"]
    assert sens["mode"] == "spill_model" and sens["estimate_sign"] == "opposite"
    for region, value in sens["nominal"].items():
        assert value == pytest.approx(doc["regions"]["opposite"][region]["value"], rel=1e-9)
        for name, entry in sens["inputs"].items():
            assert _point(entry, entry["value"])[region] == pytest.approx(value, rel=1e-9)
    assert sens["nominal"]["CR"] == pytest.approx(6.46e3, rel=0.01)       # issue #31
    assert sens["published"]["at_target_pot"] == {"SR": 0.016, "CR": 0.17}


def test_cda_cut_reapplied_equals_a_run_with_that_cut(example, tmp_path):
    packaged = resources.files("backtrace.data") / "regions_na62_mumu.toml"
    text = packaged.read_text().replace("cda_max_m = 0.05 ", "cda_max_m = 0.01 ")
    assert load_regions(None).selection["cda_max_m"] == 0.05 and "0.01 " in text
    (tmp_path / "cda10.toml").write_text(text)
    rerun = run_combinatorial(Tracks.open(EXAMPLE),
                              CombinatorialConfig(regions_file=str(tmp_path / "cda10.toml")),
                              progress=False).document
    entry = example.document["sensitivity"]["inputs"]["cda_max_m"]
    assert entry["range"] == [0.01, 0.1] and entry["value"] == 0.05
    row = _point(entry, 0.01)
    for region, cell in rerun["regions"]["opposite"].items():
        assert row[region] == pytest.approx(cell["value"], rel=1e-9)
    assert row["SR"] == pytest.approx(0.0385, rel=0.01)          # 8900 × below 0.05 m
    # looser than the selection: more pairs (measured once, up to 0.1 m)
    assert _point(entry, 0.1)["CR"] > 1.5 * example.document["sensitivity"]["nominal"]["CR"]


def test_spill_inputs_and_flux_follow_their_formulas(example):
    doc = example.document
    inputs = doc["sensitivity"]["inputs"]
    nominal = doc["sensitivity"]["nominal"]["CR"]
    mu3 = doc["normalisation"]["third_track_mean"]
    n_reco = doc["normalisation"]["reconstructable_muons_per_spill"]
    assert _point(inputs["flux_scale"], 2.0)["CR"] == pytest.approx(
        4 * np.exp(-mu3) * nominal, rel=1e-12)
    model = load_spill_model(None)
    p2 = {w: model.with_value("window_ns", w).pairing_probability() for w in (5.0, 10.0)}
    assert _point(inputs["window_ns"], 10.0)["CR"] == pytest.approx(
        nominal * p2[10.0] / p2[5.0] * np.exp(-n_reco * (p2[10.0] - p2[5.0])), rel=1e-9)
    # N_spill P₂ exp(−μ₃), μ₃ ∝ N_spill
    assert _point(inputs["pot_per_spill"], 6.6e12)["CR"] == pytest.approx(
        nominal * 6.6 / 3.5 * np.exp(-mu3 * (6.6 / 3.5 - 1)), rel=1e-9)
    assert _point(inputs["duty_factor"], 1.0)["CR"] == pytest.approx(
        nominal * 0.8 * np.exp(-mu3 * (0.8 - 1)), rel=1e-6)


def test_what_each_input_would_need_reaches_the_published_value(example):
    doc, pairs = example.document, example.pairs
    inputs = doc["sensitivity"]["inputs"]
    mu3 = doc["normalisation"]["third_track_mean"]
    for region, target in (("CR", 0.17), ("SR", 0.016)):
        nominal = doc["sensitivity"]["nominal"][region]
        s = inputs["flux_scale"]["to_published"][region]
        assert s["relation"] == "=" and not s["within_range"]
        assert nominal * s["value"] ** 2 * np.exp(-(s["value"] - 1) * mu3) == \
            pytest.approx(target, rel=1e-6)
        assert 0.004 < s["value"] < 0.008                 # ~ √(published / ours)
        # the CDA cut: below the bound the estimate is at most the target
        c = inputs["cda_max_m"]["to_published"][region]
        assert c["relation"] == "<" and 0.001 < c["value"] < 0.01
        mine = pairs[(pairs["sign"] == "opposite") & (pairs["region"] == region)]
        assert mine.loc[mine["cda_m"] < c["value"], "weight"].sum() <= target
        assert mine.loc[mine["cda_m"] <= c["value"], "weight"].sum() > target
        w = inputs["window_ns"]["to_published"][region]
        assert w["relation"] == "=" and w["value"] < 1e-3    # ns: no physical window
        d = inputs["duty_factor"]["to_published"][region]
        assert d["value"] is None and "not reachable" in d["statement"]
