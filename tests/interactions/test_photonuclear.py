"""Photonuclear final state: leading pion from the BMPT parametrisation at
beam momentum ν, muon scattering angle from the 1/t law."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.interactions import build_tables
from backtrace.interactions import photonuclear as pn
from backtrace.source.hadroproduction import bmpt_invariant, x_radial

M_MU = 0.1056583755
M_PI = 0.13957039
A_FE = 55.845


def _density_grid(nu, a=A_FE):
    """Independent fine-grid evaluation of d²N/dx dp_T (x linear, p_T linear)."""
    x = np.linspace(pn.Z_MIN, 1.0, 3001)
    pt = np.linspace(0.0, pn.PT_MAX_GEV, 1201)
    return x, pt, pn.pion_density(nu, x[:, None], pt[None, :], a)


def test_density_is_bmpt_for_beryllium():
    """For A = Be the density is 2π p_T/E × ν × (π⁺ + π⁻ BMPT) / σ_inel(Be)."""
    nu, x, pt = 100.0, 0.3, 0.4
    p = np.hypot(x * nu, pt)
    x_r, _ = x_radial(p, pt, M_PI, p_beam=nu)
    inv = bmpt_invariant("pion", x_r, pt, +1) + bmpt_invariant("pion", x_r, pt, -1)
    sigma_be = 9.0122 / (6.02214076e23 * 77.8) * 1e27            # mb
    expected = 2 * np.pi * pt / np.hypot(p, M_PI) * nu * inv / sigma_be
    assert pn.pion_density(nu, x, pt, pn.BERYLLIUM["mass_number"]) == pytest.approx(expected, rel=1e-12)
    assert pn.inelastic_exponent() == pytest.approx(0.71, abs=0.01)
    assert pn.pion_density(nu, 1.0, 0.1, A_FE) == 0.0           # beyond x_R = 1


@pytest.mark.parametrize("nu", [10.0, 100.0])
def test_leading_pion_x_and_weight(nu):
    """w · P(x_lead > x₀) = 1 − exp(−N(> x₀)) with N from the parametrisation."""
    x, pt, f = _density_grid(nu)
    dndx = np.trapezoid(f, pt, axis=1)
    n_above = lambda x0: np.trapezoid(np.where(x >= x0, dndx, 0.0), x)  # noqa: E731
    n = 40000
    u = np.random.default_rng(11).random((n, 3))
    xs, pts, w = pn.sample_pion(np.full(n, nu), A_FE, u[:, 0], u[:, 1], u[:, 2])
    assert np.all(w == w[0])
    assert w[0] == pytest.approx(-np.expm1(-n_above(pn.Z_MIN)), rel=0.01)
    for x0 in (0.05, 0.1, 0.2, 0.4):
        expected = -np.expm1(-n_above(x0))
        got = w[0] * np.mean(xs > x0)
        sd = w[0] * np.sqrt(np.mean(xs > x0) / n) + 1e-4
        assert abs(got - expected) < 4 * sd + 0.01 * expected
    assert np.all((xs >= pn.Z_MIN) & (xs <= 1.0))
    assert np.all((pts >= 0) & (pts <= pn.PT_MAX_GEV))


def test_pion_pt_follows_parametrisation():
    nu, n = 100.0, 40000
    x, pt, f = _density_grid(nu)
    u = np.random.default_rng(12).random((n, 3))
    xs, pts, _ = pn.sample_pion(np.full(n, nu), A_FE, u[:, 0], u[:, 1], u[:, 2])
    for lo, hi in ((0.03, 0.08), (0.1, 0.2), (0.3, 0.6)):
        rows = (x >= lo) & (x < hi)
        g = np.trapezoid(f[rows], x[rows], axis=0)              # dN/dp_T in the slice
        mean_pt = np.trapezoid(g * pt, pt) / np.trapezoid(g, pt)
        sel = (xs >= lo) & (xs < hi)
        assert sel.sum() > 500
        assert pts[sel].mean() == pytest.approx(mean_pt, rel=0.03)
    # BMPT's p_T falls faster at small x_R: the slices must differ
    assert pts[(xs > 0.3)].mean() > 1.1 * pts[(xs < 0.08)].mean()


def test_muon_angle_within_virtuality_bounds(physics):
    tab = build_tables(physics, "iron", 1.0, ["photonuclear"])["photonuclear"]
    n = 20000
    rng = np.random.default_rng(13)
    k = np.full(n, 100.0)
    fs = pn.sample(tab, k, np.tile([0.0, 0.0, 1.0], (n, 1)), np.ones(n),
                   rng.random((n, pn.N_UNIFORMS)))
    e = k + M_MU
    e_out = fs.muon[:, 0]
    nu = e - e_out
    v = nu / e
    t_min = M_MU ** 2 * v ** 2 / (1 - v)
    t_max = 2 * pn.NUCLEON_MASS_GEV * nu
    theta = np.arctan2(np.hypot(fs.muon[:, 1], fs.muon[:, 2]), fs.muon[:, 3])
    t = t_min + e * e_out * theta ** 2
    assert np.all(t >= t_min * (1 - 1e-9)) and np.all(t <= t_max * (1 + 1e-6))
    # 1/t law: ln t uniform between the bounds
    s = np.log(t / t_min) / np.log(t_max / t_min)
    assert np.histogram(s, np.linspace(0, 1, 6))[0] / n == pytest.approx(0.2, abs=0.015)
    # the pion is emitted about the photon direction with the sampled weight
    assert fs.weight is not None and np.all((fs.weight > 0) & (fs.weight < 1))
    pion = fs.particles[0][2]
    assert np.all(pion[:, 0] <= nu * (1 + 1e-12))
