"""Direct muon-pair production (trident), μ A → μ μ⁺ μ⁻ A.

Cross section: the total σ_μμ(E) in iron computed in PHYSICS_REFERENCES §6
from the Kelner–Kokoulin–Petrukhin formula (S. R. Kelner, R. P. Kokoulin,
A. A. Petrukhin, Phys. At. Nucl. 63 (2000) 1603, as implemented in
PROPOSAL's MupairProduction): 1.0e-9, 7.0e-9, 1.3e-8, 3.3e-8 cm²/g at 10,
50, 100, 400 GeV [COMPUTED there; not re-derived here], interpolated
log–log and scaled to other materials by Z(Z+1)/A (nuclear + atomic
electrons) relative to iron. **Approximation**: this module does not
evaluate the KKP double-differential formula; the pair energy is sampled
log-uniformly between max(q_min, 2 m_μ) and K/2 (the 1/v behaviour of the
spectrum) and shared with the asymmetry ρ uniform. A faithful KKP
implementation is open work (see the closing notes). Category 'mu-mu'.
"""

from __future__ import annotations

import numpy as np

from ..constants import MUON_MASS_GEV
from ._common import (ENERGY_GRID_GEV, FinalState, ProcessTable, interp_loglog,
                      lepton_pair_state)

NAME = "mumu_pair"
CATEGORY = "mu-mu"
SECONDARIES = ("mu+", "mu-")
N_UNIFORMS = 4
_E_GEV = np.array([10.0, 50.0, 100.0, 400.0])
_SIGMA_FE_CM2_G = np.array([1.0e-9, 7.0e-9, 1.3e-8, 3.3e-8])
_FE_ZZA = 26 * 27 / 55.845


def table(physics, material: str, q_min_gev: float) -> ProcessTable:
    from ..pumas.dcs import composition

    zza = sum(w * z * (z + 1) / a for z, a, w in composition(physics, material))
    tab = ProcessTable(NAME, material, q_min_gev, ENERGY_GRID_GEV,
                       np.zeros(len(ENERGY_GRID_GEV)))
    tab.extra["scale"] = zza / _FE_ZZA
    tab.sigma = cross_section(tab, ENERGY_GRID_GEV)
    return tab


def cross_section(tab: ProcessTable, kinetic_gev) -> np.ndarray:
    """σ [m²/kg] (1 cm²/g = 0.1 m²/kg); the q_min cut is applied through
    the fraction of the log-uniform pair-energy range above it."""
    k = np.asarray(kinetic_gev, float)
    s = interp_loglog(np.clip(k, _E_GEV[0], None), _E_GEV, _SIGMA_FE_CM2_G)
    s = np.where(k < _E_GEV[0], s * (k / _E_GEV[0]) ** 2, s)  # below: fall off
    lo = 2 * MUON_MASS_GEV
    hi = np.maximum(k / 2, lo * 1.0001)
    cut = np.clip(np.log(hi / max(tab.q_min_gev, lo)) / np.log(hi / lo), 0, 1)
    return 0.1 * s * tab.extra["scale"] * np.where(hi > tab.q_min_gev, cut, 0.0)


def sample(tab: ProcessTable, kinetic_gev, direction, charge, u) -> FinalState:
    k = np.asarray(kinetic_gev, float)
    lo = max(tab.q_min_gev, 2 * MUON_MASS_GEV * 1.001)
    hi = np.maximum(k / 2, lo * 1.0001)
    q = lo * (hi / lo) ** u[:, 0]
    rho = 2 * u[:, 1] - 1
    e_plus = np.clip(0.5 * q * (1 + rho), MUON_MASS_GEV * 1.000001,
                     q - MUON_MASS_GEV * 1.000001)
    return lepton_pair_state(k, q, e_plus, MUON_MASS_GEV, direction, charge,
                             2 * np.pi * u[:, 2])
