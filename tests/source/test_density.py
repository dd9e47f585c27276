"""Source density at the TAX exit: the Gaussian-mixture fit and its file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.source.density import SourceDensity, fit_density, fit_mixture


def _core_and_tail(rng, n):
    """A narrow core (70 %) and a broad tail (30 %) in 4-D, like the dump
    source: positions [m] and slopes [rad], correlated in the core."""
    cov_core = np.diag([1e-6, 1e-6, 4e-6, 4e-6])
    cov_core[0, 2] = cov_core[2, 0] = 0.9 * np.sqrt(1e-6 * 4e-6)
    cov_tail = np.diag([4e-4, 4e-4, 1e-4, 1e-4])
    core = rng.multivariate_normal([0, -0.02, 0, 0], cov_core, int(0.7 * n))
    tail = rng.multivariate_normal([0, -0.02, 0, 0], cov_tail, n - len(core))
    return np.vstack([core, tail]), (cov_core, cov_tail)


def _gauss(x, mean, cov):
    d = x - mean
    return np.exp(-0.5 * d @ np.linalg.solve(cov, d)) / np.sqrt(
        (2 * np.pi) ** 4 * np.linalg.det(cov))


def test_mixture_recovers_core_and_tail():
    rng = np.random.default_rng(3)
    data, (cov_core, cov_tail) = _core_and_tail(rng, 20000)
    frac, means, covs = fit_mixture(data, np.ones(len(data)), 2)
    core = int(np.argmin(np.linalg.det(covs)))
    assert frac[core] == pytest.approx(0.7, abs=0.02)
    assert np.sqrt(np.diag(covs[core])) == pytest.approx(np.sqrt(np.diag(cov_core)), rel=0.05)
    # the density at the centre: the mixture within 5 %, one Gaussian far below
    centre = np.array([0, -0.02, 0, 0])
    true = 0.7 * _gauss(centre, centre, cov_core) + 0.3 * _gauss(centre, centre, cov_tail)
    fitted = sum(f * _gauss(centre, m, c) for f, m, c in zip(frac, means, covs))
    single = _gauss(centre, data.mean(axis=0), np.cov(data.T))
    assert fitted == pytest.approx(true, rel=0.05)
    assert single < 0.05 * true


def test_fit_density_mixture_and_json_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    data, (cov_core, cov_tail) = _core_and_tail(rng, 4000)
    e = 10 ** rng.uniform(np.log10(10), np.log10(20), len(data))
    states = pd.DataFrame({"x_m": data[:, 0], "y_m": data[:, 1],
                           "ux": data[:, 2], "uy": data[:, 3],
                           "uz": np.ones(len(data)), "kinetic_energy_gev": e,
                           "charge": np.ones(len(data)),
                           "weight": np.full(len(data), 1e-6)})
    edges = np.log10([10.0, 20.0])
    mix = fit_density(states, 1, 26.32, log_e_edges=edges, components=3)
    one = fit_density(states, 1, 26.32, log_e_edges=edges, components=1)
    assert one.mix_fraction is None and mix.mix_fraction.shape == (2, 1, 3)
    centre = dict(x=[0.0], y=[-0.02], tx=[0.0], ty=[0.0], e_gev=[15.0], charge=[1.0])
    # yield 4000 × 1e-6 per POT over 10 GeV, times the shape at its centre
    zero = np.zeros(4)
    shape = 0.7 * _gauss(zero, zero, cov_core) + 0.3 * _gauss(zero, zero, cov_tail)
    assert mix(**centre)[0] == pytest.approx(0.4e-3 * shape, rel=0.15)
    assert one(**centre)[0] < 0.2 * mix(**centre)[0]
    back = SourceDensity.load(mix.save(tmp_path / "d.json"))
    assert back(**centre)[0] == mix(**centre)[0]
    assert mix(**{**centre, "charge": [-1.0]})[0] == 0.0  # no negative muons
