"""simulate-tracks --method backward: proposal densities, the estimator
against the source-density model it weights by, the forward method near the
TAX, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from backtrace.cli import main
from backtrace.source.backward import BackwardSimulator, ProposalConfig, _log_mixture
from backtrace.source.density import cached_source_density
from backtrace.source.forward import SimulationConfig, Simulator
from backtrace.source.simulate import simulate_tracks
from backtrace.tracks import kinetic_energy_gev

#: A plane 18 cm behind the TAX exit (air in between) and a disc around the
#: beam: there the backward histories barely scatter and the method is
#: efficient, so it can be checked to a few per cent.
NEAR_Z_M, NEAR_R_M = 26.5, (0.0, 0.05)


@pytest.fixture(scope="module")
def near():
    cfg = SimulationConfig(n_events=4000, seed=3, pot=1.0, plane_z_m=NEAR_Z_M,
                           acceptance_r_m=NEAR_R_M)
    density = cached_source_density(Simulator(cfg).beamline, cfg, 100_000)
    sim = BackwardSimulator(cfg, density, ProposalConfig(histories=2))
    df, counts = sim.run(np.arange(cfg.n_events, dtype=np.int64))
    return cfg, density, df, counts


def test_slope_mixture_is_normalised():
    mean = np.array([[1e-3, -2e-3]])
    cov = np.array([[[4e-6, 1e-6], [1e-6, 2e-6]]])
    g = np.linspace(-0.03, 0.03, 601)
    tx, ty = np.meshgrid(g + mean[0, 0], g + mean[0, 1])
    t = np.column_stack([tx.ravel(), ty.ravel()])
    n = len(t)
    dens = np.exp(_log_mixture(t, np.repeat(mean, n, 0), np.repeat(cov, n, 0),
                               np.full(n, 0.2)))
    assert dens.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, rel=1e-3)


def test_backward_reproduces_the_density_model_it_weights_by(near):
    """Σ weights per energy bin = ∫ φ_src over the disc, propagated 18 cm
    (computed here directly by sampling the Gaussian mixture)."""
    cfg, d, df, counts = near
    assert counts["reached_tax"] == counts["histories"]
    rng = np.random.default_rng(5)
    dz = NEAR_Z_M - d.plane_z_m
    e = np.hypot(np.hypot(df["px_gev"], df["py_gev"]), df["pz_gev"])
    edges = 10 ** d.log_e_edges
    got = np.histogram(e, edges, weights=df["weight"])[0]
    err = np.sqrt(np.histogram(e, edges, weights=df["weight"] ** 2)[0])
    checked, total_got, total_expected, total_var = 0, 0.0, 0.0, 0.0
    for k in range(len(edges) - 1):
        if edges[k] < 4.0 or edges[k + 1] > 150.0:
            continue  # below the 3 GeV proposal edge / few proposals
        expected = 0.0
        for c in (0, 1):
            if d.n_entries[c, k] < 20:
                continue
            for j, frac in enumerate(d.mix_fraction[c, k]):
                s = rng.multivariate_normal(d.mix_mean[c, k, j],
                                            np.linalg.inv(d.mix_cov_inv[c, k, j]), 100_000)
                r = np.hypot(s[:, 0] + dz * s[:, 2], s[:, 1] + dz * s[:, 3])
                expected += d.yield_per_pot[c, k] * frac * np.mean(r < NEAR_R_M[1])
        assert got[k] == pytest.approx(expected, abs=4 * err[k] + 0.02 * expected)
        checked += 1
        total_got += got[k]
        total_expected += expected
        total_var += err[k] ** 2
    assert checked >= 10
    assert abs(total_got - total_expected) < 3 * np.sqrt(total_var)  # ~3 %


def test_backward_against_forward_near_the_tax(near, tmp_path):
    """The forward method (true source) and the backward one (mixture
    density model) agree above the 3 GeV proposal edge to the model's
    accuracy (~5 %; a single Gaussian is ~20 % low: module docstring of
    backtrace.source.density)."""
    cfg, d, df, _ = near
    out = tmp_path / "forward.parquet"
    fwd = simulate_tracks(SimulationConfig(n_events=30000, seed=4, pot=1.0,
                                           plane_z_m=NEAR_Z_M,
                                           acceptance_r_m=NEAR_R_M),
                          out, progress=False)
    assert fwd["effective_sample_size"] > 1000
    f = pd.read_parquet(out)
    p = np.linalg.norm(f[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1)
    w_fwd = f["weight"].to_numpy()[kinetic_energy_gev(p) >= 3.0]
    w_bwd = df["weight"].to_numpy()
    ratio = w_bwd.sum() / w_fwd.sum()
    err = ratio * np.hypot(np.sqrt((w_bwd ** 2).sum()) / w_bwd.sum(),
                           np.sqrt((w_fwd ** 2).sum()) / w_fwd.sum())
    assert err < 0.07
    assert abs(ratio - 1) < 0.05 + 3 * err, (ratio, err)


def test_cli_backward_is_deterministic_and_records_method(tmp_path):
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"b{jobs}.parquet"
        r = CliRunner().invoke(main, [
            "simulate-tracks", "--method", "backward", "--events", "600",
            "--plane-z", str(NEAR_Z_M), "--acceptance-r", "0", "0.05",
            "--density-events", "5000", "--seed", "2", "--jobs", jobs,
            "--batch-size", "250", "-q", "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert "(backward)" in r.output and "effective sample size" in r.output
        outs.append(out)
    a, b = pd.read_parquet(outs[0]), pd.read_parquet(outs[1])
    pd.testing.assert_frame_equal(a, b)
    assert len(a) > 500 and (a["weight"] > 0).all()
    import pyarrow.parquet as pq

    meta = pq.read_schema(outs[0]).metadata
    assert meta[b"backtrace.method"] == b"backward"
    assert b"backtrace.proposal" in meta


def test_backward_refuses_a_plane_upstream_of_the_tax(tmp_path):
    r = CliRunner().invoke(main, ["simulate-tracks", "--method", "backward",
                                  "--plane-z", "20", "--out",
                                  str(tmp_path / "t.parquet")])
    assert r.exit_code == 1 and "downstream of the TAX exit" in r.output
