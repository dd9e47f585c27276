"""Yields, per-track statistical errors, upper limits, quadrature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.estimate import (POISSON_ZERO_90, quadrature, upper_limit_90,
                                weight_per_entry, weighted_yield, yields_table)


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
