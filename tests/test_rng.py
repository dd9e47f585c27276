"""Counter-based random numbers and the key layout (backtrace.rng)."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace import rng as brng
from backtrace.rng import (
    MAX_INTERACTIONS_PER_HISTORY,
    MAX_PRODUCTS_PER_INTERACTION,
    MAX_SAMPLES_PER_TRACK,
    MAX_TRACKS,
    STREAMS,
    BudgetError,
    check_budget,
    interaction_sample,
    normals,
    product_key,
    uniforms,
)

N = 100_000


@pytest.fixture(scope="module")
def big():
    """10^5 × 3 uniforms of one key set (shared by the statistical checks)."""
    return uniforms(2024, np.arange(N, dtype=np.int64), 3, stream="source")


# ---------------------------------------------------------------- uniforms

def test_uniforms_shape_dtype_and_open_interval(big):
    assert big.shape == (N, 3) and big.dtype == np.float64
    assert np.all(big > 0.0) and np.all(big < 1.0)
    assert np.all(np.isfinite(np.log(big))) and np.all(np.isfinite(np.log1p(-big)))


def test_uniforms_reproducible_for_same_key():
    idx = np.array([0, 3, 17, 1 << 40, 12345678901], dtype=np.int64)
    a = uniforms(11, idx, 5, stream="interaction", sample=[0, 1, 2, 3, 4])
    b = uniforms(11, idx.copy(), 5, stream="interaction", sample=[0, 1, 2, 3, 4])
    assert np.array_equal(a, b)


def test_uniforms_row_depends_only_on_its_own_key():
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 1 << 42, 300, dtype=np.int64)
    samples = rng.integers(0, 1000, 300, dtype=np.int64)
    batch = uniforms(3, idx, 4, stream="smearing", sample=samples)
    # one row at a time
    for k in (0, 1, 57, 299):
        single = uniforms(3, idx[k:k + 1], 4, stream="smearing", sample=samples[k:k + 1])
        assert np.array_equal(single[0], batch[k])
    # any order and any split into batches gives the same rows
    perm = rng.permutation(300)
    shuffled = uniforms(3, idx[perm], 4, stream="smearing", sample=samples[perm])
    assert np.array_equal(shuffled, batch[perm])
    parts = [uniforms(3, idx[a:b], 4, stream="smearing", sample=samples[a:b])
             for a, b in ((0, 7), (7, 8), (8, 150), (150, 300))]
    assert np.array_equal(np.concatenate(parts), batch)


def test_uniforms_repeated_index_gives_identical_rows():
    u = uniforms(1, np.array([42, 42, 42], np.int64), 6, stream=3)
    assert np.array_equal(u[0], u[1]) and np.array_equal(u[1], u[2])
    assert len(np.unique(u[0])) == 6  # the columns of a row differ


def test_uniforms_default_sample_is_zero_and_named_stream_is_its_id():
    idx = np.arange(50, dtype=np.int64)
    assert np.array_equal(uniforms(9, idx, 2, stream="proposal"),
                          uniforms(9, idx, 2, stream="proposal", sample=np.zeros(50)))
    for name, sid in STREAMS.items():
        assert np.array_equal(uniforms(9, idx, 2, stream=name),
                              uniforms(9, idx, 2, stream=sid))


def _overlap(a, b) -> float:
    return float(np.mean(a == b))


def test_uniforms_differ_between_streams_seeds_samples_and_indices():
    idx = np.arange(1000, dtype=np.int64)
    base = uniforms(1, idx, 2, stream="source")
    variants = {
        "stream": uniforms(1, idx, 2, stream="source_decay"),
        "seed": uniforms(2, idx, 2, stream="source"),
        "sample": uniforms(1, idx, 2, stream="source", sample=np.ones(1000)),
        "index": uniforms(1, idx + 1000, 2, stream="source"),
    }
    for name, v in variants.items():
        assert _overlap(base, v) == 0.0, name
        # not merely shifted copies: uncorrelated with the base numbers
        r = np.corrcoef(base[:, 0], v[:, 0])[0, 1]
        assert abs(r) < 5 / np.sqrt(1000), name
    # the transport stream (0) and all named streams are pairwise distinct
    by_stream = [uniforms(1, idx[:100], 1, stream=s)[:, 0]
                 for s in sorted(STREAMS.values())]
    for i in range(len(by_stream)):
        for j in range(i + 1, len(by_stream)):
            assert _overlap(by_stream[i], by_stream[j]) == 0.0
    # index k+1 is row k+1 of the base call (a key, not a position in a sequence)
    assert np.array_equal(base[1:], uniforms(1, idx + 1, 2, stream="source")[:-1])


def test_uniforms_empty_inputs():
    assert uniforms(1, np.zeros(0, np.int64), 3, stream="source").shape == (0, 3)
    assert uniforms(1, np.arange(4), 0, stream="source").shape == (4, 0)


def test_uniforms_mean_variance(big):
    sigma_mean = np.sqrt(1 / 12 / N)
    sigma_var = np.sqrt(1 / 180 / N)  # Var of the sample variance of U(0,1)
    for col in big.T:
        assert abs(col.mean() - 0.5) < 5 * sigma_mean
        assert abs(col.var() - 1 / 12) < 5 * sigma_var


def test_uniforms_chi2_20_bins(big):
    # df = 19: P(chi2 > 50) ~ 1e-4; the numbers are fixed (seeded) anyway
    for col in big.T:
        counts, _ = np.histogram(col, bins=20, range=(0, 1))
        expected = N / 20
        chi2 = float(np.sum((counts - expected) ** 2 / expected))
        assert chi2 < 50.0


def test_uniforms_columns_and_neighbours_uncorrelated(big):
    tol = 5 / np.sqrt(N)
    c = np.corrcoef(big.T)
    assert np.all(np.abs(c[np.triu_indices(3, 1)]) < tol)
    lag1 = np.corrcoef(big[:-1, 0], big[1:, 0])[0, 1]
    assert abs(lag1) < tol
    # pairs (u0, u1) fill the unit square evenly: 5x5 cells
    counts, _, _ = np.histogram2d(big[:, 0], big[:, 1], bins=5, range=[[0, 1], [0, 1]])
    chi2 = float(np.sum((counts - N / 25) ** 2 / (N / 25)))
    assert chi2 < 60.0  # df = 24


# ---------------------------------------------------------------- normals

def test_normals_moments(big):
    z = normals(big[:, 0], big[:, 1])
    assert z.shape == (N,)
    assert abs(z.mean()) < 5 / np.sqrt(N)
    assert z.var() == pytest.approx(1.0, abs=5 * np.sqrt(2 / N))
    # symmetric, Gaussian tails: P(|z| > 2) = 0.0455
    assert np.mean(np.abs(z) > 2) == pytest.approx(0.0455, abs=5 * np.sqrt(0.0455 / N))
    assert np.mean(z ** 4) == pytest.approx(3.0, rel=0.05)


def test_normals_box_muller_values():
    u1 = np.array([np.exp(-0.5), np.exp(-2.0), np.exp(-0.5), 0.3])
    u2 = np.array([0.0, 0.5, 0.25, 0.1])
    expected = np.array([1.0, -2.0, 0.0,
                         np.sqrt(-2 * np.log(0.3)) * np.cos(0.2 * np.pi)])
    assert normals(u1, u2) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- key layout

def test_bit_budget_constants():
    assert (brng.PARTICLE_BITS, brng.REPEAT_BITS, brng.SAMPLE_BITS) == (3, 10, 14)
    assert MAX_PRODUCTS_PER_INTERACTION == 8
    assert MAX_INTERACTIONS_PER_HISTORY == 1024
    assert MAX_SAMPLES_PER_TRACK == 16384
    assert MAX_TRACKS == 1 << 36


def test_product_key_formula_random_values():
    rng = np.random.default_rng(17)
    n = 5000
    track = rng.integers(0, MAX_TRACKS, n, dtype=np.int64)
    sample = rng.integers(0, 16384, n)
    repeat = rng.integers(0, 1024, n)
    particle = rng.integers(0, 8, n)
    key = product_key(track, sample, repeat, particle)
    assert key.dtype == np.int64 and key.shape == (n,)
    expected = [int(t) * 2 ** 27 + int(s) * 2 ** 13 + int(r) * 8 + int(p)
                for t, s, r, p in zip(track, sample, repeat, particle)]
    assert [int(k) for k in key] == expected
    assert np.all(key >= 0)
    # the fields can be read back
    assert np.array_equal(key >> 27, track)
    assert np.array_equal((key >> 13) & 16383, sample)
    assert np.array_equal((key >> 3) & 1023, repeat)
    assert np.array_equal(key & 7, particle)


def test_product_key_scalars_and_extremes():
    assert int(product_key(0, 0, 0, 0)) == 0
    assert int(product_key(1, 2, 3, 4)) == 2 ** 27 + 2 * 2 ** 13 + 3 * 8 + 4
    top = product_key(MAX_TRACKS - 1, 16383, 1023, 7)
    assert int(top) == 2 ** 63 - 1  # the whole non-negative int64 range, no overflow
    # broadcasting: one track, several particles
    assert product_key(5, 1, 2, np.arange(8)).tolist() == \
        [5 * 2 ** 27 + 1 * 2 ** 13 + 2 * 8 + p for p in range(8)]


def test_product_key_is_a_bijection_on_the_low_fields():
    # (sample < 4, every repeat and rank) of tracks 0 and 1: the keys fill
    # the first 4 × 2^13 values of each track's block, no gap, no collision
    t, s, r, p = np.meshgrid(np.arange(2), np.arange(4), np.arange(1024), np.arange(8),
                             indexing="ij")
    key = product_key(t.ravel(), s.ravel(), r.ravel(), p.ravel())
    expected = np.r_[np.arange(4 * 2 ** 13), 2 ** 27 + np.arange(4 * 2 ** 13)]
    assert np.array_equal(np.sort(key), expected)


def test_product_key_distinct_tuples_distinct_keys():
    rng = np.random.default_rng(3)
    n = 20000
    cols = (rng.integers(0, 50, n), rng.integers(0, 16384, n), rng.integers(0, 1024, n),
            rng.integers(0, 8, n))
    tuples = np.unique(np.column_stack(cols), axis=0)
    keys = product_key(*tuples.T)
    assert len(np.unique(keys)) == len(tuples)


@pytest.mark.parametrize("args, name", [
    ((0, 16384, 0, 0), "sample"), ((0, 0, 1024, 0), "repeat"),
    ((0, 0, 0, 8), "particle rank"), ((MAX_TRACKS, 0, 0, 0), "track"),
    ((0, -1, 0, 0), "sample"), ((0, 0, -1, 0), "repeat"),
    ((0, 0, 0, -1), "particle rank"), ((-1, 0, 0, 0), "track"),
    (([0, 1], [0, 20000], [0, 0], [0, 0]), "sample"),
])
def test_product_key_out_of_range_raises(args, name):
    with pytest.raises(BudgetError, match=rf"{name} out of \[0, "):
        product_key(*args)


def test_budget_error_is_a_value_error():
    assert issubclass(BudgetError, ValueError)


def test_check_budget_limits():
    with pytest.raises(BudgetError, match="16385") as err:
        check_budget(samples_per_track=16385)
    assert "16384" in str(err.value)
    with pytest.raises(BudgetError, match="1025") as err:
        check_budget(interactions_per_history=1025)
    assert "1024" in str(err.value)
    with pytest.raises(BudgetError, match="16384"):
        check_budget(samples_per_track=0)
    with pytest.raises(BudgetError, match="1024"):
        check_budget(interactions_per_history=0)
    with pytest.raises(BudgetError, match=str(MAX_TRACKS)):
        check_budget(n_tracks=MAX_TRACKS + 1)
    # at the limits: fine
    assert check_budget(samples_per_track=16384, interactions_per_history=1024,
                        n_tracks=MAX_TRACKS) is None
    assert check_budget(samples_per_track=1, interactions_per_history=1) is None
    assert check_budget() is None


def test_interaction_sample():
    rng = np.random.default_rng(8)
    s = rng.integers(0, 16384, 1000)
    r = rng.integers(0, 1024, 1000)
    got = interaction_sample(s, r)
    assert got.dtype == np.int64
    assert got.tolist() == [int(a) * 1024 + int(b) for a, b in zip(s, r)]
    assert int(interaction_sample(3, 5)) == 3 * 1024 + 5
    # distinct (sample, repeat) pairs within the budget never collide
    ss, rr = np.meshgrid(np.arange(0, 16384, 7), np.arange(1024), indexing="ij")
    assert len(np.unique(interaction_sample(ss.ravel(), rr.ravel()))) == ss.size


def test_source_and_proposal_keys():
    assert brng.source_muon_key(np.array([0, 1, 10]), np.array([0, 3, 2])).tolist() == \
        [0, 7, 42]
    assert brng.proposal_key(np.array([0, 1, 10]), 3).tolist() == [3, 7, 43]
