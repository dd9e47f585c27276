"""Muon bremsstrahlung followed by the photon's conversion to e⁺e⁻.

The e⁺e⁻ counterpart of :mod:`.bremsstrahlung` (which forces γ → μ⁺μ⁻):
photon energy q from PUMAS's bremsstrahlung DCS (same table), emitted along
the muon, then forced to convert into e⁺e⁻ in the volume it was emitted in,
with weight the probability that it does before leaving it:

    P_ee = 1 − exp(−(7/9) X_left / X0),

(7/9)/X0 the photon's pair-production attenuation at high energy (PDG,
"Passage of particles through matter": mean free path (9/7) X0; above
1 GeV Compton scattering and photonuclear absorption add < 1 %, and the
μ⁺μ⁻ share, ~2e-5, is neglected), X_left the grammage from the emission
point to the volume's downstream exit along the muon. In hard muon
interactions the photon dominates: above 20 % of the muon's energy a
muon radiates ~20 times more photons than it makes e⁺e⁻ pairs in iron,
~100 times above 90 % (PUMAS default DCS; ``studies/na62_2021_ee.py``).

Energy sharing: x₊ = E₊/q with density ∝ 1 − (4/3) x₊(1 − x₊) on
[m/q, 1 − m/q] (complete-screening Bethe–Heitler, PDG, same section),
by accept–reject with two tries (the second kept). Angles θ± ≈ m/E±
about the photon (= muon) direction. The pair starts at the emission
point [est]: the photon converts on average (9/7) X0 later, so the
electrons cross up to that much matter they should not (their momenta
at STRAW1 are biased low; in 20 mm of iron the whole path is 1.1 X0). A
photon that leaves its volume unconverted is not followed (it may convert
later or fire a LAV). Category 'other' in the μ⁺μ⁻ channel, 'e-e' pairs
in the e⁺e⁻ one.
"""

from __future__ import annotations

import numpy as np

from backtrace.constants import ELECTRON_MASS_GEV
from backtrace.interactions import bremsstrahlung
from backtrace.interactions._common import (
    FinalState,
    ProcessTable,
    lepton_pair_state,
    sample_transfer,
)

NAME = "photon_conversion"
CATEGORY = "other"
SECONDARIES = ("e+", "e-")
N_UNIFORMS = 6
#: The forced sampler passes the grammage left in the volume to ``sample``.
USES_PATH_LEFT = True


def table(physics, material: str, q_min_gev: float) -> ProcessTable:
    """The bremsstrahlung table of the material (with its X0)."""
    tab = bremsstrahlung.table(physics, material, q_min_gev)
    tab.process = NAME
    return tab


def cross_section(tab: ProcessTable, kinetic_gev) -> np.ndarray:
    """Bremsstrahlung above q_min [m²/kg] (the conversion probability is a
    weight of the sampled final state)."""
    return bremsstrahlung.cross_section(tab, kinetic_gev)


def conversion_probability(tab: ProcessTable, grammage_left_kg_m2) -> np.ndarray:
    """P(γ → e⁺e⁻ before the photon leaves its volume) (module docstring)."""
    mu = bremsstrahlung.PAIR_ATTENUATION_PER_X0 / tab.extra["radiation_length_kg_m2"]
    return -np.expm1(-mu * np.asarray(grammage_left_kg_m2, float))


def sample(tab: ProcessTable, kinetic_gev, direction, charge, u,
           grammage_left_kg_m2=np.inf) -> FinalState:
    """Scattered muon and the e⁺e⁻ pair of the converted photon; weight
    P_ee."""
    q = sample_transfer(tab, kinetic_gev, u[:, 0])
    lo = np.minimum(ELECTRON_MASS_GEV / np.maximum(q, 1e-9), 0.5)
    x = lo + (1 - 2 * lo) * u[:, 1]
    ok = u[:, 2] < 1 - 4 / 3 * x * (1 - x)
    x = np.where(ok, x, lo + (1 - 2 * lo) * u[:, 3])
    e_plus = np.clip(x * q, ELECTRON_MASS_GEV, q - ELECTRON_MASS_GEV)
    state = lepton_pair_state(kinetic_gev, q, e_plus, ELECTRON_MASS_GEV, direction, charge,
                              2 * np.pi * u[:, 4], names=("e+", "e-"))
    state.weight = conversion_probability(tab, grammage_left_kg_m2)
    return state
