"""π± and K± decay in flight and absorption in matter.

Decay: π → μν (BR 99.98770 %), K → μν (63.56 %) (PDG 2024), isotropic
two-body decays in the rest frame (:func:`backtrace.kinematics.two_body_decay`;
muon energy uniform in [(m_μ/m_π)² E, E] for a fast pion). Lifetimes and
masses from the ``particle`` package (PDG data).

Absorption: survival exp(−L/λ_abs) with λ_abs = λ_I/0.77 for pions and
λ_I/0.70 for kaons, λ_I the nuclear interaction length of the material
(``materials/properties.toml``: PDG iron 132.1 g/cm², copper 137.3 g/cm²)
and the π/p, K/p absorption cross-section ratios of Carroll et al., PLB 80
(1979) 319 [from memory] (:mod:`backtrace.source.hadroproduction`); for iron
λ_π = 171.6 g/cm² (21.8 cm).
"""

from __future__ import annotations

import numpy as np

from backtrace.constants import pdg_mass_ctau
from backtrace.kinematics import two_body_decay
from backtrace.source.hadroproduction import BR_MU_NU, absorption_length_g_cm2

NAME = "decay"

__all__ = ["decay_length_m", "absorption_length_g_cm2", "survival_probability",
           "decay_probability", "decay_to_muon"]


def decay_length_m(p_gev, species: str = "pion"):
    """Mean decay length βγcτ = (p/m) cτ [m]."""
    mass, ctau = pdg_mass_ctau(species)
    return np.asarray(p_gev, float) / mass * ctau


def survival_probability(material: str, grammage_g_cm2, species: str = "pion"):
    """P(no nuclear interaction) after ``grammage_g_cm2`` of material."""
    return np.exp(-np.asarray(grammage_g_cm2, float)
                  / absorption_length_g_cm2(material, species))


def decay_probability(p_gev, length_m, species: str = "pion"):
    """P(decay within length_m) × BR(→ μν)."""
    return -np.expm1(-np.asarray(length_m, float) / decay_length_m(p_gev, species)) \
        * BR_MU_NU[species]


def decay_to_muon(p4, species: str, u1, u2):
    """Muon four-momenta from π/K → μν decays of parents ``p4`` (n, 4)."""
    m_mu, _ = pdg_mass_ctau("muon")
    mu, _ = two_body_decay(p4, m_mu, 0.0, u1, u2)
    return mu
