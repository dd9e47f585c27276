"""e+e− pair production: the Kelner–Kokoulin–Petrukhin asymmetry ρ against
PUMAS's own integration of the same DCS, and the sampled ρ against the
density."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from backtrace.interactions import pair_production as pp
from backtrace.interactions._common import ProcessTable
from backtrace.pumas.dcs import dcs

M_MU = 0.1056583755
#: PUMAS's Hartree–Fock radiation logarithm of iron (its KKP model uses it
#: where the Geant4 formula has A* = 183).
PUMAS_RADIATION_LOG_FE = 175.8


@pytest.mark.parametrize("k_gev", [10.0, 100.0, 400.0])
def test_the_rho_integral_reproduces_pumas_kkp(k_gev):
    """∫ over |ρ| of our vectorised Φ_e + (m/μ)²Φ_μ equals PUMAS's KKP dσ/dq
    (C, 12-point Gauss quadrature in ln(1 − ρ)) to 0.2 % from q = 10 MeV to
    0.9 K in iron; the Geant4 radiation logarithm A* = 183 moves it by < 1 %."""
    q = np.array([0.01, 0.1, 1.0, 0.2 * k_gev, 0.5 * k_gev, 0.9 * k_gev])
    ref = dcs("pair_production", 26, 55.845, k_gev, q, mass_gev=M_MU, model="KKP")
    ours = pp.dcs(26, 55.845, k_gev, q, radiation_log=PUMAS_RADIATION_LOG_FE)
    np.testing.assert_allclose(ours, ref, rtol=2e-3)
    np.testing.assert_allclose(pp.dcs(26, 55.845, k_gev, q), ref, rtol=1e-2)


def test_the_density_is_even_bounded_and_peaked_at_asymmetric_pairs():
    """For ξ ≫ 1 the e-term goes as (3 − ρ²)/(1 − ρ²): the density rises
    towards |ρ| → 1 and vanishes beyond ρ_max (100 GeV μ, 20 GeV pair)."""
    e, q = 100.0 + M_MU, 20.0
    rho_max = 1 - pp.one_minus_rho_max(e, q)
    assert 0.9999 < rho_max < 1
    f = pp.phi(np.array([0.0, 0.5, 0.9, 0.99, -0.9, 1.0]), e, q / e, 26.0)
    assert f[0] < f[1] < f[2] < f[3] and f[4] == pytest.approx(f[2]) and f[5] == 0
    # the logarithm L_e falls a little towards the edge: within 20 % of the bare ratio
    assert f[2] / f[0] == pytest.approx((3 - 0.81) / (1 - 0.81) / 3, rel=0.2)


@pytest.fixture(scope="module")
def iron():
    tab = ProcessTable("pair_production", "iron", 1.0, np.array([1.0]), np.array([1.0]))
    tab.extra["composition"] = [(26.0, 55.845, 1.0)]
    return tab


@pytest.mark.parametrize("k_gev, q_gev", [(100.0, 20.0), (50.0, 45.0), (10.0, 1.0)])
def test_sampled_rho_follows_the_density(iron, k_gev, q_gev):
    """Mean |ρ|, P(|ρ| > 0.9) and the sign balance of 40000 samples against
    adaptive quadrature of the density (5 standard errors)."""
    rng = np.random.default_rng(2)
    n = 40000
    rho = pp.sample_rho(iron, np.full(n, k_gev), np.full(n, q_gev), rng.random(n),
                        rng.random(n))
    e = k_gev + M_MU
    rho_max = 1 - pp.one_minus_rho_max(e, q_gev)
    f = lambda x: pp.phi(x, e, q_gev / e, 26.0)      # noqa: E731
    norm = quad(f, 0, rho_max, limit=200)[0]
    mean = quad(lambda x: x * f(x), 0, rho_max, limit=200)[0] / norm
    tail = quad(f, 0.9, rho_max, limit=200)[0] / norm
    a = np.abs(rho)
    assert a.mean() == pytest.approx(mean, abs=5 * a.std() / np.sqrt(n))
    assert (a > 0.9).mean() == pytest.approx(tail, abs=5 * np.sqrt(tail * (1 - tail) / n))
    assert abs(rho.mean()) < 5 * rho.std() / np.sqrt(n)
    assert np.all(a <= rho_max)
