"""Shared pieces of the interaction modules: tables from PUMAS DCSs, final
states, unit conversions.

Every process module exposes the same interface:

- ``NAME``, ``CATEGORY`` (the analysis category of its typical product:
  'mu-mu', 'mu-pi' or 'other'), ``SECONDARIES`` (particle names);
- ``table(physics, material, q_min_gev)`` → a :class:`ProcessTable`;
- ``cross_section(table, kinetic_gev)`` → macroscopic cross section
  [m²/kg] for producing a secondary with energy above ``q_min_gev``;
- ``sample(table, kinetic_gev, direction, charge, u)`` → :class:`FinalState`.

A per-process ``scale`` is applied by :func:`backtrace.interactions.cross_section`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backtrace.constants import (
    AVOGADRO_PER_MOL,
    ELECTRON_MASS_GEV,
    ELECTRON_RADIUS_M,
    MUON_MASS_GEV,
)
from backtrace.pumas.dcs import composition, dcs, dcs_range

__all__ = ["ProcessTable", "FinalState", "radiative_table", "transfer_table", "atoms_per_kg",
           "cdf_cells", "interp_loglog", "sample_transfer", "transfer_quantile", "four_vectors",
           "rotate_to", "ENERGY_GRID_GEV", "MUON_RADIUS_M"]

#: Muon kinetic energies [GeV] of the tables (beam muons: 1 GeV – 400 GeV+).
ENERGY_GRID_GEV = np.geomspace(1.0, 1000.0, 61)
N_Q = 256
#: Classical muon radius r_e m_e/m_μ [m].
MUON_RADIUS_M = ELECTRON_RADIUS_M * ELECTRON_MASS_GEV / MUON_MASS_GEV


@dataclass
class ProcessTable:
    """Cross sections and transfer CDFs of one process in one material."""

    process: str
    material: str
    q_min_gev: float
    energies: np.ndarray            # K grid [GeV]
    sigma: np.ndarray               # macroscopic σ(q > q_min) [m²/kg]
    q_grid: np.ndarray | None = None      # (nK, nQ) energy transfers [GeV]
    cdf: np.ndarray | None = None         # (nK, nQ) normalised CDF in q
    extra: dict = field(default_factory=dict)


@dataclass
class FinalState:
    """Outgoing particles of forced interactions (arrays over events).

    ``muon``: (n, 4) scattered muon four-momentum [GeV]; ``particles``:
    list of (name, charge (n,), p4 (n, 4)); the last may be a recoil or
    hadronic remnant that carries the balance of energy and charge.
    """

    muon: np.ndarray
    muon_charge: np.ndarray
    particles: list = field(default_factory=list)
    weight: np.ndarray | None = None     # extra weight (e.g. conversion prob.)


def interp_loglog(x, xp, fp):
    """Log–log interpolation (fp may contain zeros: treated as tiny)."""
    fp = np.maximum(np.asarray(fp, float), 1e-300)
    out = np.exp(np.interp(np.log(x), np.log(xp), np.log(fp)))
    return np.where(out > 1e-290, out, 0.0)


def atoms_per_kg(mass_fraction, a):
    """Atoms of an element per kg of material: w N_A / (A [g/mol] 1e-3 kg/g)."""
    return mass_fraction * AVOGADRO_PER_MOL / (a * 1e-3)


def transfer_table(process: str, material: str, q_min_gev: float, elements, q_range,
                   element_density, *, uniform_empty_cdf: bool = False) -> ProcessTable:
    """σ(K; q > q_min) [m²/kg] and CDFs in q on :data:`ENERGY_GRID_GEV`: at
    each K, the density ``element_density(z, a, w, K, q)`` [m²/kg/GeV] summed
    over ``elements`` (Z, A, mass fraction w) on a geometric q grid from
    ``q_range(K)`` = (q_lo, q_hi), integrated by trapezoids. A K without room
    for a transfer (q_hi ≤ q_lo) gets σ = 0 and a flat grid at q_lo, with a
    uniform CDF if ``uniform_empty_cdf`` (else zeros)."""
    energies = ENERGY_GRID_GEV
    sigma = np.zeros(len(energies))
    q_grid = np.zeros((len(energies), N_Q))
    cdf = np.zeros((len(energies), N_Q))
    for i, k in enumerate(energies):
        q_lo, q_hi = q_range(k)
        if not q_hi > q_lo:
            q_grid[i] = np.linspace(q_lo, q_lo * 1.0001, N_Q)
            if uniform_empty_cdf:
                cdf[i] = np.linspace(0, 1, N_Q)
            continue
        q = np.geomspace(q_lo, q_hi, N_Q)
        density = np.zeros(N_Q)
        for z, a, w in elements:
            density += element_density(z, a, w, k, q)
        c = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(q))])
        sigma[i] = c[-1]
        q_grid[i] = q
        cdf[i] = c / c[-1] if c[-1] > 0 else np.linspace(0, 1, N_Q)
    return ProcessTable(process, material, q_min_gev, energies, sigma, q_grid, cdf)


def radiative_table(physics, material: str, process: str, q_min_gev: float,
                    model=None) -> ProcessTable:
    """σ(K; q > q_min) [m²/kg] and CDFs in q from PUMAS's atomic DCS,
    summed over the elements of the material (mass fractions)."""
    comp = composition(physics, material)

    def q_range(k):
        return q_min_gev, dcs_range(process, comp[0][0], k, mass_gev=MUON_MASS_GEV)[1]

    def element_density(z, a, w, k, q):
        return atoms_per_kg(w, a) * dcs(process, z, a, k, q, mass_gev=MUON_MASS_GEV)

    return transfer_table(process, material, q_min_gev, comp, q_range, element_density)


def cdf_cells(cdf, u):
    """For u in each row of tabulated CDFs: the cell [j, j + 1] that holds it
    and the fraction of the way through the cell (within [0, 1] for a
    non-decreasing CDF from 0 to 1; not clipped)."""
    u = np.asarray(u, float)
    j = np.clip((cdf < u[:, None]).sum(axis=1), 1, cdf.shape[1] - 1)
    rows = np.arange(len(u))
    c0, c1 = cdf[rows, j - 1], cdf[rows, j]
    frac = np.where(c1 > c0, (u - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0)
    return j - 1, frac


def sample_transfer(table: ProcessTable, kinetic_gev, u) -> np.ndarray:
    """Energy transfer q [GeV] by inverse CDF at the nearest table energy
    below/above (log-linear mix), capped by the muon's kinetic energy."""
    k = np.asarray(kinetic_gev, float)
    lk = np.log(table.energies)
    f = np.clip(np.interp(np.log(k), lk, np.arange(len(lk))), 0, len(lk) - 1)
    i0 = np.floor(f).astype(int)
    i1 = np.minimum(i0 + 1, len(lk) - 1)
    t = f - i0
    u = np.asarray(u, float)

    def invert(rows):
        out = np.empty(len(u))
        for i in np.unique(rows):  # at most len(energies) vectorised passes
            sel = rows == i
            out[sel] = np.interp(u[sel], table.cdf[i], table.q_grid[i])
        return out

    q = np.exp((1 - t) * np.log(invert(i0)) + t * np.log(invert(i1)))
    return np.minimum(q, 0.999 * k)


