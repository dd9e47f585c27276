"""Yields, per-track statistical errors, upper limits, quadrature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.prompt.estimate import (
    POISSON_ZERO_90,
    mc_error,
    quadrature,
    upper_limit_90,
    weight_per_entry,
    weighted_yield,
    yields_table,
)


def test_sum_w2_uses_per_track_sums():
    # track 1: histories 0.2 + 0.3; track 2: 0.5; track 3: 0.1 + 0.1 + 0.2
    w = [0.2, 0.3, 0.5, 0.1, 0.1, 0.2]
    t = [1, 1, 2, 3, 3, 3]
    y = weighted_yield(w, t)
    assert y.value == pytest.approx(1.4)
    # per-track sums 0.5, 0.5, 0.4: sqrt(0.25 + 0.25 + 0.16)
    assert y.stat == pytest.approx(np.sqrt(0.66))
    assert y.n_eff == pytest.approx(1.96 / 0.66)
    assert y.n_mc == 6 and y.upper_limit_90 is None


def test_empty_region_gives_upper_limit():
    y = weighted_yield([], [], weight_per_entry=0.004)
    assert y.value == 0 and y.stat == 0
    assert POISSON_ZERO_90 == pytest.approx(2.302585, rel=1e-6)
    assert y.upper_limit_90 == pytest.approx(2.302585 * 0.004, rel=1e-6)
    assert upper_limit_90(1.0) == pytest.approx(2.302585, rel=1e-6)


def test_quadrature():
    assert quadrature([0.3, -0.4]) == pytest.approx(0.5)


def test_yields_table_shape():
    c = pd.DataFrame({"region": ["SR", "CR", "outside", "outside"],
                      "category": ["mu-mu", "mu-pi", "mu-mu", "other"],
                      "weight": [0.1, 0.2, 0.3, 0.4], "track_index": [0, 1, 2, 2]})
    t = yields_table(c, ["SR", "CR", "outside"], ["mu-mu", "mu-pi", "other"], 0.05)
    assert t["SR"]["mu-mu"].value == pytest.approx(0.1)
    assert t["SR"]["other"].upper_limit_90 == pytest.approx(2.302585 * 0.05, rel=1e-6)
    assert t["outside"]["other"].value == pytest.approx(0.4)


def test_weight_per_entry_per_category_then_fallbacks():
    pairs = pd.DataFrame({"category": ["mu-mu", "mu-mu", "mu-pi"],
                          "weight": [1.0, 3.0, 8.0]})
    w = weight_per_entry(pairs, ["mu-mu", "mu-pi", "other"], 500.0, 10)
    assert w["mu-mu"]["weight"] == pytest.approx(2.0) and w["mu-mu"]["n"] == 2
    assert w["mu-pi"]["weight"] == pytest.approx(8.0)
    # no 'other' pair: the mean over all pairs
    assert w["other"]["weight"] == pytest.approx(4.0) and "no other pair" in w["other"]["basis"]
    # no pair at all: the mean forced-interaction weight
    none = weight_per_entry(pairs.iloc[:0], ["mu-mu"], 500.0, 10)
    assert none["mu-mu"]["weight"] == pytest.approx(50.0)
    assert "conservative" in none["mu-mu"]["basis"]
    # the limit of an empty cell of that category
    y = weighted_yield([], [], weight_per_entry=w["mu-pi"]["weight"])
    assert y.upper_limit_90 == pytest.approx(2.302585 * 8.0, rel=1e-6)


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
    # each history's own number of draws (``history_draws``) replaces K: with
    # 2 draws, s^2 = (0.5 - 1/2) / 1 = 0 for the two halves -> Var = 0; with
    # the single candidate of 1 among 10 draws: 10 * (1 - 1/10) / 9 = 1
    assert mc_error(c2.assign(history_draws=2), norm, norm2,
                    interactions_per_history=4) == pytest.approx(0.0, abs=1e-12)
    assert mc_error(c.assign(history_draws=10), norm, norm2) == pytest.approx(1.0)
    # one draw: nothing to estimate the spread from
    assert mc_error(c.assign(history_draws=1), norm, norm2) == 0.0
