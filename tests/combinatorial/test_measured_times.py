"""The combinatorial estimate from measured times (bursts and track times)
against the analytic number of accidental pairs and against the spill-model
estimate of the same synthetic, data-like sample; pairs never across
bursts; normalisation by a burst table; identity for any --jobs and block
size."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtrace.combinatorial import bursts as bursts_module
from backtrace.combinatorial.bursts import expected_pairs
from backtrace.combinatorial.pairing import (
    CombinatorialConfig,
    SingleTracks,
    run_combinatorial,
)
from backtrace.tracks import Tracks, write_tracks

from .test_bursts import sample_times

DATA = Path(__file__).parents[1] / "data"
#: the toy: M muons in B bursts of T ns (POT_BURST each), window W
M, B, T_NS, W_NS, POT_BURST, POT_TARGET = 1200, 4, 2500.0, 5.0, 1e10, 1e15
PROFILES = {"flat": [1.0, 1.0], "non-flat": [1.0, 4.0, 2.0, 0.5, 3.0]}


def _toy_tracks(rng, intensity) -> pd.DataFrame:
    """M muons at STRAW1 (r 0.3-0.5 m, 50-150 GeV, alternating charges) that
    cross the four chambers, M/B per burst (bursts 100…), times from the
    profile."""
    n = M + M // 20
    r, phi = rng.uniform(0.3, 0.5, n), rng.uniform(0, 2 * np.pi, n)
    p = rng.uniform(50, 150, n)
    df = pd.DataFrame({"track_index": np.arange(n), "x_m": r * np.cos(phi),
                       "y_m": r * np.sin(phi), "z_m": np.full(n, 183.508),
                       "px_gev": p * rng.normal(0, 2e-3, n),
                       "py_gev": p * rng.normal(0, 2e-3, n), "pz_gev": p,
                       "charge": np.where(np.arange(n) % 2, 1.0, -1.0)})
    single = SingleTracks(CombinatorialConfig(
        regions_file=str(DATA / "regions_accept_all.toml"))).process(df)
    df = df[(single["n_chambers"] == 4).to_numpy()].head(M).drop(columns="track_index")
    t = sample_times(rng, M, np.linspace(0, T_NS, len(intensity) + 1), intensity)
    return df.assign(burst_id=np.repeat(np.arange(B), M // B) + 100,
                     t_ns=t).reset_index(drop=True)


def _spill_file(path: Path, intensity) -> Path:
    """The spill model the toy was generated with (its profile as a
    time-structure file)."""
    edges = np.linspace(0, T_NS * 1e-9, len(intensity) + 1)
    pd.DataFrame({"t_s": edges[:-1], "intensity": intensity}).to_csv(
        path.with_suffix(".csv"), index=False)
    rows = {"pot_per_spill": POT_BURST, "flat_top_s": T_NS * 1e-9, "duty_factor": 1.0,
            "window_ns": W_NS, "time_resolution_ns": 0.01}
    path.write_text(f"version = 1\nname = 'toy'\ntime_structure_file = "
                    f"'{path.with_suffix('.csv').name}'\n" + "".join(
                        f"[{k}]\nvalue = {v}\nrange = [{v}, {v}]\nsource = 'toy'\n"
                        for k, v in rows.items()))
    return path


@pytest.fixture(scope="module", params=list(PROFILES))
def toy(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("measured")
    intensity = PROFILES[request.param]
    df = _toy_tracks(np.random.default_rng(21), intensity)
    write_tracks(d / "toy.parquet", df, pot=B * POT_BURST)
    return Tracks.open(d / "toy.parquet"), _spill_file(d / "spill.toml", intensity), df, \
        intensity


def _run(tracks, spill, mode="auto", regions="regions_accept_all.toml", **kw):
    cfg = CombinatorialConfig(regions_file=str(DATA / regions) if "/" not in regions
                              else regions, spill_file=str(spill), pot_target=POT_TARGET,
                              pairing_mode=mode, bursts_file=kw.pop("bursts_file", None))
    return run_combinatorial(tracks, cfg, progress=False, **kw)


def _total(doc, sign="all"):
    cells = doc["regions"][sign].values()
    return sum(c["value"] for c in cells), np.sqrt(sum(c["stat"] ** 2 for c in cells))


def _brute_force_pairs(df, window_ns):
    """(a, b) of every pair of one burst with |Δt| < W (all N² pairs)."""
    a, b = np.triu_indices(len(df), k=1)
    burst, t = df["burst_id"].to_numpy(), df["t_ns"].to_numpy()
    keep = (burst[a] == burst[b]) & (np.abs(t[a] - t[b]) < window_ns)
    return a[keep], b[keep]


def test_measured_times_give_the_analytic_number_of_pairs(toy):
    tracks, spill, df, intensity = toy
    res = _run(tracks, spill)
    doc = res.document
    assert doc["pairing_mode"] == "bursts"
    # exactly the pairs in time, one event each, × N_POT / POT of the bursts
    a, _ = _brute_force_pairs(df, W_NS)
    scale = POT_TARGET / (B * POT_BURST)
    value, stat = _total(doc)
    assert doc["sampling"]["pairs_in_window"] == len(a) > 500
    assert value == pytest.approx(scale * len(a), rel=1e-12)
    # and the analytic expectation of the profile within the uncertainty
    analytic = scale * expected_pairs([M // B] * B, np.linspace(0, T_NS * 1e-9,
                                                                len(intensity) + 1)[:-1],
                                      intensity, W_NS * 1e-9)
    assert abs(value - analytic) < 3 * stat and stat < 0.1 * value
    p2 = analytic / scale / (B * (M // B) * (M // B - 1) / 2)
    assert doc["normalisation"]["pairing_probability"] == pytest.approx(p2, rel=0.15)


def test_the_two_modes_agree_on_the_same_sample(toy):
    tracks, spill, _, _ = toy
    measured, stat = _total(_run(tracks, spill, "bursts").document)
    model = _run(tracks, spill, "spill-model").document
    assert model["pairing_mode"] == "spill_model"
    predicted, _ = _total(model)
    assert abs(measured - predicted) < 3 * stat


def test_measured_third_tracks(toy, tmp_path):
    tracks, spill, _, intensity = toy
    two = tmp_path / "two.toml"
    two.write_text((DATA / "regions_accept_all.toml").read_text().replace(
        "exactly_two_tracks = false", "exactly_two_tracks = true"))
    m2 = _run(tracks, spill, "bursts", regions=str(two)).document
    without, _ = _total(_run(tracks, spill, "bursts").document)
    value, stat = _total(m2)
    assert 0.15 < value / without < 0.5 and m2["sampling"]["pairs_third_track_excluded"] > 0
    # μ₃ measured: (N − 2) 2W ∫f³/∫f² further tracks within W of a pair
    # (pairs sit where f is high): 1.19 flat, 1.88 for the non-flat profile;
    # four bursts measure it to ±10 % (clustered pairs; test_bursts.py checks
    # it to 2 % on 200 bursts)
    f = np.asarray(intensity) / (np.sum(intensity) * T_NS / len(intensity))
    mu3 = (M // B - 2) * 2 * W_NS * np.sum(f ** 3) / np.sum(f ** 2)
    assert m2["normalisation"]["third_track_mean"] == pytest.approx(mu3, rel=0.3)
    if len(intensity) == 2:
        # flat: the spill model's exp(−n_reco P₂) is the same rule
        s2 = _run(tracks, spill, "spill-model", regions=str(two)).document
        assert abs(value - _total(s2)[0]) < 3 * stat


def test_pairs_are_never_formed_across_bursts(toy, tmp_path):
    _, spill, df, _ = toy
    # bursts 100 and 101 with the same times: across bursts they would pair
    df = df.copy()
    df.loc[df["burst_id"] == 101, "t_ns"] = df.loc[df["burst_id"] == 100, "t_ns"].to_numpy()
    write_tracks(tmp_path / "twins.parquet", df, pot=B * POT_BURST)
    pairs = _run(Tracks.open(tmp_path / "twins.parquet"), spill).pairs
    burst = df["burst_id"].to_numpy()
    assert len(pairs) and np.all(burst[pairs["track_a"]] == burst[pairs["track_b"]])
    assert np.sum(burst[pairs["track_a"]] == 101) == np.sum(burst[pairs["track_a"]] == 100)
    assert len(pairs) == len(_brute_force_pairs(df, W_NS)[0])


def test_a_burst_table_sets_the_counted_pot(toy, tmp_path):
    tracks, spill, _, _ = toy
    table = tmp_path / "bursts.csv"
    # a fifth burst without tracks still counts
    table.write_text("burst_id,pot\n" + "".join(f"{100 + i},{POT_BURST}\n" for i in range(5)))
    with_table = _run(tracks, spill, bursts_file=str(table)).document
    plain = _run(tracks, spill).document
    assert with_table["normalisation"]["bursts"] == 5
    assert with_table["normalisation"]["pot_sample"] == 5 * POT_BURST
    assert _total(with_table)[0] == pytest.approx(_total(plain)[0] * 4 / 5, rel=1e-12)
    table.write_text("burst_id,pot\n100,1e10\n")
    with pytest.raises(ValueError, match="not in the burst table"):
        _run(tracks, spill, bursts_file=str(table))


def test_spill_model_mode_without_times_and_errors(toy, tmp_path):
    tracks, spill, df, _ = toy
    write_tracks(tmp_path / "no_times.parquet", df.drop(columns=["t_ns"]), pot=B * POT_BURST)
    no_times = Tracks.open(tmp_path / "no_times.parquet")
    with pytest.raises(ValueError, match="needs the column.*t_ns.*--columns"):
        _run(no_times, spill, "bursts")
    with pytest.raises(ValueError, match="burst table needs measured times"):
        _run(no_times, spill, bursts_file=str(tmp_path / "b.csv"))
    # mapped names: --columns t_ns=time burst_id=spill
    write_tracks(tmp_path / "named.parquet", df.rename(columns={"t_ns": "time",
                                                                "burst_id": "spill"}),
                 pot=B * POT_BURST)
    named = Tracks.open(tmp_path / "named.parquet", columns={"t_ns": "time",
                                                             "burst_id": "spill"})
    assert _total(_run(named, spill).document)[0] == _total(_run(tracks, spill).document)[0]


def test_identical_for_any_jobs_batch_and_block_size(toy, monkeypatch):
    tracks, spill, _, intensity = toy
    if len(intensity) != 2:
        pytest.skip("once is enough")
    monkeypatch.setattr(bursts_module, "BLOCK_PAIRS", 40)      # several blocks
    runs = [_run(tracks, spill, jobs=j, batch_size=b) for j, b in ((1, 37), (2, 500))]
    a, b = (r.document for r in runs)
    assert a["regions"] == b["regions"] and a["cutflow"] == b["cutflow"]
    assert a["sensitivity"] == b["sensitivity"]
    pd.testing.assert_frame_equal(runs[0].pairs, runs[1].pairs)
