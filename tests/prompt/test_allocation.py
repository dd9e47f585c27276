"""Allocation of the forced interactions among histories and strata: parsing, the
outcome moments per stratum, the importance plan, histories among tracks."""

from __future__ import annotations

import pandas as pd
import pytest

from backtrace.prompt.allocation import (
    DEFENSIVE,
    PSEUDO_DRAWS,
    describe,
    expected_draws,
    importance_plan,
    parse_allocation,
    stratum_rms_outcome,
)
from backtrace.prompt.config import RunConfig

PROCESSES = ("photonuclear", "pair_production", "mumu_pair", "bremsstrahlung", "knock_on")


def test_parse_modes_and_shares():
    assert parse_allocation("auto", PROCESSES) == "auto"
    assert parse_allocation(" natural ", PROCESSES) == "natural"
    assert parse_allocation("mumu_pair=0.7, bremsstrahlung=0.3", PROCESSES) == \
        (("mumu_pair", 0.7), ("bremsstrahlung", 0.3))
    assert parse_allocation("mumu_pair@TRIM5@100+GeV=1", PROCESSES) == \
        (("mumu_pair@TRIM5@100+GeV", 1.0),)


@pytest.mark.parametrize("text, message", [
    ("sometimes", "expected STRATUM=SHARE"), ("muon=1", "expected STRATUM=SHARE"),
    ("muon@TRIM5@100+GeV=1", "expected STRATUM=SHARE"),
    ("mumu_pair=lots", "not a number"), ("mumu_pair=-1", ">= 0"),
    ("mumu_pair=0,knock_on=0", "sum to zero")])
def test_bad_allocations_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_allocation(text, PROCESSES)


def test_run_config_checks_and_resolves_the_allocation():
    assert RunConfig().forced_allocation() == "uniform"
    assert RunConfig().first_plan().mode == "track"
    assert RunConfig(allocation="uniform").first_plan().mode == "shares"
    assert RunConfig(allocation="natural").forced_allocation() is None
    assert RunConfig(allocation="natural").first_plan().mode == "natural"
    with pytest.raises(ValueError, match="shares of the forced processes"):
        RunConfig(processes=("mumu_pair",), allocation=(("knock_on", 1.0),))
    with pytest.raises(ValueError, match="expected one of"):
        RunConfig(allocation="often")
    assert RunConfig(allocation=(("mumu_pair", 1.0),)).to_dict()["allocation"] == \
        {"mumu_pair": 1.0}
    assert RunConfig(allocation=(("mumu_pair@TRIM5@100+GeV", 1.0),)).forced_allocation() == \
        {"mumu_pair@TRIM5@100+GeV": 1.0}


STRATA = ("mumu_pair@TRIM5@100+GeV", "mumu_pair@tank-end-cap@100+GeV",
          "knock_on@TRIM5@100+GeV", "knock_on@tank-end-cap@100+GeV")


def _cands(rows):
    """Candidates (stratum, outcome, draw id): one draw may give several."""
    return pd.DataFrame([{"stratum": s, "outcome": f, "track_index": 0, "sample_index": 0,
                          "interaction": i} for s, f, i in rows])


def test_stratum_moments_are_shrunk_towards_their_process():
    """r_s² = (Σ_draws f² + n₀ m_p) / (N_s + n₀), f summed per draw, m_p the
    process's mean f² per draw: hand-computed for four strata."""
    c = _cands([(STRATA[0], 0.5, 1), (STRATA[0], 0.5, 1),      # one draw, f = 1
                (STRATA[0], 2.0, 2), (STRATA[1], 1.0, 3)])
    drawn = pd.Series([100, 300, 50, 50], index=STRATA)
    r = stratum_rms_outcome(c, drawn, pseudo_draws=100.0)
    m_mu = (1.0 + 4.0 + 1.0) / 400.0
    assert r[STRATA[0]] == pytest.approx(((5.0 + 100 * m_mu) / 200.0) ** 0.5)
    assert r[STRATA[1]] == pytest.approx(((1.0 + 100 * m_mu) / 400.0) ** 0.5)
    assert STRATA[2] not in r and STRATA[3] not in r      # no entry in the process
    raw = stratum_rms_outcome(c, drawn, pseudo_draws=0.0)
    assert raw[STRATA[0]] == pytest.approx((5.0 / 100.0) ** 0.5)
    assert PSEUDO_DRAWS > 0 and stratum_rms_outcome(c.iloc[:0], drawn) == {}


def _g(rows):
    return pd.DataFrame(rows, columns=["track_index", "stratum", "g"])


