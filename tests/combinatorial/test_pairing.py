"""Combinatorial background: the analytic number of accidental pairs of a toy
at constant rate, pair statistics, identity for any --jobs / batch size."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtrace.combinatorial import pairing as comb
from backtrace.combinatorial.pairing import (
    CombinatorialConfig,
    pair_blocks,
    pair_variance,
    run_combinatorial,
)
from backtrace.tracks import Tracks, write_tracks

DATA = Path(__file__).parents[1] / "data"
M, W_TRACK, POT_SAMPLE = 80, 2.0, 1e9          # toy: 80 tracks of weight 2 per 1e9 POT
POT_SPILL, SPILL_S, WINDOW_S, POT_TARGET = 1e12, 4.8, 5e-9, 1e15


def _spill_file(path: Path) -> Path:
    rows = {"pot_per_spill": POT_SPILL, "flat_top_s": SPILL_S, "duty_factor": 1.0,
            "window_ns": WINDOW_S * 1e9, "time_resolution_ns": 0.5}
    path.write_text("version = 1\nname = 'toy: constant rate, fixed spill'\n" + "".join(
        f"[{k}]\nvalue = {v}\nrange = [{v}, {v}]\nsource = 'toy'\n" for k, v in rows.items()))
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """M muons at STRAW1 (r 0.3-0.6 m, 50-150 GeV, alternating charges, each
    its own event), the accept-all selection and a flat-spill model."""
    d = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(1)
    r, phi = rng.uniform(0.3, 0.6, M), rng.uniform(0, 2 * np.pi, M)
    p = rng.uniform(50, 150, M)
    df = pd.DataFrame({"x_m": r * np.cos(phi), "y_m": r * np.sin(phi),
                       "z_m": np.full(M, 183.508), "px_gev": p * rng.normal(0, 2e-3, M),
                       "py_gev": p * rng.normal(0, 2e-3, M), "pz_gev": p,
                       "charge": np.where(np.arange(M) % 2, 1.0, -1.0),
                       "weight": np.full(M, W_TRACK)})
    write_tracks(d / "toy.parquet", df, pot=POT_SAMPLE)
    return Tracks.open(d / "toy.parquet"), _spill_file(d / "spill.toml")


def _run(tracks, spill, **kw):
    cfg = CombinatorialConfig(regions_file=str(DATA / kw.pop("regions",
                                                            "regions_accept_all.toml")),
                              spill_file=str(spill), pot_target=POT_TARGET,
                              max_pairs=kw.pop("max_pairs", 10**7))
    return run_combinatorial(tracks, cfg, progress=False, **kw)


def _total(doc, sign="all"):
    cells = doc["regions"][sign].values()
    return sum(c["value"] for c in cells), np.sqrt(sum(c["stat"] ** 2 for c in cells))


def test_toy_equals_the_analytic_number_of_accidental_pairs(toy):
    tracks, spill = toy
    res = _run(tracks, spill)
    doc = res.document
    assert doc["sampling"]["tracks_paired"] == M          # all cross the four chambers
    assert doc["sampling"]["pairs_evaluated"] == M * (M - 1) // 2
    # analytic: spills x n²/2 x (2W/T − W²/T²), n muons per spill at a constant rate
    n = M * W_TRACK * POT_SPILL / POT_SAMPLE
    spills = POT_TARGET / POT_SPILL
    analytic = spills * n * n / 2 * (2 * WINDOW_S / SPILL_S - (WINDOW_S / SPILL_S) ** 2)
    value, stat = _total(doc)
    assert abs(value - analytic) < 2 * stat                  # within its uncertainty
    # and exactly: the sample's Σ_{i<j} w_i w_j = (Σw)²/2 (1 − 1/M)
    assert value == pytest.approx(analytic * (1 - 1 / M), rel=1e-9)
    assert stat / value == pytest.approx(2 / np.sqrt(M), rel=0.05)
    # same-sign pairs beside the opposite-sign ones: 40 × 40 and 2 × C(40, 2)
    counts = res.pairs["sign"].value_counts()
    assert counts["opposite"] == 40 * 40 and counts["same"] == 2 * 40 * 39 // 2
    assert doc["normalisation"]["muons_per_spill"] == pytest.approx(n)
    assert doc["normalisation"]["muon_rate_mhz"] == pytest.approx(n / SPILL_S * 1e-6)


def test_unbiased_subsample_within_its_uncertainty(toy):
    tracks, spill = toy
    full, _ = _total(_run(tracks, spill).document)
    sub = _run(tracks, spill, max_pairs=800).document
    assert sub["sampling"]["fraction"] == pytest.approx(800 / (M * (M - 1) / 2))
    assert 0.5 * 800 < sub["sampling"]["pairs_evaluated"] < 1.5 * 800
    value, stat = _total(sub)
    assert abs(value - full) < 3 * stat and stat > 0


def test_third_track_in_the_window_vetoes_the_pair(toy, tmp_path):
    tracks, spill = toy
    regions = (DATA / "regions_accept_all.toml").read_text().replace(
        "exactly_two_tracks = false", "exactly_two_tracks = true")
    (tmp_path / "two.toml").write_text(regions)
    two = _run(tracks, spill, regions=str(tmp_path / "two.toml")).document
    any_, _ = _total(_run(tracks, spill).document)
    n = M * W_TRACK * POT_SPILL / POT_SAMPLE
    mu3 = n * two["spill_model"]["pairing_probability"]
    assert two["normalisation"]["third_track_mean"] == pytest.approx(mu3, rel=1e-12)
    assert _total(two)[0] == pytest.approx(any_ * np.exp(-mu3), rel=1e-12)


def test_pair_variance_is_unbiased_for_a_poisson_sample():
    # T = Σ_{i<j} x_i x_j of a Poisson(30) sample of x ~ U(0, 1): the mean of the
    # estimator Σ g_i² − Σ h² matches the spread of T over replicas
    rng = np.random.default_rng(7)
    totals, estimates = [], []
    for _ in range(1500):
        x = rng.uniform(0, 1, rng.poisson(30))
        a, b = np.triu_indices(len(x), k=1)
        h = x[a] * x[b]
        totals.append(h.sum())
        estimates.append(pair_variance(a, b, h))
    assert np.mean(estimates) == pytest.approx(np.var(totals), rel=0.1)


def test_blocks_cover_every_pair_once():
    seen = np.zeros((23, 23), int)
    for i0, i1, j0, j1 in pair_blocks(23, 5):
        a, b = comb._block_pairs(i0, i1, j0, j1)
        np.add.at(seen, (a, b), 1)
    assert np.array_equal(seen, np.triu(np.ones((23, 23), int), k=1))


def test_identical_for_any_jobs_and_batch_size(tmp_path, monkeypatch):
    src = Tracks.open(Path(__file__).parents[2] / "examples" / "sample.parquet")
    df = src.read().drop(columns="track_index").iloc[:240]
    write_tracks(tmp_path / "s.parquet", df, pot=src.pot)
    tracks = Tracks.open(tmp_path / "s.parquet")
    monkeypatch.setattr(comb, "PAIR_BLOCK", 50)          # several blocks
    cfg = CombinatorialConfig(max_pairs=5000)             # and a subsample
    runs = [run_combinatorial(tracks, cfg, jobs=j, batch_size=b, progress=False)
            for j, b in ((1, 37), (2, 500))]
    a, b = (r.document for r in runs)
    assert a["sampling"]["subsampled"] and a["sampling"]["pairs_evaluated"] > 0
    assert a["regions"] == b["regions"] and a["cutflow"] == b["cutflow"]
    pd.testing.assert_frame_equal(runs[0].pairs, runs[1].pairs)
