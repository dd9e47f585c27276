"""Muon photonuclear interaction, μ A → μ X, with a leading charged pion.

Energy transfer ν from PUMAS's photonuclear DCS (default "DRSS": Dutta,
Reno, Sarcevic & Seckel, PRD 63 (2001) 094020, arXiv:hep-ph/0012350;
alternatives "BBKS" (Bezrukov–Bugaev with Kokoulin's σ_γN and the hard part
of Bugaev–Shlepin) and "BM" (Butkevich–Mikheyev)).

Muon scattering: the virtuality t = Q² is sampled from the 1/t law between
t_min = m_μ² v²/(1 − v) (v = ν/E) and t_max = 2 M ν (M the nucleon mass), as
in Geant4's ``G4MuonVDNuclearModel`` (D. H. Wright, 2011, source
processes/hadronic/models/lepto_nuclear); the muon angle follows from
Q² ≈ t_min + E E′ θ², i.e. θ = √((t − t_min)/(E E′)).

Hadronic final state — the G4MuonVDNuclearModel picture: the (quasi-real)
virtual photon of energy ν interacts with the nucleus like a hadron (Geant4
turns it into a π⁰ of the same momentum and hands it to its string model).
Here one charged pion is drawn from the BMPT meson-production
parametrisation (M. Bonesini, A. Marchionni, F. Pietropaolo, T. Tabarelli
de Fatis, Eur. Phys. J. C 20 (2001) 13, hep-ph/0101163; radial-scaling
variable x_R and p_T) evaluated for a beam of momentum ν, with the Barton et
al. (PRD 27 (1983) 2580) A-dependence from beryllium to the material's
mass-weighted mean A — the functions of :mod:`backtrace.source.hadroproduction`.
Approximations, stated: (i) BMPT was fitted to *proton* beams at 400–450 GeV
(p–Be); applying it to a photon/π⁰-like projectile of energy ν assumes
radial scaling in x_R down to ν and a projectile-independent fragmentation
(no meson-beam leading-particle effect; quasi-real photon, Q² ≪ 1 GeV² for
most events); (ii) the spectrum is the charge sum of BMPT's π⁺ and π⁻ and
the pion's charge is ±1 with equal probability (a neutral projectile has
no π⁺/π⁻ asymmetry of a proton beam); (iii) the mean number of charged
pions per interaction divides BMPT's invariant cross section by σ_inel(A),
a power law A^α_inel through the PDG proton σ_inel of Be and Fe
(λ_I of ``materials/properties.toml``; α_inel ≈ 0.71); (iv) the
*leading* pion (largest p_z) is that of independent (Poisson) emission with
this inclusive density on x = p_z/ν ∈ [0.02, 1], p_T < 2.5 GeV:
P(x_lead > x) = 1 − exp(−N(>x)). Events without a charged pion above
x = 0.02 (probability exp(−N_tot)) are not produced: the final state's
weight is 1 − exp(−N_tot) and the pion is drawn given that it exists.

Sampling: per material (A) and for 31 beam momenta ν_j log-spaced in
[1, 1000] GeV, the density d²N/dx dp_T (x = p_z/ν) is tabulated on 64 cells
in ln x × 48 cells in p_T; x by inverse CDF of the leading-pion law, p_T from the
conditional CDF of the chosen x cell, uniform within cells; between two ν_j
the table is chosen at random with the log-linear weight. The pion's p_T is
relative to the photon direction (muon momentum balance). The rest of ν
and the compensating charge go to a "hadronic remnant" pseudo-particle, so
that energy and charge balance exactly; it is not transported. Category
'mu-pi' (and 'mu-mu' when the pion decays, decided in forward transport).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from backtrace.constants import MUON_MASS_GEV, PION_MASS_GEV, PROTON_MASS_GEV
from backtrace.interactions._common import (
    FinalState,
    ProcessTable,
    cdf_cells,
    four_vectors,
    interp_loglog,
    muon_after,
    radiative_table,
    sample_transfer,
)
from backtrace.pumas.dcs import composition
from backtrace.source.hadroproduction import (
    BERYLLIUM,
    barton_alpha,
    bmpt_invariant,
    inelastic_cross_section_mb,
    target_constants,
    x_radial,
)

NAME = "photonuclear"
CATEGORY = "mu-pi"
SECONDARIES = ("pi+", "pi-")
N_UNIFORMS = 8
#: Nucleon mass [GeV] of t_max = 2Mν: the proton mass (PDG).
NUCLEON_MASS_GEV = PROTON_MASS_GEV
#: Lowest pion p_z/ν sampled.
Z_MIN = 0.02
PT_MAX_GEV = 2.5
#: Beam momenta [GeV] of the pion tables.
NU_GRID_GEV = np.geomspace(1.0, 1000.0, 31)
N_X, N_PT = 64, 48


def table(physics, material: str, q_min_gev: float) -> ProcessTable:
    tab = radiative_table(physics, material, "photonuclear", q_min_gev)
    tab.extra["a_mean"] = float(sum(w * a for _, a, w in composition(physics, material)))
    return tab


def cross_section(tab: ProcessTable, kinetic_gev) -> np.ndarray:
    return interp_loglog(kinetic_gev, tab.energies, tab.sigma)


def inelastic_exponent() -> float:
    """α_inel of σ_inel ∝ A^α_inel through the PDG proton σ_inel of Be and Fe."""
    ratio = inelastic_cross_section_mb("iron") / inelastic_cross_section_mb("beryllium")
    a_fe, _ = target_constants("iron")
    return float(np.log(ratio) / np.log(a_fe / BERYLLIUM["mass_number"]))


def pion_density(nu_gev, x, pt, a_mean):
    """d²N/dx dp_T [1/GeV] of charged pions (π⁺ + π⁻) per interaction with
    p_z = x ν and transverse momentum p_T [GeV], for a projectile of
    momentum ν on a nucleus of mass number A (BMPT for p–Be with the Barton
    A-scaling, divided by σ_inel(A)). Zero outside the kinematic range."""
    nu, x, pt = np.broadcast_arrays(*(np.asarray(a, float) for a in (nu_gev, x, pt)))
    pz = x * nu
    p = np.hypot(pz, pt)
    e = np.sqrt(p * p + PION_MASS_GEV ** 2)
    x_r, x_f = x_radial(p, pt, PION_MASS_GEV, p_beam=nu)
    inv = bmpt_invariant("pion", x_r, pt, +1) + bmpt_invariant("pion", x_r, pt, -1)  # mb/GeV²
    ratio = a_mean / BERYLLIUM["mass_number"]
    sigma_inel = inelastic_cross_section_mb("beryllium") * ratio ** inelastic_exponent()
    inv = inv * ratio ** barton_alpha(x_f, pt) / sigma_inel
    # E d³N/dp³ → d²N/dp_z dp_T = 2π p_T/E (...); dp_z = ν dx
    f = 2 * np.pi * pt / e * inv * nu
    return np.where((x_r < 1) & (e < nu), f, 0.0)


@lru_cache(maxsize=16)
def _pion_tables(a_mean: float):
    """Cell edges, leading-pion CDFs and weights: x edges (N_X+1,), p_T
    edges (N_PT+1,), CDF of the leading x (nν, N_X+1), conditional CDFs in
    p_T (nν, N_X, N_PT+1), P(≥ 1 pion above Z_MIN) (nν,)."""
    x_edges = np.geomspace(Z_MIN, 1.0, N_X + 1)
    pt_edges = np.linspace(0.0, PT_MAX_GEV, N_PT + 1)
    # cell integrals by 3×3 Gauss–Legendre points per cell
    g, w = np.polynomial.legendre.leggauss(3)
    lx = np.log(x_edges)
    xs = np.exp(0.5 * (lx[:-1, None] + lx[1:, None]) + 0.5 * np.diff(lx)[:, None] * g)
    wx = 0.5 * np.diff(lx)[:, None] * w * xs                        # dx = x d ln x
    ps = 0.5 * (pt_edges[:-1, None] + pt_edges[1:, None]) + 0.5 * np.diff(pt_edges)[:, None] * g
    wp = 0.5 * np.diff(pt_edges)[:, None] * w
    nu = NU_GRID_GEV[:, None, None, None, None]
    f = pion_density(nu, xs[None, :, :, None, None], ps[None, None, None, :, :], a_mean)
    cells = np.einsum("niajb,ia,jb->nij", f, wx, wp)                # mean numbers per cell
    row = cells.sum(axis=2)
    n_above = np.concatenate([np.cumsum(row[:, ::-1], axis=1)[:, ::-1],
                              np.zeros((len(NU_GRID_GEV), 1))], axis=1)  # N(> x_edge)
    n_tot = n_above[:, :1]
    p_any = -np.expm1(-n_tot[:, 0])
    cdf_x = (np.exp(-n_above) - np.exp(-n_tot)) / np.where(p_any > 0, p_any, 1.0)[:, None]
    cdf_pt = np.concatenate([np.zeros(cells.shape[:2] + (1,)), np.cumsum(cells, axis=2)], axis=2)
    tot = cdf_pt[:, :, -1:]
    cdf_pt = np.where(tot > 0, cdf_pt / np.where(tot > 0, tot, 1.0),
                      np.linspace(0, 1, N_PT + 1))
    return x_edges, pt_edges, cdf_x, cdf_pt, p_any


def _invert_rows(cdf, u):
    """Cell index j and fraction within the cell (clipped to [0, 1]) for u
    in each row's CDF."""
    j, frac = cdf_cells(cdf, u)
    return j, np.clip(frac, 0.0, 1.0)


