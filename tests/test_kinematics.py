"""Decay kinematics: conservation, limits, rest-frame isotropy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from backtrace.kinematics import (
    invariant_mass,
    lab_muon_energy_range,
    three_body_decay,
    two_body_decay,
    two_body_momentum,
)

M_PI, M_MU, M_K = 0.13957039, 0.1056583755, 0.493677


def _parents(rng, n, mass, p):
    u = rng.normal(size=(n, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    pv = p[:, None] * u
    return np.column_stack([np.sqrt(p ** 2 + mass ** 2), pv])


def test_pion_two_body_momentum():
    # two-body kinematics with PDG masses: p* = 29.79 MeV for π → μν, 235.53 MeV for K → μν
    assert two_body_momentum(M_PI, M_MU, 0.0) == pytest.approx(0.02979, abs=2e-5)
    assert two_body_momentum(M_K, M_MU, 0.0) == pytest.approx(0.23553, abs=2e-5)


def test_two_body_conservation_and_masses(rng):
    n = 5000
    parent = _parents(rng, n, M_PI, rng.uniform(1, 200, n))
    mu, nu = two_body_decay(parent, M_MU, 0.0, rng.random(n), rng.random(n))
    # energy and momentum conserved to 1e-9 relative
    assert np.allclose(mu + nu, parent, rtol=1e-9, atol=1e-9 * parent[:, :1])
    assert np.allclose(invariant_mass(mu), M_MU, rtol=1e-6)
    # m = sqrt(E² − p²) of a 50 GeV neutrino: round-off ~ E sqrt(eps)
    assert np.allclose(invariant_mass(nu), 0.0, atol=1e-5)


def test_pion_decay_muon_energy_flat_between_limits(rng):
    """E_μ is uniform in [γ(E*−βp*), γ(E*+βp*)] → [(m_μ/m_π)² E_π, E_π]."""
    n, e_pi = 200_000, 50.0
    p = np.sqrt(e_pi ** 2 - M_PI ** 2)
    parent = np.tile([e_pi, 0.0, 0.0, p], (n, 1))
    mu, _ = two_body_decay(parent, M_MU, 0.0, rng.random(n), rng.random(n))
    lo, hi = lab_muon_energy_range(e_pi, M_PI, M_MU)
    assert lo == pytest.approx((M_MU / M_PI) ** 2 * e_pi, rel=2e-3)
    assert hi == pytest.approx(e_pi, rel=1e-3)
    e = mu[:, 0]
    assert e.min() >= lo * (1 - 1e-9) and e.max() <= hi * (1 + 1e-9)
    # flat: Kolmogorov-Smirnov against the uniform distribution
    assert stats.kstest((e - lo) / (hi - lo), "uniform").pvalue > 0.01
    assert e.mean() == pytest.approx(0.5 * (lo + hi), rel=2e-3)


def test_three_body_conservation(rng):
    n = 4000
    parent = _parents(rng, n, 1.86484, rng.uniform(5, 100, n))
    d1, d2, d3, ok = three_body_decay(parent, M_MU, 0.0, M_K, rng.random((n, 34)))
    assert ok.mean() > 0.999
    total = d1 + d2 + d3
    assert np.allclose(total, parent, rtol=1e-9, atol=1e-9)
    assert np.allclose(invariant_mass(d1), M_MU, rtol=1e-5)
    assert np.allclose(invariant_mass(d3), M_K, rtol=1e-6)
    # the muon's rest-frame energy stays within its kinematic limit
    e_max = (1.86484 ** 2 + M_MU ** 2 - M_K ** 2) / (2 * 1.86484)
    assert invariant_mass(d1 + d2).max() <= 1.86484 - M_K + 1e-9
    assert e_max > M_MU
