"""NA62's factorised estimate next to the direct one: exact numbers on
hand-made candidates, the delta-method errors against brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.prompt.factorised import delta_method, factorised_estimate

REGIONS = ["SR", "CR", "outside"]


def _cands(rows):
    """(track, region, weight before the η vetoes, η survival)."""
    t, r, w0, s = map(list, zip(*rows))
    return pd.DataFrame({"track_index": t, "region": r, "eta_veto_survival": s,
                         "weight": np.asarray(w0) * np.asarray(s)})


def test_independent_vetoes_and_regions_factorise_exactly():
    """The same η survival (0.01) in every region: the factorised and the
    direct estimate agree, ratio 1; N(in FV, PID) = Σ w/S = 10."""
    c = _cands([(0, "SR", 1.0, 0.01), (1, "CR", 2.0, 0.01), (2, "outside", 7.0, 0.01)])
    f = factorised_estimate(c, REGIONS, ["LAV*"])
    assert f["available"]
    assert f["n_before_eta"]["value"] == pytest.approx(10.0)
    assert f["one_minus_eta_veto"]["value"] == pytest.approx(0.01)
    sr = f["regions"]["SR"]
    assert sr["one_minus_eta"]["value"] == pytest.approx(0.1)
    assert sr["factorised"]["value"] == pytest.approx(10.0 * 0.01 * 0.1)
    assert sr["direct"]["value"] == pytest.approx(0.01)
    assert sr["direct_over_factorised"]["value"] == pytest.approx(1.0)


def test_vetoes_correlated_with_the_region_break_the_factorisation():
    """Events in the SR are vetoed less (S = 0.1) than the others (S = 0.001):
    1 − η_veto = (0.1 + 0.009)/10, factorised N(SR) = 0.109 × 0.1 = 0.0109,
    direct 0.1: ratio 0.1/0.0109 = 9.17."""
    c = _cands([(0, "SR", 1.0, 0.1), (1, "outside", 9.0, 0.001)])
    sr = factorised_estimate(c, REGIONS, ["LAV*"])["regions"]["SR"]
    assert sr["factorised"]["value"] == pytest.approx(0.0109)
    assert sr["direct"]["value"] == pytest.approx(0.1)
    assert sr["direct_over_factorised"]["value"] == pytest.approx(0.1 / 0.0109)


def test_an_empty_region_gets_limits():
    """No candidate in the CR: 1 − η_CR < 2.303 w̄_before / A, factorised
    < B × 2.303 w̄_before / A, direct < 2.303 w̄_after; no ratio."""
    c = _cands([(0, "SR", 1.0, 0.5), (1, "outside", 3.0, 0.5)])
    cr = factorised_estimate(c, REGIONS, ["ANTI0"])["regions"]["CR"]
    assert cr["one_minus_eta"]["upper_limit_90"] == pytest.approx(2.303 * 2.0 / 4.0, rel=1e-3)
    assert cr["factorised"]["upper_limit_90"] == pytest.approx(2.0 * 2.303 * 2.0 / 4.0,
                                                               rel=1e-3)
    assert cr["direct"]["upper_limit_90"] == pytest.approx(2.303 * 1.0, rel=1e-3)
    assert cr["direct_over_factorised"] is None


def test_a_veto_of_inefficiency_zero_makes_it_unavailable():
    c = _cands([(0, "SR", 1.0, 0.0), (1, "outside", 3.0, 0.5)])
    f = factorised_estimate(c, REGIONS, ["LAV*"])
    assert not f["available"] and "inefficiency 0" in f["reason"]
    assert not factorised_estimate(c.iloc[:0], REGIONS, ["LAV*"])["available"]


def test_delta_method_errors_match_the_spread_over_resampled_tracks():
    """1 − η_veto = B/A over 400 tracks with several candidates each: the
    delta-method error is the standard deviation of B/A over bootstrap
    resamples of the tracks (to 10 %)."""
    rng = np.random.default_rng(5)
    n = 400
    rows = []
    for t in range(n):
        for _ in range(rng.integers(1, 4)):
            rows.append((t, rng.choice(REGIONS, p=[0.2, 0.3, 0.5]), rng.exponential(1.0),
                         rng.choice([1.0, 0.1, 0.01])))
    c = _cands(rows)
    f = factorised_estimate(c, REGIONS, ["LAV*"])
    per = pd.DataFrame({"t": c["track_index"], "A": c["weight"] / c["eta_veto_survival"],
                        "B": c["weight"]}).groupby("t").sum()
    boots = []
    for _ in range(2000):
        pick = per.iloc[rng.integers(0, n, n)].sum()
        boots.append(pick["B"] / pick["A"])
    assert f["one_minus_eta_veto"]["stat"] == pytest.approx(np.std(boots), rel=0.1)
    # and a plain sum's delta-method error is its per-track Σw² error
    assert delta_method(per, {"A": 1.0}) == pytest.approx(np.sqrt((per["A"] ** 2).sum()))