def sample_pion(nu_gev, a_mean, u_table, u_x, u_pt):
    """Leading pion (x = p_z/ν, p_T [GeV]) for photon energies ν and the
    probability that there is one above Z_MIN (see module doc)."""
    x_edges, pt_edges, cdf_x, cdf_pt, p_any = _pion_tables(float(a_mean))
    nu = np.asarray(nu_gev, float)
    lg = np.log(NU_GRID_GEV)
    f = np.clip(np.interp(np.log(nu), lg, np.arange(len(lg))), 0, len(lg) - 1)
    i0 = np.floor(f).astype(int)
    i = np.where(np.asarray(u_table) < f - i0, np.minimum(i0 + 1, len(lg) - 1), i0)
    jx, fx = _invert_rows(cdf_x[i], np.asarray(u_x, float))
    x = x_edges[jx] * (x_edges[jx + 1] / x_edges[jx]) ** fx
    jp, fp = _invert_rows(cdf_pt[i, jx], np.asarray(u_pt, float))
    pt = pt_edges[jp] + fp * (pt_edges[jp + 1] - pt_edges[jp])
    return x, pt, p_any[i]


def sample(tab: ProcessTable, kinetic_gev, direction, charge, u) -> FinalState:
    k = np.asarray(kinetic_gev, float)
    nu = sample_transfer(tab, k, u[:, 0])
    e = k + MUON_MASS_GEV
    v = nu / e
    t_min = MUON_MASS_GEV ** 2 * v * v / (1 - v)
    t_max = np.maximum(2 * NUCLEON_MASS_GEV * nu, t_min)
    t = t_min * (t_max / t_min) ** u[:, 1]
    e_out = e - nu
    theta_mu = np.sqrt(np.clip((t - t_min) / (e * e_out), 0.0, 1e-2))
    muon, mq = muon_after(k, nu, direction, charge, theta_mu, 2 * np.pi * u[:, 2])
    # photon direction: momentum balance, p_γ = p_μ − p_μ′
    p_in = np.sqrt(k * (k + 2 * MUON_MASS_GEV))[:, None] * direction
    gamma_dir = p_in - muon[:, 1:]
    gamma_dir /= np.linalg.norm(gamma_dir, axis=1)[:, None]
    x, pt, weight = sample_pion(nu, tab.extra["a_mean"], u[:, 7], u[:, 3], u[:, 4])
    p_pi = np.hypot(x * nu, pt)
    e_pi = np.clip(np.sqrt(p_pi ** 2 + PION_MASS_GEV ** 2), PION_MASS_GEV * (1 + 1e-9), nu)
    theta_pi = np.arctan2(pt, x * nu)
    pion = four_vectors(e_pi, PION_MASS_GEV, gamma_dir, theta_pi, 2 * np.pi * u[:, 5])
    pi_charge = np.where(u[:, 6] < 0.5, 1.0, -1.0)
    # hadronic remnant: energy ν − E_π and momentum balance of the photon
    remnant = np.column_stack([nu - pion[:, 0],
                               p_in - muon[:, 1:] - pion[:, 1:]])
    return FinalState(muon, mq, [("pi", pi_charge, pion),
                                 ("remnant", -pi_charge, remnant)], weight)
