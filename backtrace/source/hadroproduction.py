"""Hadron production in proton (and hadron-like photon) collisions with nuclei.

Shared by the dump source model (:mod:`backtrace.source.model`) and the hadronic
final state of muon photonuclear interactions
(:mod:`backtrace.interactions.photonuclear`).

- **BMPT**: M. Bonesini, A. Marchionni, F. Pietropaolo, T. Tabarelli de
  Fatis, "On particle production for high energy neutrino beams", Eur. Phys.
  J. C 20 (2001) 13, hep-ph/0101163: the invariant cross section of p + Be
  → π±/K± + X at 400–450 GeV in the radial scaling variable x_R = E*/E*_max
  and p_T, E d³σ/dp³ = A (1 − x_R)^α (1 + B x_R) x_R^(−β) (1 + a′p_T +
  b′p_T²) exp(−a′p_T) with a′ = a/x_R^γ, b′ = a²/(2 x_R^δ) (eqs. 2–5, table
  2), and the π+/π−, K+/K− ratios of the same paper.
- **A-dependence**: D. S. Barton et al., Phys. Rev. D 27 (1983) 2580:
  σ_inv(A₁)/σ_inv(A₂) = (A₁/A₂)^α, α = (0.74 − 0.55 x_F + 0.26 x_F²)(0.98 +
  0.21 p_T²).
- **Inelastic cross section** of a nucleus from its nuclear interaction
  length, σ_inel = A/(N_A λ_I), λ_I and A from ``materials/properties.toml``
  (BMPT's beryllium target: :data:`BERYLLIUM`).
- **Meson absorption** relative to protons (σ_πA/σ_pA ≈ 0.77, σ_KA/σ_pA ≈
  0.70; Carroll et al., PLB 80 (1979) 319 [from memory]).

Units: GeV, mb; densities d²N/(dp_z dp_T) per inelastic interaction [1/GeV²].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from backtrace.beamline.materials import properties
from backtrace.constants import AVOGADRO_PER_MOL, PROTON_MASS_GEV, pdg_mass_ctau
from backtrace.rng import MT_INTEGRAL_SEED, YIELD_INTEGRAL_SEED

__all__ = ["BMPT", "BERYLLIUM", "BR_MU_NU", "MESON_ABSORPTION_RATIO",
           "target_constants", "inelastic_cross_section_mb", "x_radial",
           "bmpt_invariant", "barton_alpha", "meson_density",
           "meson_yield_per_interaction", "mt_scaled_density", "mt_scaled_total",
           "pi0_yield", "absorption_length_g_cm2"]

#: BMPT parameters (Bonesini et al. 2001, table 2). A in mb/GeV², a in 1/GeV.
BMPT = {
    "pion": dict(A=62.3, B=1.57, alpha=3.45, beta=0.517, a=6.10,
                 gamma=0.153, delta=0.478, r0=1.05, r1=2.65),
    "kaon": dict(A=7.74, B=0.0, alpha=2.45, beta=0.444, a=5.04,
                 gamma=0.121, delta=0.242, r0=1.15, r1=-3.17),
}

#: BMPT's target, beryllium: mass number [g/mol] (PDG) and proton nuclear
#: interaction length [g/cm²] (PDG Atomic and Nuclear Properties [from memory]).
BERYLLIUM = {"mass_number": 9.0122, "nuclear_interaction_length_g_cm2": 77.8}

#: Decay-in-flight branching ratios to μν (PDG 2024).
BR_MU_NU = {"pion": 0.9998770, "kaon": 0.6356}

#: Absorption cross section of mesons relative to protons (Carroll et al.,
#: PLB 80 (1979) 319 [from memory]): λ_abs = λ_I / ratio.
MESON_ABSORPTION_RATIO = {"pion": 0.77, "kaon": 0.70}


def target_constants(material: str) -> tuple[float, float]:
    """(A [g/mol], λ_I [g/cm²]) of a target: BMPT's beryllium or a material
    of ``materials/properties.toml``."""
    if material == "beryllium":
        return BERYLLIUM["mass_number"], BERYLLIUM["nuclear_interaction_length_g_cm2"]

    p = properties(material)
    return p.mass_number, p.nuclear_interaction_length_g_cm2


def absorption_length_g_cm2(material: str, species: str = "pion") -> float:
    """Meson absorption length [g/cm²] in ``material``: λ_I / ratio."""
    return target_constants(material)[1] / MESON_ABSORPTION_RATIO[species]


def inelastic_cross_section_mb(material: str) -> float:
    """σ_inel = A / (N_A λ_I) [mb] for protons."""
    a, lam = target_constants(material)
    return a / (AVOGADRO_PER_MOL * lam) * 1e27


def x_radial(p_lab, pt, mass, p_beam, m_p=PROTON_MASS_GEV):
    """BMPT radial scaling variable x_R = E* / E*_max of a hadron of lab
    momentum p and transverse momentum p_T (projectile of momentum
    ``p_beam`` on a nucleon at rest), and Feynman x_F."""
    p_lab = np.asarray(p_lab, float)
    pt = np.asarray(pt, float)
    e_beam = np.hypot(p_beam, m_p)
    s = 2 * m_p ** 2 + 2 * m_p * e_beam
    sqrt_s = np.sqrt(s)
    beta = p_beam / (e_beam + m_p)
    gamma = 1 / np.sqrt(1 - beta ** 2)
    pz = np.sqrt(np.maximum(p_lab ** 2 - pt ** 2, 0.0))
    e = np.sqrt(p_lab ** 2 + mass ** 2)
    e_star = gamma * (e - beta * pz)
    e_max = (s - (2 * m_p) ** 2 + mass ** 2) / (2 * sqrt_s)  # recoil mass ≥ 2 m_p
    return e_star / e_max, gamma * (pz - beta * e) / (sqrt_s / 2)


def bmpt_invariant(species: str, x_r, pt, charge=+1):
    """E d³σ/dp³ [mb GeV⁻²] for p + Be → h± + X at 400–450 GeV (BMPT)."""
    c = BMPT[species]
    x = np.clip(np.asarray(x_r, float), 1e-6, 1 - 1e-9)
    pt = np.asarray(pt, float)
    ap = c["a"] / x ** c["gamma"]
    bp = c["a"] ** 2 / (2 * x ** c["delta"])
    f = (c["A"] * (1 - x) ** c["alpha"] * (1 + c["B"] * x) * x ** (-c["beta"])
         * (1 + ap * pt + bp * pt ** 2) * np.exp(-ap * pt))
    if np.any(np.asarray(charge) < 0):
        if species == "pion":
            ratio = c["r0"] * (1 + x) ** c["r1"]      # π+/π−
        else:
            ratio = c["r0"] * (1 - x) ** c["r1"]      # K+/K−
        f = np.where(np.asarray(charge) < 0, f / ratio, f)
    return np.where(np.asarray(x_r) < 1, f, 0.0)


def barton_alpha(x_f, pt):
    """Exponent of (A1/A2)^α for invariant cross sections (Barton et al.)."""
    x_f = np.asarray(x_f, float)
    pt = np.asarray(pt, float)
    return (0.74 - 0.55 * x_f + 0.26 * x_f ** 2) * (0.98 + 0.21 * pt ** 2)


def _a_scale(material: str, x_f, pt):
    return (target_constants(material)[0] / BERYLLIUM["mass_number"]) \
        ** barton_alpha(x_f, pt)


def meson_density(species, p, pt, charge, material, mass, p_beam):
    """d²N/(dp_z dp_T) per inelastic interaction in ``material`` [1/GeV²]
    for protons of momentum ``p_beam`` [GeV/c]."""
    x_r, x_f = x_radial(p, pt, mass, p_beam)
    inv = bmpt_invariant(species, x_r, pt, charge)
    e = np.sqrt(p ** 2 + mass ** 2)
    return 2 * np.pi * pt / e * inv * _a_scale(material, x_f, pt) \
        / inelastic_cross_section_mb(material)


def meson_yield_per_interaction(species, material, charge, p_beam, p_min=1.0,
                                n=200_000, seed=YIELD_INTEGRAL_SEED):
    """∫ d²N/(dp_z dp_T) over p_z in [p_min, p_beam] GeV, p_T in [0, 3] GeV
    (MC integral with a fixed seed)."""
    mass, _ = pdg_mass_ctau(species)
    rng = np.random.default_rng(seed)
    pz = p_min * (p_beam / p_min) ** rng.random(n)
    pt = 3.0 * rng.random(n)
    p = np.hypot(pz, pt)
    f = meson_density(species, p, pt, charge, material, mass, p_beam)
    return float(np.mean(f * pz * np.log(p_beam / p_min) * 3.0))


@lru_cache(maxsize=None)
def pi0_yield(material: str, p_beam: float) -> float:
    """π⁰ per interaction as (π⁺ + π⁻)/2 of BMPT (p_z > 1 GeV, p_T < 3 GeV)."""
    return 0.5 * (meson_yield_per_interaction("pion", material, +1, p_beam, p_min=1.0)
                  + meson_yield_per_interaction("pion", material, -1, p_beam, p_min=1.0))


def mt_scaled_density(name: str, pz, pt, material: str, p_beam):
    """d²N/(dp_z dp_T) per interaction [1/GeV²] of a light meson with the
    BMPT π+ invariant cross section at the same x_R and the p_T' that gives
    the same transverse mass (m_T scaling), up to the yield normalisation."""
    mass, _ = pdg_mass_ctau(name)
    m_pi, _ = pdg_mass_ctau("pion")
    pz = np.asarray(pz, float)
    pt = np.asarray(pt, float)
    ptp = np.sqrt(pt ** 2 + mass ** 2 - m_pi ** 2)
    p = np.hypot(pz, pt)
    x_r, x_f = x_radial(p, pt, mass, p_beam)
    inv = bmpt_invariant("pion", x_r, ptp, +1)
    e = np.sqrt(p ** 2 + mass ** 2)
    return 2 * np.pi * pt / e * inv * _a_scale(material, x_f, pt) \
        / inelastic_cross_section_mb(material)


@lru_cache(maxsize=None)
def mt_scaled_total(name: str, material: str, p_beam: float) -> float:
    """∫ :func:`mt_scaled_density` over p_z in [1, p_beam] GeV, p_T in [0, 3]
    GeV (the range of the π⁰ multiplicity it is normalised to)."""
    rng = np.random.default_rng(MT_INTEGRAL_SEED)
    n = 400_000
    pz = p_beam ** rng.random(n)
    pt = 3.0 * rng.random(n)
    return float(np.mean(mt_scaled_density(name, pz, pt, material, p_beam)
                         * pz * np.log(p_beam) * 3.0))
