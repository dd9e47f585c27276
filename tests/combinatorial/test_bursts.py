"""Measured times: pairs within a burst from the tracks' times. The counted
pairs of synthetic bursts (flat and not) against the analytic expectation
Σ N(N−1)/2 · P₂ of the spill module; no pair across bursts; third tracks
against a brute-force count."""

import numpy as np
import pandas as pd
import pytest

from backtrace.combinatorial.bursts import (
    BurstError,
    blocks_by_pairs,
    burst_codes,
    expected_pairs,
    pairs_from_ends,
    read_burst_table,
    third_tracks,
    time_keys,
    window_ends,
)
from backtrace.combinatorial.spill import pairing_probability_flat


def sample_times(rng, n: int, edges_ns, intensity) -> np.ndarray:
    """n times from a piecewise-constant profile (bins ``edges_ns``)."""
    p = np.asarray(intensity, float) * np.diff(edges_ns)
    k = rng.choice(len(p), size=n, p=p / p.sum())
    return rng.uniform(np.asarray(edges_ns)[k], np.asarray(edges_ns)[k + 1])


def count_pairs(burst, t_ns, window_ns):
    """Pairs within the window, per burst (sorted by burst, time)."""
    code, _ = burst_codes(burst)
    order = np.lexsort((t_ns, code))
    c, t = code[order], np.asarray(t_ns)[order]
    a, b = pairs_from_ends(0, len(t), window_ends(c, t, window_ns))
    assert np.all(c[a] == c[b]) and np.all(t[b] - t[a] < window_ns)
    return np.bincount(c[a], minlength=c.max() + 1)


def _check(counts, expected):
    """The summed count within 4 of its standard deviations (the spread of
    the per-burst counts) of the expectation."""
    sigma = np.std(counts, ddof=1) * np.sqrt(len(counts))
    assert abs(counts.sum() - expected) < 4 * sigma
    assert sigma < 0.03 * expected                  # a test that can fail
    return (counts.sum() - expected) / sigma


T_NS, W_NS, N, BURSTS = 1e6, 50.0, 2000, 60


def test_flat_bursts_give_the_analytic_number_of_pairs():
    rng = np.random.default_rng(11)
    burst = np.repeat(np.arange(BURSTS), N)
    counts = count_pairs(burst, rng.uniform(0, T_NS, N * BURSTS), W_NS)
    # 2W/T − W²/T² per pair (the flat spill of spill.py), and the same from
    # the tabulated-profile integral (two equal bins)
    p2 = pairing_probability_flat(W_NS, T_NS)
    expected = BURSTS * N * (N - 1) / 2 * p2
    assert expected_pairs([N] * BURSTS, [0, T_NS * 0.5e-9], [1, 1], W_NS * 1e-9) == \
        pytest.approx(expected, rel=1e-9)
    _check(counts, expected)                     # 11 994 pairs expected


def test_non_flat_bursts_give_the_analytic_number_of_pairs():
    rng = np.random.default_rng(12)
    edges = np.linspace(0, T_NS, 6)
    intensity = [1.0, 4.0, 2.0, 0.5, 3.0]         # D = (Σf)²/(5Σf²) = 0.729
    n = rng.poisson(N, BURSTS)                    # bursts of different sizes
    burst = np.repeat(np.arange(BURSTS), n)
    counts = count_pairs(burst, sample_times(rng, n.sum(), edges, intensity), W_NS)
    expected = expected_pairs(n, edges[:-1] * 1e-9, intensity, W_NS * 1e-9)
    # ≈ N²/2 · 2W ∫f²: a non-flat burst has 1/D more pairs than a flat one
    f = np.asarray(intensity) / (np.sum(intensity) * (edges[1] - edges[0]))
    approx = np.sum(n * (n - 1) / 2) * 2 * W_NS * np.sum(f * f) * (edges[1] - edges[0])
    assert expected == pytest.approx(approx, rel=1e-3)
    flat = np.sum(n * (n - 1) / 2) * pairing_probability_flat(W_NS, T_NS)
    assert expected / flat == pytest.approx(151.25 / 110.25, rel=1e-3)
    _check(counts, expected)