def test_importance_plan_spends_the_budget_with_a_defensive_share_per_process():
    """Two tracks (weights 1 and 3, fraction 1 and 0.5): the expected draws
    Σ W G ρ equal the budget; (1 − d) of them go in proportion to W G r_s,
    d with equal totals per process; a stratum without a measured moment
    gets its process's defensive rate only."""
    g = _g([(0, STRATA[0], 2.0), (0, STRATA[2], 10.0), (1, STRATA[1], 1.0),
            (1, STRATA[2], 4.0), (1, STRATA[3], 6.0)])
    tw = pd.Series([1.0, 3.0], index=[0, 1])
    fraction = pd.Series([1.0, 0.5], index=[0, 1])
    r_s = {STRATA[0]: 0.2, STRATA[1]: 0.1}
    plan = importance_plan(r_s, g, tw, fraction, 1000.0, PROCESSES, 4.0)
    assert plan.mode == "global" and plan.per_history == 4.0
    total = expected_draws(plan, g, tw, fraction).sum()
    assert total == pytest.approx(1000.0)
    d = DEFENSIVE
    wg = {STRATA[0]: 2.0, STRATA[1]: 1.5, STRATA[2]: 10.0 + 6.0, STRATA[3]: 9.0}
    s_opt = wg[STRATA[0]] * 0.2 + wg[STRATA[1]] * 0.1
    rates, default = dict(plan.rates), dict(plan.process_rates)
    assert default["mumu_pair"] == pytest.approx(d * 1000 / (2 * 3.5))
    assert default["knock_on"] == pytest.approx(d * 1000 / (2 * 25.0))
    assert rates[STRATA[0]] == pytest.approx(default["mumu_pair"]
                                             + (1 - d) * 1000 * 0.2 / s_opt)
    assert STRATA[2] not in rates
    # the knock-on strata (no entry) get d/2 of the budget, the trident the rest
    per = {s: wg[s] * rates.get(s, default[s.partition("@")[0]]) for s in STRATA}
    assert per[STRATA[2]] + per[STRATA[3]] == pytest.approx(d / 2 * 1000)


def test_importance_plan_without_outcomes_falls_back_to_equal_processes():
    g = _g([(0, STRATA[0], 2.0), (0, STRATA[2], 10.0)])
    tw, one = pd.Series([1.0], index=[0]), pd.Series([1.0], index=[0])
    plan = importance_plan({}, g, tw, one, 100.0, PROCESSES, 4.0)
    assert plan.rates == () and dict(plan.process_rates) == pytest.approx(
        {"mumu_pair": 25.0, "knock_on": 5.0})
    assert importance_plan({}, g.iloc[:0], tw, one, 100.0, PROCESSES, 4.0).mode == "track"


def test_describe():
    assert describe("auto") == "auto"
    assert describe((("mumu_pair", 0.75), ("knock_on", 0.25))) == "mumu_pair 0.75, knock_on 0.25"
    assert describe({"mumu_pair": 0.5, "knock_on": 0.5}) == "equal shares over 2 processes"
    assert describe({"mode": "track", "per_history": 4.0}).startswith("pilot")
    assert describe({"mode": "global", "rates": dict(zip(STRATA[:2], (2.0, 1.0)))},
                    top=1) == f"importance over 2 strata, highest rates {STRATA[0]} 2"


def test_track_shares_mix_the_weights_with_an_even_part():
    from backtrace.prompt.allocation import TRACK_DEFENSIVE, track_shares

    s = track_shares(pd.Series([3.0, 1.0, 0.0, -2.0]))
    d = TRACK_DEFENSIVE
    assert list(s) == pytest.approx([(1 - d) * 0.75 + d / 4, (1 - d) * 0.25 + d / 4,
                                     d / 4, d / 4])
    assert list(track_shares(pd.Series([0.0, 0.0]))) == [0.5, 0.5]


def test_track_passes_double_the_tracks_furthest_below_their_share():
    """Weights 1000 : 10 : 1 : 0.1, 4 histories each: the heavy track
    doubles each round until its count matches its share; the others follow
    once the total has grown; a track that would pass the cap is left out."""
    from backtrace.prompt.allocation import track_passes, track_shares

    n = pd.Series(4, index=[10, 11, 12, 13])
    shares = track_shares(pd.Series([1000.0, 10.0, 1.0, 0.1], index=n.index))
    assert track_passes(n, shares, budget=16.0, max_samples=256) == [(4, 4, [10])]
    history = []
    for _ in range(6):
        for first, k, tracks in track_passes(n, shares, float(n.sum()), 256):
            assert first == 4 or first == n[tracks[0]]
            n[tracks] += k
        history.append(n.tolist())
    assert history[3] == [64, 4, 4, 4] and history[5][0] == 256 and history[5][1] > 4
    assert track_passes(pd.Series(256, index=[1]), track_shares(pd.Series([1.0], index=[1])),
                        256.0, 256) == []
    # a cap that is not a power of two: the last step fills up to it
    assert track_passes(pd.Series([2, 2], index=[0, 1]),
                        track_shares(pd.Series([10.0, 1.0], index=[0, 1])), 4.0, 3) == \
        [(2, 1, [0])]
