"""Allocation of the forced interactions among strata: parsing, Neyman shares."""

from __future__ import annotations

import pandas as pd
import pytest

from backtrace.allocation import DEFENSIVE, describe, neyman, parse_allocation
from backtrace.config import RunConfig

PROCESSES = ("photonuclear", "pair_production", "mumu_pair", "bremsstrahlung", "knock_on")


def test_parse_modes_and_shares():
    assert parse_allocation("auto", PROCESSES) == "auto"
    assert parse_allocation(" natural ", PROCESSES) == "natural"
    assert parse_allocation("mumu_pair=0.7, bremsstrahlung=0.3", PROCESSES) == \
        (("mumu_pair", 0.7), ("bremsstrahlung", 0.3))
    assert parse_allocation("mumu_pair@100-105=1", PROCESSES) == (("mumu_pair@100-105", 1.0),)


@pytest.mark.parametrize("text, message", [
    ("sometimes", "expected STRATUM=SHARE"), ("muon=1", "expected STRATUM=SHARE"),
    ("muon@100-105=1", "expected STRATUM=SHARE"),
    ("mumu_pair=lots", "not a number"), ("mumu_pair=-1", ">= 0"),
    ("mumu_pair=0,knock_on=0", "sum to zero")])
def test_bad_allocations_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_allocation(text, PROCESSES)


def test_run_config_checks_and_resolves_the_allocation():
    assert RunConfig().forced_allocation() == dict.fromkeys(PROCESSES, 0.2)
    assert RunConfig().forcing_slice_m == 5.0
    assert RunConfig(allocation="natural").forced_allocation() is None
    with pytest.raises(ValueError, match="shares of the forced processes"):
        RunConfig(processes=("mumu_pair",), allocation=(("knock_on", 1.0),))
    with pytest.raises(ValueError, match="expected one of"):
        RunConfig(allocation="often")
    assert RunConfig(allocation=(("mumu_pair", 1.0),)).to_dict()["allocation"] == \
        {"mumu_pair": 1.0}
    assert RunConfig(allocation=(("mumu_pair@100-105", 1.0),)).forced_allocation() == \
        {"mumu_pair@100-105": 1.0}


def _cands(rows):
    return pd.DataFrame(rows, columns=["stratum", "weight"])


STRATA = ("mumu_pair@100-105", "mumu_pair@105-110", "knock_on@100-105", "knock_on@105-110")


def _draws(counts):
    return pd.Series(counts, index=STRATA[:len(counts)])


def test_neyman_shares_follow_the_square_root_of_the_measured_second_moment():
    """Drawn evenly (q⁰ = 1/4 each): N A_s = q⁰ Σw² = 2/4 and 4/4 for the two
    strata with candidates, 0 for the others, so before the defensive mix
    q ∝ √2 : √4; the mix adds DEFENSIVE/4 to each."""
    c = _cands([("mumu_pair@100-105", 1.0), ("mumu_pair@100-105", 1.0),
                ("knock_on@105-110", 2.0)])
    q = dict(neyman([(c, _draws([10, 10, 10, 10]))], STRATA))
    ney = {"mumu_pair@100-105": 2 ** 0.5 / (2 ** 0.5 + 2), "knock_on@105-110": 2 / (2 ** 0.5 + 2)}
    for s in STRATA:
        assert q[s] == pytest.approx((1 - DEFENSIVE) * ney.get(s, 0.0) + DEFENSIVE / 4)
    assert sum(q.values()) == pytest.approx(1.0)
    assert min(q.values()) == pytest.approx(DEFENSIVE / 4)


def test_neyman_uses_the_draw_frequencies_and_pools_passes():
    """Pass 1 drew the trident stratum in 1/4 of its 40 draws and saw w = 3
    (N A = 0.25·9); pass 2 drew knock_on@100-105 in 5 % of its 200 draws and
    saw w = 30 (0.05·900 = 45): pooled q ∝ √2.25 : √45 before the mix. No
    candidate at all: None (the caller keeps its allocation)."""
    c1 = _cands([("mumu_pair@100-105", 3.0)])
    c2 = _cands([("knock_on@100-105", 30.0)])
    d2 = pd.Series({"mumu_pair@100-105": 180, "knock_on@100-105": 10, "knock_on@105-110": 10})
    q = dict(neyman([(c1, _draws([10, 10, 10, 10])), (c2, d2)], STRATA, defensive=0.0))
    assert q["mumu_pair@100-105"] / q["knock_on@100-105"] == pytest.approx(
        (2.25 / 45) ** 0.5, rel=1e-9)
    assert q["mumu_pair@105-110"] == 0.0
    assert neyman([(_cands([]), d2)], STRATA) is None


def test_describe():
    assert describe("auto") == "auto"
    assert describe((("mumu_pair", 0.75), ("knock_on", 0.25))) == "mumu_pair 0.75, knock_on 0.25"
    assert describe({"mumu_pair": 0.5, "knock_on": 0.5}) == "equal shares over 2 processes"
    assert describe(dict(zip(STRATA, (0.1, 0.2, 0.3, 0.4))), top=2) == \
        "knock_on@105-110 0.4, knock_on@100-105 0.3 (+2 strata)"


def test_track_shares_mix_the_weights_with_an_even_part():
    from backtrace.allocation import TRACK_DEFENSIVE, track_shares

    s = track_shares(pd.Series([3.0, 1.0, 0.0, -2.0]))
    d = TRACK_DEFENSIVE
    assert list(s) == pytest.approx([(1 - d) * 0.75 + d / 4, (1 - d) * 0.25 + d / 4,
                                     d / 4, d / 4])
    assert list(track_shares(pd.Series([0.0, 0.0]))) == [0.5, 0.5]


def test_track_passes_double_the_tracks_furthest_below_their_share():
    """Weights 1000 : 10 : 1 : 0.1, 4 histories each: the heavy track
    doubles each round until its count matches its share; the others follow
    once the total has grown; a track that would pass the cap is left out."""
    from backtrace.allocation import track_passes, track_shares

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