def transfer_quantile(table: ProcessTable, kinetic_gev, q_gev: float,
                      iterations: int = 40) -> np.ndarray:
    """The uniform u_c at which :func:`sample_transfer` gives ``q_gev`` at
    each kinetic energy (its map u → q is non-decreasing): q ≥ q_gev ⟺ u ≥
    u_c. 1 where no transfer reaches ``q_gev``, 0 where every one does.
    Bisection to 2^−iterations."""
    k = np.asarray(kinetic_gev, float)
    lo, hi = np.zeros(len(k)), np.ones(len(k))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = sample_transfer(table, k, mid) < q_gev
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    reach = sample_transfer(table, k, np.full(len(k), 1.0)) >= q_gev
    return np.where(reach, hi, 1.0)


def rotate_to(direction, local):
    """Express vectors given in a frame whose z axis is ``direction`` (n, 3)
    in the lab frame."""
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d, axis=1)[:, None]
    helper = np.where(np.abs(d[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = np.cross(helper, d)
    e1 /= np.linalg.norm(e1, axis=1)[:, None]
    e2 = np.cross(d, e1)
    loc = np.asarray(local, float)
    return loc[:, :1] * e1 + loc[:, 1:2] * e2 + loc[:, 2:3] * d


def four_vectors(energy, mass, direction, theta, phi):
    """Four-vectors of particles of total energy E and mass m emitted at
    polar angle θ, azimuth φ around ``direction``."""
    e = np.asarray(energy, float)
    p = np.sqrt(np.maximum(e * e - mass * mass, 0.0))
    st, ct = np.sin(theta), np.cos(theta)
    local = np.stack([st * np.cos(phi), st * np.sin(phi), ct], axis=-1)
    pv = p[:, None] * rotate_to(direction, local)
    return np.column_stack([e, pv])


def muon_after(kinetic_gev, transfer_gev, direction, charge, theta=None, phi=None):
    """The scattered muon after losing ``transfer_gev`` (direction kept, or
    turned by θ)."""
    k_out = np.asarray(kinetic_gev, float) - np.asarray(transfer_gev, float)
    e = k_out + MUON_MASS_GEV
    n = len(e)
    th = np.zeros(n) if theta is None else theta
    ph = np.zeros(n) if phi is None else phi
    return four_vectors(e, MUON_MASS_GEV, direction, th, ph), np.asarray(charge, float)


def lepton_pair_state(kinetic_gev, q_gev, e_plus_gev, mass_gev, direction, charge,
                      phi, names=("mu+", "mu-")) -> "FinalState":
    """Final state of a muon that gave energy q to a lepton pair (E₊, q − E₊),
    the leptons at θ ≈ m/E about the muon direction, back to back in azimuth."""
    e_minus = q_gev - e_plus_gev
    plus = four_vectors(e_plus_gev, mass_gev, direction, mass_gev / e_plus_gev, phi)
    minus = four_vectors(e_minus, mass_gev, direction, mass_gev / e_minus, phi + np.pi)
    muon, mq = muon_after(kinetic_gev, q_gev, direction, charge)
    n = len(np.atleast_1d(q_gev))
    return FinalState(muon, mq, [(names[0], np.ones(n), plus),
                                 (names[1], -np.ones(n), minus)])