def test_pairs_are_never_formed_across_bursts():
    # two bursts with identical times: only the pairs within each
    t = np.array([0.0, 1.0, 2.5, 10.0, 10.5])
    counts = count_pairs(np.array(["b", "b", "b", "b", "b", "a", "a", "a", "a", "a"]),
                         np.r_[t, t], 2.0)
    assert counts.tolist() == [3, 3]              # (0,1) (1,2.5) (10,10.5) in each


def test_blocks_cover_every_pair_once_whatever_the_budget():
    rng = np.random.default_rng(3)
    code = np.sort(rng.integers(0, 4, 300))
    t = np.concatenate([np.sort(rng.uniform(0, 100, k)) for k in np.bincount(code)])
    ends = window_ends(code, t, 3.0)
    a, b = pairs_from_ends(0, len(t), ends)
    for budget in (1, 7, 10**6):
        parts = [pairs_from_ends(i0, i1, ends) for i0, i1 in blocks_by_pairs(ends, budget)]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), a)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), b)


def test_third_tracks_match_a_brute_force_count():
    rng = np.random.default_rng(5)
    n = 400
    code = np.sort(rng.integers(0, 3, n))
    t = np.concatenate([np.sort(rng.uniform(0, 300, k).round(1)) for k in np.bincount(code)])
    track = rng.permutation(n)                     # track indices in any order
    a, b = pairs_from_ends(0, n, window_ends(code, t, 4.0))
    k, d3 = third_tracks(time_keys(code, t), track, code[a], t[a], t[b], track[a], track[b],
                         4.0)
    for i in range(len(a)):
        mid = (t[a[i]] + t[b[i]]) / 2
        others = np.abs(t[(code == code[a[i]]) & (track != track[a[i]])
                          & (track != track[b[i]])] - mid)
        assert k[i] == np.sum(others < 4.0)
        assert d3[i] == (others.min() if len(others) else np.inf)
    assert np.array_equal(k == 0, d3 >= 4.0) and k.sum() > 100


def test_burst_table_and_unknown_bursts(tmp_path):
    path = tmp_path / "bursts.csv"
    path.write_text("# counted bursts\nburst_id,pot\n7,1e12\n9,2e12\n")
    table = read_burst_table(path)
    assert table["pot"].sum() == 3e12
    codes, labels = burst_codes([9, 7, 9], known=table["burst_id"])
    assert codes.tolist() == [1, 0, 1] and len(labels) == 2
    with pytest.raises(BurstError, match="1 burst.*not in the burst table"):
        burst_codes([7, 8], known=table["burst_id"])
    pd.DataFrame({"burst_id": [1, 1], "pot": [1.0, 2.0]}).to_csv(tmp_path / "dup.csv")
    with pytest.raises(BurstError, match="unique"):
        read_burst_table(tmp_path / "dup.csv")
    (tmp_path / "neg.csv").write_text("burst_id,pot\n1,-5\n")
    with pytest.raises(BurstError, match="pot must hold"):
        read_burst_table(tmp_path / "neg.csv")


def test_third_track_mean_and_veto_follow_the_profile():
    # pairs sit where the profile is high: further tracks within W of a pair
    # number (N − 2) 2W ∫f³/∫f² on average, none with probability
    # E_pairs[exp(−(N − 2) 2W f(t))]
    rng = np.random.default_rng(8)
    n, bursts, t_ns, w_ns = 500, 200, 5000.0, 5.0
    intensity = np.array([1.0, 4.0, 2.0, 0.5, 3.0])
    edges = np.linspace(0, t_ns, 6)
    code = np.repeat(np.arange(bursts), n)
    t = sample_times(rng, n * bursts, edges, intensity)
    order = np.lexsort((t, code))
    code, t, idx = code[order], t[order], np.arange(n * bursts)
    a, b = pairs_from_ends(0, len(t), window_ends(code, t, w_ns))
    k, _ = third_tracks(time_keys(code, t), idx, code[a], t[a], t[b], idx[a], idx[b], w_ns)
    f = intensity / (intensity.sum() * (edges[1] - edges[0]))
    assert k.mean() == pytest.approx((n - 2) * 2 * w_ns * np.sum(f ** 3) / np.sum(f ** 2),
                                     rel=0.02)           # 1.57
    mu = (n - 2) * 2 * w_ns * f[np.searchsorted(edges, t[a], side="right") - 1]
    assert np.mean(k == 0) == pytest.approx(np.mean(np.exp(-mu)), rel=0.03)   # 0.23
