"""Muon bremsstrahlung followed by photon conversion to μ⁺μ⁻.

Photon energy q from PUMAS's bremsstrahlung DCS (default "SSR",
arXiv:1910.07050; "KKP": Kelner, Kokoulin & Petrukhin, Phys. At. Nucl. 62
(1999) 1894), emitted along the muon (θ ~ m_μ/E neglected).

The photon is then forced to convert into μ⁺μ⁻ in the same material
(Bethe–Heitler pair production scaled to muons). Cross section: the
Burkhardt–Kelner–Kokoulin parametrisation as implemented in Geant4
``G4GammaConversionToMuons`` (H. Burkhardt, S. R. Kelner, R. P. Kokoulin,
CERN-SL-2002-016 (AP), CLIC Note 511):
σ = (7/9) 4 α Z² R_c² ln(1 + W_M C(E) E_g), R_c = r_e m_e/m_μ, B = 183,
D_n = 1.54 A^0.27, W_∞ = B Z^(−1/3) m_μ/(D_n m_e), W_M = 1/(4 D_n √e m_μ),
E_g = (1 − 4 m_μ/E)^(1.479 + 0.00799 D_n) (W_sat^(−0.88) + E^(−0.88))^(−1/0.88),
W_sat = W_∞/W_M, C(E) = 1 + 0.04 ln(1 + E_c/E),
E_c = −18 + 4347/(B Z^(−1/3)) MeV (``docs/physics.md``; energies in GeV
below, E_c converted).

The conversion is forced with weight the probability that the photon
converts to μ⁺μ⁻ before it leaves the material it was emitted in:

    P_μμ = (μ_μμ / μ_tot) · (1 − exp(−μ_tot X_left)),

μ_μμ = Σ_elements n_i σ_μμ,i [m²/kg], μ_tot = 7/(9 X0) the photon's total
attenuation per grammage — the high-energy limit of e⁺e⁻ pair production
(PDG, "Passage of particles through matter", pair-production mean free path
(9/7) X0), which dominates above 1 GeV (Compton and photonuclear add < 1 %)
and is within a few per cent of the true total above ~20 GeV (below it is
5–15 % high [est], making P_μμ a little low) — and X_left the grammage from
the emission point to the downstream exit of the volume along the muon
(the photon is emitted along it, θ ~ m_μ/E), which the forced sampler
passes in. The grammage holds the local density (``density_scale``). In
dense matter a photon converts (to e⁺e⁻) within ~9/7 X0 (2.3 cm of iron),
so P_μμ ≈ σ_μμ/σ_tot (1.9e-5 at 100 GeV in iron); in a thin volume it is
~μ_μμ X_left. Conversions in a later volume are neglected (the photon
would convert there with the same small μμ share, but the pair would not
start from the emission point). Energy sharing:
x₊ uniform within the kinematic limits weighted by (1 − 4/3 x₊x₋)
(the leading factor of the BKK density, the ln W factor neglected).
Category 'mu-mu'.
"""

from __future__ import annotations

import numpy as np

from backtrace.beamline.materials import properties
from backtrace.constants import ALPHA_EM, ELECTRON_MASS_GEV, MUON_MASS_GEV
from backtrace.interactions._common import (
    MUON_RADIUS_M,
    FinalState,
    ProcessTable,
    atoms_per_kg,
    interp_loglog,
    lepton_pair_state,
    radiative_table,
    sample_transfer,
)
from backtrace.pumas.dcs import composition

NAME = "bremsstrahlung"
CATEGORY = "mu-mu"
SECONDARIES = ("mu+", "mu-")
N_UNIFORMS = 8
#: The forced sampler passes the grammage left in the volume to ``sample``.
USES_PATH_LEFT = True
#: Photon attenuation per radiation length at high energy (pair production):
#: 7/9 (PDG, "Passage of particles through matter").
PAIR_ATTENUATION_PER_X0 = 7.0 / 9.0


