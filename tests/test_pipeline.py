"""Pipeline: rounds of histories (--target-rel-unc), their equality with one
run, the Monte Carlo error, and the upper limits of empty cells."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtrace.estimate import POISSON_ZERO_90
from backtrace.pipeline import RunConfig, mc_error, next_round, run_estimate
from backtrace.tracks import Tracks, write_tracks

LOOSE = str(Path(__file__).resolve().parent / "data" / "regions_loose.toml")


def test_next_round_rules():
    assert next_round(4, 0.5, None, 100) == (0, "no target")
    assert next_round(4, 0.1, 0.1, 100) == (0, "target")
    assert next_round(100, 0.5, 0.1, 100) == (0, "max_samples")
    # no candidate yet: double
    assert next_round(4, math.inf, 0.1, 100) == (4, None)
    # 1/sqrt(N): 1.1 * 100 * ((0.105 / 0.1)^2 - 1) = 11.3 -> 12 more
    assert next_round(100, 0.105, 0.1, 1000) == (12, None)
    # at most doubling, within the sample cap
    assert next_round(4, 0.2, 0.1, 100) == (4, None)
    assert next_round(100, 0.2, 0.1, 110) == (10, None)
    # time cap: measured 4 s per history, 10 s left -> 2 histories
    assert next_round(100, 0.2, 0.1, 1000, elapsed_s=50, max_time_s=60,
                      s_per_sample=4) == (2, None)
    assert next_round(100, 0.2, 0.1, 1000, elapsed_s=59, max_time_s=60,
                      s_per_sample=4) == (0, "max_time")
    assert next_round(100, 0.2, 0.1, 1000, elapsed_s=61, max_time_s=60) == (0, "max_time")


def test_mc_error_hand_computed():
    # one track, 4 histories with raw posterior weights 1, 1, 2, 0 (pi = .25,
    # .25, .5, 0); history 0 has candidates 0.2 + 0.3, history 2 one of 1.0.
    # Y = 1.5; Var = (0.5 - .375)^2 + (0 - .375)^2 + (1 - .75)^2 + 0 = 0.21875
    c = pd.DataFrame({"track_index": [7, 7, 7], "sample_index": [0, 0, 2],
                      "weight": [0.2, 0.3, 1.0], "history_raw": [1.0, 1.0, 2.0]})
    norm, norm2 = pd.Series({7: 4.0}), pd.Series({7: 6.0})
    assert mc_error(c, norm, norm2) == pytest.approx(np.sqrt(0.21875), rel=1e-12)
    # a second track adds its variance: one history of two, pi = 0.5, w = 1
    # -> Y = 1, Var = (1 - .5)^2 + (0 - .5)^2 = 0.5
    c2 = pd.concat([c, pd.DataFrame({"track_index": [9], "sample_index": [1],
                                     "weight": [1.0], "history_raw": [3.0]})])
    norm, norm2 = pd.Series({7: 4.0, 9: 6.0}), pd.Series({7: 6.0, 9: 18.0})
    assert mc_error(c2, norm, norm2) == pytest.approx(np.sqrt(0.71875), rel=1e-12)


def test_mc_error_includes_the_spread_of_a_historys_forced_interactions():
    # one track whose posterior sits on one history (pi = 1): the delta
    # method gives 0. With K = 4 forced interactions of which one made a
    # candidate of weight 1 (c = 1, 0, 0, 0): Var = K s^2 = 4 * 1/4 = 1.
    c = pd.DataFrame({"track_index": [7], "sample_index": [0], "interaction": [11],
                      "weight": [1.0], "history_raw": [1.0]})
    norm, norm2 = pd.Series({7: 1.0}), pd.Series({7: 1.0})
    assert mc_error(c, norm, norm2) == 0.0
    assert mc_error(c, norm, norm2, interactions_per_history=4) == pytest.approx(1.0)
    # two interactions of 0.5 each among 4: s^2 = (2 * 0.25 - 1/4) / 3 -> Var = 1/3
    c2 = pd.DataFrame({"track_index": [7, 7], "sample_index": [0, 0],
                       "interaction": [11, 12], "weight": [0.5, 0.5],
                       "history_raw": [1.0, 1.0]})
    assert mc_error(c2, norm, norm2, interactions_per_history=4) == \
        pytest.approx(np.sqrt(1 / 3))


@pytest.fixture(scope="module")
def head40(tmp_path_factory):
    src = Path(__file__).resolve().parent.parent / "examples" / "sample.parquet"
    path = tmp_path_factory.mktemp("pipeline") / "head40.parquet"
    write_tracks(path, pd.read_parquet(src).head(40), pot=1e12 * 40 / 1419)
    return path


def _run(path, n, **kw):
    config = RunConfig(regions_file=LOOSE, samples_per_track=n,
                       interactions_per_history=16)
    return run_estimate(Tracks.open(path), config, systematics="none",
                        progress=False, **kw)


@pytest.fixture(scope="module")
def single4(head40):
    return _run(head40, 4)


def _values(doc):
    return {(r, c): (e["value"], e["stat"], e["n_mc"])
            for r, cats in doc["regions"].items() for c, e in cats.items()}


def test_rounds_equal_one_run_with_the_total_and_the_cap_stops(head40, single4):
    assert single4["candidates"] > 0, "the loose selection must give candidates"
    rounds = _run(head40, 2, target_rel_unc=1e-6, max_samples_per_track=4)
    mc = rounds["mc"]
    assert mc["stopped_by"] == "max_samples" and mc["samples_per_track"] == 4
    assert [r["samples_per_track"] for r in mc["rounds"]] == [2, 4]
    assert rounds["config"]["samples_per_track"] == 4
    a, b = _values(single4), _values(rounds)
    for key in a:
        assert b[key][0] == pytest.approx(a[key][0], rel=1e-12, abs=1e-300)
        assert b[key][1] == pytest.approx(a[key][1], rel=1e-12, abs=1e-300)
        assert b[key][2] == a[key][2]
    assert rounds["interactions"] == single4["interactions"]
    assert rounds["tracks"] == single4["tracks"]
    assert mc["rel_unc"] == pytest.approx(single4["mc"]["rel_unc"], rel=1e-9)


def test_target_reached_reports_what_it_achieved(head40, single4):
    # the rel. unc. of one run with 4 histories per track is reached at the
    # latest by the 4-history round (rounds equal that run): the target stops it
    target = single4["mc"]["rel_unc"] * (1 + 1e-9)
    doc = _run(head40, 2, target_rel_unc=target, max_samples_per_track=4)
    mc = doc["mc"]
    assert mc["stopped_by"] == "target"
    assert mc["rel_unc"] <= target and mc["target_rel_unc"] == target
    first = mc["rounds"][0]["rel_unc"]
    if first is None or first > target:
        assert len(mc["rounds"]) >= 2
    assert 0 < mc["total_prompt_mc"] and mc["total_prompt"] > 0


def test_time_cap_stops_after_the_first_round(head40):
    doc = _run(head40, 1, target_rel_unc=1e-6, max_time_s=1e-3)
    assert doc["mc"]["stopped_by"] == "max_time" and len(doc["mc"]["rounds"]) == 1


def test_empty_cells_get_limits_from_the_category_weight_per_entry(single4):
    per_entry = single4["upper_limit_weight_per_entry"]
    empty = [(r, c) for r, cats in single4["regions"].items()
             for c, e in cats.items() if e["n_mc"] == 0]
    assert empty, "expected at least one empty cell"
    for region, cat in empty:
        entry = single4["regions"][region][cat]
        assert entry["value"] == 0
        assert entry["upper_limit_90"] == pytest.approx(
            POISSON_ZERO_90 * per_entry[cat]["weight"], rel=1e-12)
    assert "two-track pairs in the STRAW acceptance before" in single4["upper_limit_method"]


@pytest.mark.parametrize("kw,message", [
    ({"systematics": "some"}, "systematics"),
    ({"target_rel_unc": 0.0}, "must be > 0"),
    ({"max_samples_per_track": 2000}, "1024"),
])
def test_bad_arguments(head40, kw, message):
    args = {"systematics": "none", "progress": False, **kw}
    with pytest.raises(ValueError, match=message):
        run_estimate(Tracks.open(head40), RunConfig(samples_per_track=4), **args)
