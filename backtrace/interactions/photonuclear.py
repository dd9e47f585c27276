"""Muon photonuclear interaction, μ A → μ X, with a leading charged pion.

Energy transfer ν from PUMAS's photonuclear DCS (default "DRSS": Dutta,
Reno, Sarcevic & Seckel, PRD 63 (2001) 094020, arXiv:hep-ph/0012350;
alternatives "BBKS" (Bezrukov–Bugaev with Kokoulin's σ_γN and the hard part
of Bugaev–Shlepin) and "BM" (Butkevich–Mikheyev)).

Muon angle: from the virtuality t sampled log-uniformly between
t_min = m_μ² v²/(1 − v) and t_max = 2 M ν (M the nucleon mass), the 1/t
law of Geant4 ``G4MuonVDNuclearModel`` (D. H. Wright, 2011), with
θ² ≈ t / (E E′).

Hadronic final state — an engineering model, not a fit (documented in
PHYSICS_REFERENCES §5): the virtual photon interacts like a hadron of
energy ν; its leading charged hadron is a π± (charge ±1 with equal
probability) carrying a fraction z of ν with density ∝ (1 − z)² on
[0.02, 1] (a BMPT-like leading-particle spectrum), and a transverse
momentum with an exponential distribution of mean 0.35 GeV about the
photon direction (≈ the muon direction). The rest of ν and the compensating
charge go to a "hadronic remnant" pseudo-particle, so that energy and
charge balance exactly; it is not transported. Category 'mu-pi' (and
'mu-mu' when the pion decays, decided in forward transport).
"""

from __future__ import annotations

import numpy as np

from ..constants import MUON_MASS_GEV, PION_MASS_GEV
from ._common import (FinalState, ProcessTable, four_vectors, interp_loglog,
                      muon_after, radiative_table, sample_transfer)

NAME = "photonuclear"
CATEGORY = "mu-pi"
SECONDARIES = ("pi+", "pi-")
N_UNIFORMS = 8
NUCLEON_MASS_GEV = 0.938272
Z_MIN = 0.02
MEAN_PT_GEV = 0.35


def table(physics, material: str, q_min_gev: float) -> ProcessTable:
    return radiative_table(physics, material, "photonuclear", q_min_gev)


def cross_section(tab: ProcessTable, kinetic_gev) -> np.ndarray:
    return interp_loglog(kinetic_gev, tab.energies, tab.sigma)


def _leading_fraction(u):
    """z ∈ [Z_MIN, 1] with density ∝ (1 − z)² (inverse CDF)."""
    top = (1 - Z_MIN) ** 3
    return 1 - (top * (1 - u)) ** (1 / 3)


def sample(tab: ProcessTable, kinetic_gev, direction, charge, u) -> FinalState:
    k = np.asarray(kinetic_gev, float)
    nu = sample_transfer(tab, k, u[:, 0])
    e = k + MUON_MASS_GEV
    v = nu / e
    t_min = MUON_MASS_GEV ** 2 * v * v / (1 - v)
    t_max = 2 * NUCLEON_MASS_GEV * nu
    t = t_min * (t_max / t_min) ** u[:, 1]
    e_out = e - nu
    theta_mu = np.sqrt(np.clip(t / (e * e_out), 0, 1e-2))
    phi = 2 * np.pi * u[:, 2]
    muon, mq = muon_after(k, nu, direction, charge, theta_mu, phi)
    # photon direction: momentum balance, p_γ = p_μ − p_μ′
    p_in = np.sqrt(k * (k + 2 * MUON_MASS_GEV))[:, None] * direction
    gamma_dir = p_in - muon[:, 1:]
    gamma_dir /= np.linalg.norm(gamma_dir, axis=1)[:, None]
    z = _leading_fraction(u[:, 3])
    e_pi = np.maximum(z * nu, PION_MASS_GEV * 1.01)
    p_pi = np.sqrt(e_pi ** 2 - PION_MASS_GEV ** 2)
    pt = np.minimum(-MEAN_PT_GEV * np.log(u[:, 4]), 0.9 * p_pi)
    theta_pi = np.arcsin(pt / p_pi)
    pion = four_vectors(e_pi, PION_MASS_GEV, gamma_dir, theta_pi, 2 * np.pi * u[:, 5])
    pi_charge = np.where(u[:, 6] < 0.5, 1.0, -1.0)
    # hadronic remnant: energy ν − E_π and momentum balance of the photon
    remnant = np.column_stack([nu - pion[:, 0],
                               p_in - muon[:, 1:] - pion[:, 1:]])
    return FinalState(muon, mq, [("pi", pi_charge, pion),
                                 ("remnant", -pi_charge, remnant)])
