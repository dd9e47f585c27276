"""Muons produced by 400 GeV/c protons in the dump (TAX: copper then iron).

Model (all yields per proton on target, each component with a ``scale``):

1. **First proton interaction** at depth d ~ Exp(λ_I) in TAX1 copper
   (λ_I = 137.3 g/cm², i.e. 15.32 cm) and, beyond its 0.81 m, in iron
   (132.1 g/cm², 16.77 cm) — PDG Atomic and Nuclear Properties, nuclear
   interaction lengths [FROM MEMORY for Cu; see PHYSICS_REFERENCES §1]. The
   impact point and its Gaussian spread come from the geometry file.
2. **π± and K±** from that interaction: BMPT parametrisation of the
   invariant cross section for p–Be at 400–450 GeV (M. Bonesini, A.
   Marchionni, F. Pietropaolo, T. Tabarelli de Fatis, Eur. Phys. J. C 20
   (2001) 13, hep-ph/0101163, eqs. 2–5 and table 2), with a′ = a/x_R^γ,
   b′ = a²/(2 x_R^δ), the π+/π− and K+/K− ratios of the same paper, scaled
   to copper or iron with the A-dependence of Barton et al., PRD 27 (1983)
   2580: (A/9)^α, α = (0.74 − 0.55 x_F + 0.26 x_F²)(0.98 + 0.21 p_T²), and
   divided by the inelastic cross section σ_inel = A/(N_A λ_I).
3. **Decay before absorption**: each meson is forced to decay, weighted by
   P = λ_dec⁻¹/(λ_dec⁻¹ + λ_abs⁻¹) with λ_dec = (p/m) cτ (cτ from the
   `particle` package, PDG) and λ_abs the meson absorption length (pion:
   λ_I/0.77, kaon: λ_I/0.70, from the π/p and K/p absorption cross-section
   ratios of Carroll et al., PLB 80 (1979) 319 [FROM MEMORY]); the decay
   point is Exp(1/(λ_dec⁻¹ + λ_abs⁻¹)) along the meson. π → μν (BR
   99.988 %), K → μν (BR 63.56 %), isotropic two-body decays in the rest
   frame. K_μ3 and tertiary mesons from the hadronic cascade are not
   modelled: ``cascade_scale`` (default 1) multiplies the π/K yields to
   study them (thick-target cascades raise low-energy yields by up to ~2).
4. **Prompt muons** (decaying at the interaction point):
   - charm: σ(cc̄) = 18 μb per nucleon at 400 GeV, ∝ A¹ (C. Lourenço,
     H. K. Wöhri, Phys. Rept. 433 (2006) 127 compilation, value used by
     SHiP [FROM MEMORY]); charm-hadron fractions D⁰ 0.55, D⁺ 0.22, D_s 0.08,
     Λ_c 0.15 and semi-muonic BRs 6.7 %, 17.6 %, 6.3 %, 4.0 % (PDG
     [FROM MEMORY]); dσ/dx_F ∝ (1−|x_F|)^6, dσ/dp_T² ∝ exp(−0.9 p_T²)
     [est, E769/E791-like]; decay H_c → μ ν X as three-body phase space;
   - η → μμγ (BR 3.1e-4, Kroll–Wada with the NA60 form factor
     Λ⁻² = 1.934 GeV⁻², R. Arnaldi et al., PLB 757 (2016) 437), ρ → μμ
     (4.55e-5), ω → μμ (7.4e-5), φ → μμ (2.86e-4) (PDG [FROM MEMORY]) with
     yields relative to π⁰ = (π⁺+π⁻)/2 of 0.11, 0.10, 0.10, 0.012 (SPS
     p–A cocktails, CERES EPJC 4 (1998) 231 [FROM MEMORY]) and the π
     kinematics of BMPT with m_T scaling;
   - J/ψ → μμ: B_μμ σ/A = 1.18 nb per nucleon (SHiP, arXiv:2604.03661),
     kinematics as charm with (1−|x_F|)^5 and exp(−0.6 p_T²) [est].

Uncertainties: BMPT reproduces p–Be data to ~10–20 %; the A-scaling, the
absorption lengths and the neglected cascade make the π/K muon yield
uncertain by a factor ~2 at low momentum; prompt cross sections are known
to 20–50 %. See ``studies/source_model.md``.

Sampling is weighted (importance sampling): meson momenta are drawn
log-uniform between ``meson_p_min_gev`` and the beam momentum with a broad
p_T proposal, components in fixed proportions; each source muon carries a
weight = expected number per POT. Every event draws its random numbers from
its own counter-based stream (:mod:`backtrace.rng`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from backtrace.beamline.materials import read_mdf
from backtrace.constants import PROTON_MASS_GEV, pdg_mass_ctau
from backtrace.kinematics import sqrt_s_gev, three_body_decay, two_body_decay
from backtrace.rng import normals, uniforms
from backtrace.source.hadroproduction import (
    BR_MU_NU,
    MESON_ABSORPTION_RATIO,
    inelastic_cross_section_mb,
    meson_density,
    mt_scaled_density,
    mt_scaled_total,
    pi0_yield,
    target_constants,
)

__all__ = ["SourceConfig", "COMPONENTS", "sample_source_muons", "CHARM",
           "SIGMA_CC_PER_NUCLEON_MB"]

#: Dimuon branching ratios (PDG [FROM MEMORY]).
BR_MUMU = {"eta": 3.1e-4, "rho": 4.55e-5, "omega": 7.4e-5, "phi": 2.86e-4,
           "jpsi": 0.05961}
#: Light-meson yields relative to π0 (SPS p-A cocktail [FROM MEMORY]).
RATIO_TO_PI0 = {"eta": 0.11, "rho": 0.10, "omega": 0.10, "phi": 0.012}
#: Charm: σ(cc̄) per nucleon [mb]; hadron fractions; semi-muonic BRs;
#: the "third body" mass for H_c -> μ ν X phase space [GeV].
SIGMA_CC_PER_NUCLEON_MB = 18e-3
CHARM = {"D0": (0.55, 0.067, 0.4937), "D+": (0.22, 0.176, 0.4937),
         "Ds": (0.08, 0.063, 1.0195), "Lc": (0.15, 0.040, 1.1157)}
#: J/ψ: B_μμ σ per nucleon [mb] (SHiP, arXiv:2604.03661).
JPSI_BMUMU_SIGMA_PER_NUCLEON_MB = 1.18e-6
#: NA60 η Dalitz form factor pole (PLB 757 (2016) 437): Λ^-2 [GeV^-2].
ETA_LAMBDA_INV2 = 1.934

COMPONENTS = ("pion", "kaon", "charm", "eta", "rho", "omega", "phi", "jpsi")
#: Share of MC events given to each component (importance, not physics).
#: Charm muons rarely point into the detector but carry a large share of
#: its rate: they get half of the events.
DEFAULT_EVENT_FRACTIONS = {"pion": 0.22, "kaon": 0.12, "charm": 0.50,
                           "eta": 0.04, "rho": 0.03, "omega": 0.03,
                           "phi": 0.04, "jpsi": 0.02}


@dataclass(frozen=True)
class SourceConfig:
    """Knobs of the source model (see the module docstring)."""

    scales: dict = field(default_factory=lambda: {c: 1.0 for c in COMPONENTS})
    event_fractions: dict = field(default_factory=lambda: dict(DEFAULT_EVENT_FRACTIONS))
    cascade_scale: float = 1.0
    absorption_scale: float = 1.0
    meson_p_min_gev: float = 5.0
    muon_e_min_gev: float = 3.0

    def scale(self, component: str) -> float:
        return float(self.scales.get(component, 1.0))


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------
def _component_of(u, fractions):
    names = list(COMPONENTS)
    f = np.array([fractions.get(c, 0.0) for c in names], float)
    f = f / f.sum()
    idx = np.minimum(np.searchsorted(np.cumsum(f), u, side="right"), len(names) - 1)
    return np.array(names, dtype=object)[idx], f[idx]


def _interaction_points(geometry, u):
    """First proton interaction points (n, 3) and target material names."""
    beam = geometry.beam
    x0, y0, z0 = beam["impact_point_m"]
    sx, sy = beam.get("spread_m", (0.0, 0.0))
    lam_cu, lam_fe = _lambda_i_m("copper"), _lambda_i_m("iron")
    tax1 = geometry.element("TAX1")
    cu_len = sum(p.z_max_m - p.z_min_m for p in tax1.parts if p.material == "copper")
    d = -lam_cu * np.log(u[:, 0])
    in_fe = d > cu_len
    d = np.where(in_fe, cu_len - lam_fe * np.log(u[:, 1]), d)
    x = x0 + sx * normals(u[:, 2], u[:, 3])
    y = y0 + sy * normals(u[:, 4], u[:, 5])
    material = np.where(in_fe, "iron", "copper").astype(object)
    return np.column_stack([x, y, z0 + d]), material


@lru_cache(maxsize=None)
def _lambda_i_m(material: str) -> float:
    """Nuclear interaction length [m] at the MDF density of ``material``."""
    return target_constants(material)[1] / read_mdf()[material].density_g_cm3 / 100


def _p4(p_vec, mass):
    p_vec = np.asarray(p_vec, float)
    e = np.sqrt(np.sum(p_vec ** 2, axis=1) + mass ** 2)
    return np.column_stack([e, p_vec])


def _meson_momenta(u, p_min, p_max, mean_pt=0.5):
    """Proposal: p_z log-uniform, p_T ~ Gamma(2, mean_pt/2), φ uniform.
    Returns momenta (n, 3) and the proposal density in (p_z, p_T)."""
    pz = p_min * (p_max / p_min) ** u[:, 0]
    theta = mean_pt / 2
    pt = -theta * np.log(u[:, 1] * u[:, 2])
    phi = 2 * np.pi * u[:, 3]
    q = (1 / (pz * np.log(p_max / p_min))) * (pt / theta ** 2 * np.exp(-pt / theta))
    return np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pz]), q


def _decay_in_flight(species, cfg, u, vertex, material, p_beam):
    """π/K: production, forced decay before absorption, π/K → μν."""
    mass, ctau = pdg_mass_ctau(species)
    m_mu, _ = pdg_mass_ctau("muon")
    p_vec, q = _meson_momenta(u[:, :4], cfg.meson_p_min_gev, p_beam)
    charge = np.where(u[:, 4] < 0.5, 1.0, -1.0)
    pt = np.hypot(p_vec[:, 0], p_vec[:, 1])
    p = np.linalg.norm(p_vec, axis=1)
    dens = np.zeros(len(p))
    for m in ("copper", "iron"):
        sel = material == m
        dens[sel] = meson_density(species, p[sel], pt[sel], charge[sel], m, mass, p_beam)
    weight = dens / q / 0.5  # charge drawn with probability 1/2
    lam_i = np.array([_lambda_i_m(m) for m in material])
    lam_abs = lam_i / MESON_ABSORPTION_RATIO[species] * cfg.absorption_scale
    lam_dec = p / mass * ctau
    rate = 1 / lam_dec + 1 / lam_abs
    weight = weight * (1 / lam_dec) / rate * BR_MU_NU[species] * cfg.cascade_scale
    s = -np.log(u[:, 5]) / rate
    direction = p_vec / p[:, None]
    decay = vertex + s[:, None] * direction
    mu, _ = two_body_decay(_p4(p_vec, mass), m_mu, 0.0, u[:, 6], u[:, 7])
    return [dict(p4=mu, charge=charge, weight=weight, vertex=decay,
                 parent_p=p, parent_pt=pt)]


def _prompt_kinematics(u, mass, n_power, b_pt2, p_beam):
    """Hadron with dσ/dx_F ∝ (1−|x_F|)^n (x_F > 0), dσ/dp_T² ∝ exp(−b p_T²),
    in the lab frame of protons of momentum ``p_beam`` on nucleons at rest."""
    sqrt_s = sqrt_s_gev(p_beam)
    xf = 1 - u[:, 0] ** (1 / (n_power + 1))
    pt = np.sqrt(-np.log(u[:, 1]) / b_pt2)
    phi = 2 * np.pi * u[:, 2]
    pl_star = xf * sqrt_s / 2
    e_star = np.sqrt(pl_star ** 2 + pt ** 2 + mass ** 2)
    m_p = PROTON_MASS_GEV
    e_beam = np.hypot(p_beam, m_p)
    beta = p_beam / (e_beam + m_p)
    gamma = 1 / np.sqrt(1 - beta ** 2)
    pz = gamma * (pl_star + beta * e_star)
    return np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pz])


def _charm(cfg, u, vertex, material, p_beam):
    names = list(CHARM)
    frac = np.array([CHARM[n][0] for n in names])
    k = np.minimum(np.searchsorted(np.cumsum(frac / frac.sum()), u[:, 0],
                                   side="right"), len(names) - 1)
    m_mu, _ = pdg_mass_ctau("muon")
    a = np.array([target_constants(m)[0] for m in material])
    sigma_in = np.array([inelastic_cross_section_mb(m) for m in material])
    # charm hadrons per interaction in the forward hemisphere: 2 per pair, 1/2 forward
    n_forward = 2 * SIGMA_CC_PER_NUCLEON_MB * a / sigma_in * 0.5
    weight = np.zeros(len(u))
    p4 = np.zeros((len(u), 4))
    for j, name in enumerate(names):
        sel = k == j
        if not sel.any():
            continue
        mass, _ = pdg_mass_ctau(name)
        _, br, m3 = CHARM[name]
        hadron = _p4(_prompt_kinematics(u[sel, 1:4], mass, 6.0, 0.9, p_beam), mass)
        mu, _, _, _ = three_body_decay(hadron, m_mu, 0.0, m3, u[sel, 4:38])
        p4[sel] = mu
        weight[sel] = n_forward[sel] * br
    charge = np.where(u[:, 39] < 0.5, 1.0, -1.0)
    return [dict(p4=p4, charge=charge, weight=weight, vertex=vertex,
                 parent_p=np.zeros(len(u)), parent_pt=np.zeros(len(u)))]


def _light_meson(name, cfg, u, vertex, material, p_beam):
    mass, _ = pdg_mass_ctau(name)
    m_mu, _ = pdg_mass_ctau("muon")
    p_vec, q = _meson_momenta(u[:, :4], cfg.meson_p_min_gev, p_beam)
    pt = np.hypot(p_vec[:, 0], p_vec[:, 1])
    weight = np.zeros(len(u))
    for m in ("copper", "iron"):
        sel = material == m
        if not sel.any():
            continue
        dens = mt_scaled_density(name, p_vec[sel, 2], pt[sel], m, p_beam)
        weight[sel] = (dens / mt_scaled_total(name, m, p_beam) / q[sel]
                       * RATIO_TO_PI0[name] * pi0_yield(m, p_beam))
    weight *= BR_MUMU[name]
    parent = _p4(p_vec, mass)
    if name == "eta":
        mass_star = _kroll_wada_mass(mass, m_mu, u[:, 4:20])
        virtual, _ = two_body_decay(parent, mass_star, 0.0, u[:, 20], u[:, 21])
        mu1, mu2 = two_body_decay(virtual, m_mu, m_mu, u[:, 22], u[:, 23])
    else:
        mu1, mu2 = two_body_decay(parent, m_mu, m_mu, u[:, 4], u[:, 5])
    common = dict(weight=weight, vertex=vertex, parent_p=np.linalg.norm(p_vec, axis=1),
                  parent_pt=pt)
    return [dict(p4=mu1, charge=np.ones(len(u)), **common),
            dict(p4=mu2, charge=-np.ones(len(u)), **common)]


def _kroll_wada_mass(m_parent, m_mu, u):
    """Dimuon mass in P → γ μμ: Kroll–Wada (1 − m²/M²)³ (1 + 2m_μ²/m²)
    β (2/m) times |F|² = (1 − m² Λ⁻²)⁻², by accept–reject with the tries
    in ``u`` (n, 2k); proposal ∝ 1/m on [2 m_μ, M]."""
    lo, hi = 2 * m_mu, m_parent
    k = u.shape[1] // 2

    def density(m):
        beta = np.sqrt(np.maximum(1 - 4 * m_mu ** 2 / m ** 2, 0))
        ff = 1 / (1 - m ** 2 * ETA_LAMBDA_INV2) ** 2
        return (1 - m ** 2 / m_parent ** 2) ** 3 * (1 + 2 * m_mu ** 2 / m ** 2) * beta * ff

    grid = np.linspace(lo, hi, 400)
    bound = 1.05 * np.max(density(grid))
    chosen = np.full(len(u), np.nan)
    for j in range(k):
        m = lo * (hi / lo) ** u[:, 2 * j]
        ok = (u[:, 2 * j + 1] * bound < density(m)) & np.isnan(chosen)
        chosen[ok] = m[ok]
    chosen[np.isnan(chosen)] = lo * 1.5
    return chosen


def _jpsi(cfg, u, vertex, material, p_beam):
    mass, _ = pdg_mass_ctau("jpsi")
    m_mu, _ = pdg_mass_ctau("muon")
    a = np.array([target_constants(m)[0] for m in material])
    sigma_in = np.array([inelastic_cross_section_mb(m) for m in material])
    weight = JPSI_BMUMU_SIGMA_PER_NUCLEON_MB * a / sigma_in * 0.5  # x_F > 0 only
    parent = _p4(_prompt_kinematics(u[:, :3], mass, 5.0, 0.6, p_beam), mass)
    mu1, mu2 = two_body_decay(parent, m_mu, m_mu, u[:, 3], u[:, 4])
    common = dict(weight=weight, vertex=vertex, parent_p=parent[:, 0],
                  parent_pt=np.hypot(parent[:, 1], parent[:, 2]))
    return [dict(p4=mu1, charge=np.ones(len(u)), **common),
            dict(p4=mu2, charge=-np.ones(len(u)), **common)]


N_UNIFORMS = 40


def sample_source_muons(geometry, config: SourceConfig, seed: int,
                        events: np.ndarray, n_events: int) -> pd.DataFrame:
    """Muons of the MC events ``events`` (int64 indices, out of ``n_events``
    in the whole run) at their creation point: columns event, muon, x_m..
    pz_gev, charge, weight, component, parent_p_gev. ``weight`` is in muons
    per POT: summing it over the muons of all ``n_events`` events estimates
    the yield per proton. Muons below ``muon_e_min_gev`` are dropped (they
    cannot leave the dump)."""
    events = np.asarray(events, dtype=np.int64)
    u_main = uniforms(seed, events, 8, stream="source")
    u = uniforms(seed, events, N_UNIFORMS, stream="source_decay")
    component, frac = _component_of(u_main[:, 0], config.event_fractions)
    vertex, material = _interaction_points(geometry, u_main[:, 1:7])
    p_beam = geometry.beam_momentum_gev
    rows = []
    for name in COMPONENTS:
        sel = component == name
        if not sel.any():
            continue
        args = (config, u[sel], vertex[sel], material[sel], p_beam)
        if name in ("pion", "kaon"):
            muons = _decay_in_flight(name, *args)
        elif name == "charm":
            muons = _charm(*args)
        elif name == "jpsi":
            muons = _jpsi(*args)
        else:
            muons = _light_meson(name, *args)
        for k, mu in enumerate(muons):
            w = mu["weight"] * config.scale(name) / frac[sel] / n_events
            rows.append(pd.DataFrame({
                "event": events[sel], "muon": k,
                "x_m": mu["vertex"][:, 0], "y_m": mu["vertex"][:, 1],
                "z_m": mu["vertex"][:, 2],
                "px_gev": mu["p4"][:, 1], "py_gev": mu["p4"][:, 2],
                "pz_gev": mu["p4"][:, 3], "charge": mu["charge"],
                "weight": w, "component": name,
                "parent_p_gev": mu["parent_p"],
            }))
    if not rows:
        return pd.DataFrame()
    df = pd.concat(rows, ignore_index=True).sort_values(["event", "muon"],
                                                        ignore_index=True)
    m_mu, _ = pdg_mass_ctau("muon")
    p = np.linalg.norm(df[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1)
    e_kin = np.sqrt(p ** 2 + m_mu ** 2) - m_mu
    keep = (e_kin >= config.muon_e_min_gev) & (df["pz_gev"] > 0) & (df["weight"] > 0)
    return df[keep].reset_index(drop=True)
