"""Knock-on electrons (δ rays) from muons, spin ½.

Energy spectrum (PDG Review of Particle Physics, "Passage of particles
through matter", eq. 34.7 with the spin-½ factor):
d²N/dT dx = ½ K z² (Z/A) (1/β²) F(T)/T², F = 1 − β² T/T_max + T²/(2E²),
K = 4π N_A r_e² m_e c² = 0.307075 MeV mol⁻¹ cm², and
T_max = 2 m_e β²γ² / (1 + 2γ m_e/M + (m_e/M)²). The radiative correction
of PUMAS (Sokalski et al., PRD 64 (2001) 074015) is neglected (a few %).
Electron angle: cos θ = (T/p_e)(p_max/T_max) (PDG, same section), with
p_max the electron momentum at T_max. The muon keeps its direction.
Category 'other'.
"""

from __future__ import annotations

import numpy as np

from backtrace.constants import ELECTRON_MASS_GEV, MUON_MASS_GEV
from backtrace.interactions._common import (
    ENERGY_GRID_GEV,
    N_Q,
    FinalState,
    ProcessTable,
    four_vectors,
    muon_after,
    sample_transfer,
)
from backtrace.pumas.dcs import composition

NAME = "knock_on"
CATEGORY = "other"
SECONDARIES = ("e-",)
N_UNIFORMS = 4
#: K = 4π N_A r_e² m_e c² [GeV m² / mol · (1/kg... )]: 0.307075 MeV cm²/mol.
K_MEV_CM2_PER_MOL = 0.307075


def t_max_gev(kinetic_gev, mass_gev=MUON_MASS_GEV):
    e = np.asarray(kinetic_gev, float) + mass_gev
    gamma = e / mass_gev
    bg2 = gamma * gamma - 1
    r = ELECTRON_MASS_GEV / mass_gev
    return 2 * ELECTRON_MASS_GEV * bg2 / (1 + 2 * gamma * r + r * r)


def _z_over_a(physics, material):
    return sum(w * z / a for z, a, w in composition(physics, material))  # mol/g


def table(physics, material: str, q_min_gev: float) -> ProcessTable:
    """σ(K; T > q_min) [m²/kg] and the exact CDF of T on each table energy
    (the antiderivative of F(T)/T², :func:`_integral`), for sampling by
    inverse CDF (:func:`._common.sample_transfer`)."""
    energies = ENERGY_GRID_GEV
    tab = ProcessTable(NAME, material, q_min_gev, energies, np.zeros(len(energies)),
                       np.zeros((len(energies), N_Q)), np.zeros((len(energies), N_Q)))
    tab.extra["z_over_a"] = _z_over_a(physics, material)
    tab.sigma = cross_section(tab, energies)
    e = energies + MUON_MASS_GEV
    beta2 = 1 - (MUON_MASS_GEV / e) ** 2
    tmax = t_max_gev(energies)
    for i in range(len(energies)):
        if not tmax[i] > q_min_gev:
            tab.q_grid[i] = np.linspace(q_min_gev, q_min_gev * 1.0001, N_Q)
            tab.cdf[i] = np.linspace(0, 1, N_Q)
            continue
        t = np.geomspace(q_min_gev, tmax[i], N_Q)
        c = _integral(t, tmax[i], beta2[i], e[i]) - _integral(q_min_gev, tmax[i],
                                                                beta2[i], e[i])
        tab.q_grid[i] = t
        tab.cdf[i] = c / c[-1]
    return tab


def _integral(t, tmax, beta2, e):
    """∫ F(T)/T² dT (antiderivative)."""
    return -1 / t - beta2 / tmax * np.log(t) + t / (2 * e * e)


def cross_section(tab: ProcessTable, kinetic_gev) -> np.ndarray:
    """Number of δ rays with T > q_min per kg/m² → [m²/kg]."""
    k = np.asarray(kinetic_gev, float)
    e = k + MUON_MASS_GEV
    beta2 = 1 - (MUON_MASS_GEV / e) ** 2
    tmax = t_max_gev(k)
    t0 = tab.q_min_gev
    # ½ K (Z/A)/β² in GeV·m²/kg: K [MeV cm²/mol] × Z/A [mol/g] → MeV cm²/g
    pref = 0.5 * K_MEV_CM2_PER_MOL * tab.extra["z_over_a"] * 1e-3 * 0.1 / beta2
    val = pref * (_integral(tmax, tmax, beta2, e) - _integral(t0, tmax, beta2, e))
    return np.where(tmax > t0, val, 0.0)


def sample(tab: ProcessTable, kinetic_gev, direction, charge, u) -> FinalState:
    """Scattered muon and the δ electron; T by inverse CDF of F(T)/T²
    (``u[:, 0]``), its azimuth from ``u[:, 3]``."""
    k = np.asarray(kinetic_gev, float)
    tmax = t_max_gev(k)
    t = np.minimum(sample_transfer(tab, k, u[:, 0]), tmax)
    e_el = t + ELECTRON_MASS_GEV
    p_el = np.sqrt(t * (t + 2 * ELECTRON_MASS_GEV))
    p_max = np.sqrt(tmax * (tmax + 2 * ELECTRON_MASS_GEV))
    cos_t = np.clip(t / p_el * p_max / tmax, -1, 1)
    electron = four_vectors(e_el, ELECTRON_MASS_GEV, direction, np.arccos(cos_t),
                            2 * np.pi * u[:, 3])
    muon, mq = muon_after(k, t, direction, charge)
    n = len(k)
    # the atomic electron was at rest: its mass energy is not created; the
    # balance (−m_e, −charge) goes to the "remnant" (the ionised atom)
    remnant = np.column_stack([-np.full(n, ELECTRON_MASS_GEV),
                               np.sqrt(k * (k + 2 * MUON_MASS_GEV))[:, None] * direction
                               - muon[:, 1:] - electron[:, 1:]])
    return FinalState(muon, mq, [("e-", -np.ones(n), electron),
                                 ("remnant", np.ones(n), remnant)])
