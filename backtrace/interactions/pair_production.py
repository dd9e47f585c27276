"""Muon e⁺e⁻ pair production, μ A → μ e⁺ e⁻ A.

Energy transfer q (pair energy) from PUMAS's DCS (default model "SSR":
Sandrock, Soedingrekso & Rhode, ICRC 2019, arXiv:1910.07050; alternatives
"KKP": Kelner, Kokoulin & Petrukhin, Sov. J. Nucl. Phys. 7 (1968) 237),
integrated above ``q_min``. Energy split: the asymmetry ρ = (E₊ − E₋)/q is
sampled uniformly in [−1, 1] — a simplification of the KKP double
differential cross section, whose ρ distribution is broad and flat-topped
for q ≫ m_e (Geant4 Physics Reference Manual, muon pair production,
§ "Sampling of the energy transfer and of ρ"). Angles: θ± ≈ m_e/E± with a
random azimuth (the pair follows the muon). The muon keeps its direction.
Category 'other' (an e⁺e⁻ pair cannot fake a μμ or μπ vertex once
identified, but it can make an "other" two-track vertex).
"""

from __future__ import annotations

import numpy as np

from ..constants import ELECTRON_MASS_GEV
from ._common import (FinalState, ProcessTable, interp_loglog, lepton_pair_state,
                      radiative_table, sample_transfer)

NAME = "pair_production"
CATEGORY = "other"
SECONDARIES = ("e+", "e-")
N_UNIFORMS = 4


def table(physics, material: str, q_min_gev: float) -> ProcessTable:
    return radiative_table(physics, material, "pair_production", q_min_gev)


def cross_section(tab: ProcessTable, kinetic_gev) -> np.ndarray:
    return interp_loglog(kinetic_gev, tab.energies, tab.sigma)


def sample(tab: ProcessTable, kinetic_gev, direction, charge, u) -> FinalState:
    q = sample_transfer(tab, kinetic_gev, u[:, 0])
    rho = 2 * u[:, 1] - 1
    e_plus = 0.5 * q * (1 + rho)
    e_plus = np.clip(e_plus, ELECTRON_MASS_GEV, q - ELECTRON_MASS_GEV)
    return lepton_pair_state(kinetic_gev, q, e_plus, ELECTRON_MASS_GEV, direction,
                             charge, 2 * np.pi * u[:, 2], names=("e+", "e-"))