def gamma_to_mumu_cross_section_m2(e_gamma_gev, z: float, a: float):
    """σ(γ Z → μ⁺μ⁻ Z) per atom [m²] (Burkhardt–Kelner–Kokoulin)."""
    e = np.asarray(e_gamma_gev, float)
    b = 202.4 if z == 1 else 183.0
    dn = 1.54 * a ** 0.27
    sqrt_e = np.sqrt(np.e)
    w_inf = b * z ** (-1 / 3) * MUON_MASS_GEV / (dn * ELECTRON_MASS_GEV)
    w_m = 1 / (4 * dn * sqrt_e * MUON_MASS_GEV)
    w_sat = w_inf / w_m
    e_c = (-18.0 + 4347.0 / (b * z ** (-1 / 3))) * 1e-3  # MeV -> GeV
    thr = 4 * MUON_MASS_GEV
    with np.errstate(invalid="ignore", divide="ignore"):
        c = 1 + 0.04 * np.log(1 + e_c / e)
        e_g = (np.clip(1 - thr / e, 0, None) ** (1.479 + 0.00799 * dn)
               * (w_sat ** -0.88 + e ** -0.88) ** (-1 / 0.88))
        rc = MUON_RADIUS_M
        sigma = 7 / 9 * 4 * ALPHA_EM * z * z * rc * rc * np.log(1 + w_m * c * e_g)
    return np.where(e > thr, sigma, 0.0)


def table(physics, material: str, q_min_gev: float) -> ProcessTable:
    tab = radiative_table(physics, material, "bremsstrahlung", q_min_gev)
    tab.extra["composition"] = composition(physics, material)
    tab.extra["radiation_length_kg_m2"] = properties(material).radiation_length_kg_m2
    return tab


def mumu_attenuation_m2_kg(tab: ProcessTable, e_gamma_gev) -> np.ndarray:
    """μ_μμ = Σ n_i σ(γ → μμ)_i [m²/kg] of the table's material."""
    mu = 0.0
    for z, a, w in tab.extra["composition"]:
        mu = mu + atoms_per_kg(w, a) * gamma_to_mumu_cross_section_m2(e_gamma_gev, z, a)
    return np.asarray(mu, float)


def conversion_probability(tab: ProcessTable, e_gamma_gev, grammage_left_kg_m2):
    """P(γ → μμ before the photon leaves the volume), ``grammage_left_kg_m2``
    of the material ahead (module docstring)."""
    mu_mumu = mumu_attenuation_m2_kg(tab, e_gamma_gev)
    mu_tot = PAIR_ATTENUATION_PER_X0 / tab.extra["radiation_length_kg_m2"]
    x = np.asarray(grammage_left_kg_m2, float)
    if mu_tot == 0:                         # the model vacuum: no conversion
        return mu_mumu * x
    return mu_mumu / mu_tot * -np.expm1(-mu_tot * x)


def cross_section(tab: ProcessTable, kinetic_gev) -> np.ndarray:
    """Bremsstrahlung above q_min [m²/kg] (the conversion probability is a
    weight of the sampled final state)."""
    return interp_loglog(kinetic_gev, tab.energies, tab.sigma)


def sample(tab: ProcessTable, kinetic_gev, direction, charge, u,
           grammage_left_kg_m2=np.inf) -> FinalState:
    """Scattered muon and the μ⁺μ⁻ pair of the converted photon; weight
    P_μμ (``grammage_left_kg_m2``: matter ahead in the volume, default a
    thick volume)."""
    q = sample_transfer(tab, kinetic_gev, u[:, 0])
    p_conv = conversion_probability(tab, q, grammage_left_kg_m2)
    # x+ with density ∝ 1 − 4/3 x+ x−, by two-try accept–reject then fallback
    lo = 0.5 - np.sqrt(np.clip(0.25 - MUON_MASS_GEV / np.maximum(q, 1e-9), 0, None))
    x = lo + (1 - 2 * lo) * u[:, 1]
    ok = u[:, 2] < 1 - 4 / 3 * x * (1 - x)
    x2 = lo + (1 - 2 * lo) * u[:, 3]
    x = np.where(ok, x, x2)
    e_plus = np.maximum(x * q, MUON_MASS_GEV * 1.000001)
    e_minus = np.maximum(q - e_plus, MUON_MASS_GEV * 1.000001)
    e_plus = q - e_minus
    state = lepton_pair_state(kinetic_gev, q, e_plus, MUON_MASS_GEV, direction, charge,
                              2 * np.pi * u[:, 4])
    state.weight = p_conv
    return state
