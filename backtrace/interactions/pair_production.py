"""Muon e⁺e⁻ pair production, μ A → μ e⁺ e⁻ A.

**Pair energy** q from PUMAS's DCS (default model "SSR": Sandrock,
Soedingrekso & Rhode, ICRC 2019, arXiv:1910.07050; alternative "KKP"),
integrated above ``q_min``.

**Energy sharing.** The asymmetry ρ = (E₊ − E₋)/q is sampled from the
doubly differential cross section of Kelner, Kokoulin & Petrukhin in the
form of the Geant4 Physics Reference Manual ("Positron - Electron Pair
Production by Muons": R. P. Kokoulin & A. A. Petrukhin, Proc. 11th ICRC
(Budapest 1969), Acta Phys. Acad. Sci. Hung. 29 Suppl. 4 (1970) 277 and
Proc. 12th ICRC (Hobart 1971) 6, 2436, finite nuclear size; S. R. Kelner,
Phys. At. Nucl. 61 (1998) 448, atomic electrons):

    dσ/dε = (4/3π) Z(Z + ζ) (α r_e)² (1 − v)/ε ∫₀^ρ_max [Φ_e + (m/μ)² Φ_μ] dρ,

the integrand being the density in |ρ| (the distribution of ρ is even);
v = ε/E (E the muon's total energy, ε = q the pair energy), m and μ the
electron and muon masses, |ρ| ≤ ρ_max =
[1 − 6μ²/(E²(1 − v))] √(1 − 4m/ε); Φ_e = C_e L_e, Φ_μ = C_μ L_μ (each
taken as 0 where negative) with β = v²/(2(1 − v)), ξ = (μv/2m)² (1 − ρ²)/(1 − v),
A* = 183 the radiation logarithm, and

- C_e = [(2 + ρ²)(1 + β) + ξ(3 + ρ²)] ln(1 + 1/ξ) + (1 − ρ² − β)/(1 + ξ) − (3 + ρ²),
- C_μ = [(1 + ρ²)(1 + 3β/2) − (1 + 2β)(1 − ρ²)/ξ] ln(1 + ξ) + ξ(1 − ρ² − β)/(1 + ξ)
  + (1 + 2β)(1 − ρ²),
- L_e = ln[A* Z^(−1/3) √((1 + ξ)(1 + Y_e)) / (1 + 2m√e A* Z^(−1/3) (1 + ξ)(1 + Y_e)/(Ev(1 − ρ²)))]
  − ½ ln[1 + (3m Z^(1/3)/2μ)² (1 + ξ)(1 + Y_e)],
- L_μ = ln[(μ/m) A* Z^(−1/3) / (1 + 2m√e A* Z^(−1/3) (1 + ξ)(1 + Y_μ)/(Ev(1 − ρ²)))]
  − ln(3 Z^(1/3)/2),
- Y_e = (5 − ρ² + 4β(1 + ρ²)) / [2(1 + 3β) ln(3 + 1/ξ) − ρ² − 2β(2 − ρ²)],
- Y_μ = (4 + ρ² + 3β(1 + ρ²)) / [(1 + ρ²)(3/2 + 2β) ln(3 + ξ) + 1 − 3ρ²/2],
- ζ = [0.073 ln(γ/(1 + γ₁Z^(2/3)γ)) − 0.26] / [0.058 ln(γ/(1 + γ₂Z^(1/3)γ)) − 0.14],
  γ = E/μ, γ₁ = 1.95e-5, γ₂ = 5.3e-5 (4.4e-5, 4.8e-5 for hydrogen), 0 where
  the numerator is not positive.

Where ξ is large (small) the brackets of C_e (C_μ) cancel to O(1/ξ) (O(ξ));
there their leading terms are used, derived here from the series of the
logarithms: C_e → [(3 − ρ²) + 2β(1 + ρ²)]/(2ξ) for ξ > 10³, C_μ → ξ[5 − ρ²
+ β(3 + ρ²)]/2 for ξ < 10⁻³ (relative error ~10⁻³). The density is summed
over the elements of the material (weights w_i/A_i · Z_i(Z_i + ζ_i)) and
inverted on a grid uniform in ln(1 − |ρ|) (it resolves the edge at ρ_max,
where the density falls); the sign of ρ is even. The implementation is
checked against PUMAS's own integration of the same DCS over ρ
(``tests/interactions/test_pair_production.py``).

**Angles**: θ± ≈ m/E± about the muon direction with a random azimuth (the
pair follows the muon). The muon keeps its direction. Category 'other' in
the μ+μ− channel (an e⁺e⁻ pair cannot fake a μμ or μπ vertex once
identified), the signal-like 'e-e' in the e⁺e⁻ channel.
"""

from __future__ import annotations

import numpy as np

from backtrace.constants import ALPHA_EM, ELECTRON_MASS_GEV, ELECTRON_RADIUS_M, MUON_MASS_GEV
from backtrace.interactions._common import (
    FinalState,
    ProcessTable,
    cdf_cells,
    interp_loglog,
    lepton_pair_state,
    radiative_table,
    sample_transfer,
)
from backtrace.pumas.dcs import composition

NAME = "pair_production"
CATEGORY = "other"
SECONDARIES = ("e+", "e-")
N_UNIFORMS = 4

#: Radiation logarithm A* of the Geant4 Physics Reference Manual formula.
RADIATION_LOG = 183.0
#: Nodes of the ln(1 − |ρ|) grid of the sampling.
N_RHO = 97
_SQRT_E = float(np.sqrt(np.e))


def table(physics, material: str, q_min_gev: float) -> ProcessTable:
    tab = radiative_table(physics, material, "pair_production", q_min_gev)
    tab.extra["composition"] = composition(physics, material)
    return tab


def cross_section(tab: ProcessTable, kinetic_gev) -> np.ndarray:
    return interp_loglog(kinetic_gev, tab.energies, tab.sigma)


def one_minus_rho_max(e_gev, q_gev) -> np.ndarray:
    """1 − ρ_max (module docstring), in a form free of cancellation."""
    e, q = np.asarray(e_gev, float), np.asarray(q_gev, float)
    x0 = np.clip(4 * ELECTRON_MASS_GEV / q, 0.0, 1.0)
    x1 = 6 * MUON_MASS_GEV ** 2 / (e * (e - q))
    s = np.sqrt(1 - x0)
    return (x0 + 2 * (1 - x0) * x1 - (1 - x0) * x1 * x1) / (1 + (1 - x1) * s)


def zeta(e_gev, z) -> np.ndarray:
    """ζ, the pair production on atomic electrons (module docstring)."""
    g = np.asarray(e_gev, float) / MUON_MASS_GEV
    z = np.asarray(z, float)
    g1, g2 = np.where(z == 1, 4.4e-5, 1.95e-5), np.where(z == 1, 4.8e-5, 5.3e-5)
    num = 0.073 * np.log(g / (1 + g1 * z ** (2 / 3) * g)) - 0.26
    den = 0.058 * np.log(g / (1 + g2 * z ** (1 / 3) * g)) - 0.14
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(num > 0, num / den, 0.0)


def phi(rho, e_gev, v, z, radiation_log: float = RADIATION_LOG) -> np.ndarray:
    """Φ_e + (m/μ)² Φ_μ at asymmetry ρ (module docstring); broadcasts."""
    r2 = np.asarray(rho, float) ** 2
    e, v = np.asarray(e_gev, float), np.asarray(v, float)
    z13 = np.asarray(z, float) ** (1 / 3)
    lz = radiation_log / z13
    beta = v * v / (2 * (1 - v))
    w = 1 - r2
    xi = (MUON_MASS_GEV * v / (2 * ELECTRON_MASS_GEV)) ** 2 * w / (1 - v)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        screen = 2 * ELECTRON_MASS_GEV * _SQRT_E * lz / (e * v * w)
        c_e = np.where(xi > 1e3, ((3 - r2) + 2 * beta * (1 + r2)) / (2 * xi),
                       ((2 + r2) * (1 + beta) + xi * (3 + r2)) * np.log1p(1 / xi)
                       + (w - beta) / (1 + xi) - (3 + r2))
        y_e = (5 - r2 + 4 * beta * (1 + r2)) / (
            2 * (1 + 3 * beta) * np.log(3 + 1 / xi) - r2 - 2 * beta * (2 - r2))
        x_e = (1 + xi) * (1 + y_e)
        l_e = np.log(lz * np.sqrt(x_e) / (1 + screen * x_e)) - 0.5 * np.log1p(
            (1.5 * ELECTRON_MASS_GEV * z13 / MUON_MASS_GEV) ** 2 * x_e)
        c_mu = np.where(xi < 1e-3, 0.5 * xi * (5 - r2 + beta * (3 + r2)),
                        ((1 + r2) * (1 + 1.5 * beta) - (1 + 2 * beta) * w / xi)
                        * np.log1p(xi) + xi * (w - beta) / (1 + xi) + (1 + 2 * beta) * w)
        y_mu = (4 + r2 + 3 * beta * (1 + r2)) / (
            (1 + r2) * (1.5 + 2 * beta) * np.log(3 + xi) + 1 - 1.5 * r2)
        l_mu = np.log(MUON_MASS_GEV / ELECTRON_MASS_GEV * lz
                      / (1 + screen * (1 + xi) * (1 + y_mu))) - np.log(1.5 * z13)
        out = np.maximum(c_e * l_e, 0.0) + (ELECTRON_MASS_GEV / MUON_MASS_GEV) ** 2 \
            * np.maximum(c_mu * l_mu, 0.0)
    return np.where(w > 0, np.nan_to_num(out, nan=0.0, posinf=0.0), 0.0)


def _rho_grid(e_gev, q_gev):
    """(n, N_RHO) |ρ| nodes uniform in ln(1 − |ρ|) from 0 to ρ_max, and the
    Jacobian dρ/dt = 1 − |ρ| of t = ln(1 − |ρ|)."""
    t_min = np.log(np.maximum(one_minus_rho_max(e_gev, q_gev), 1e-300))
    t = t_min[:, None] * np.linspace(0.0, 1.0, N_RHO)[None, :]
    jac = np.exp(t)
    return 1 - jac, jac


def dcs(z: float, a: float, kinetic_gev, q_gev,
        radiation_log: float = RADIATION_LOG) -> np.ndarray:
    """Atomic dσ/dq [m²/GeV] integrated over |ρ| for a muon of
    kinetic energy K losing q to the pair; 0 outside 4m < q and ρ_max > 0.
    (A check of :func:`phi`; the transfer itself is sampled from PUMAS.)"""
    k, q = np.broadcast_arrays(np.atleast_1d(np.asarray(kinetic_gev, float)),
                               np.atleast_1d(np.asarray(q_gev, float)))
    e = k + MUON_MASS_GEV
    ok = (q > 4 * ELECTRON_MASS_GEV) & (q < e - MUON_MASS_GEV) \
        & (one_minus_rho_max(e, np.where(q < e, q, 0.5 * e)) < 1)
    e, q = e[ok], q[ok]
    rho, jac = _rho_grid(e, q)
    v = (q / e)[:, None]
    f = phi(rho, e[:, None], v, z, radiation_log) * jac
    dt = np.diff(np.log(jac), axis=1)
    integral = np.sum(0.5 * (f[:, 1:] + f[:, :-1]) * -dt, axis=1)
    pref = 4 / (3 * np.pi) * (ALPHA_EM * ELECTRON_RADIUS_M) ** 2
    out = np.zeros(k.shape)
    out[ok] = pref * z * (z + zeta(e, z)) * (1 - q / e) / q * integral
    return out


def sample_rho(tab: ProcessTable, kinetic_gev, q_gev, u_abs, u_sign) -> np.ndarray:
    """ρ of pairs of energy q from muons of kinetic energy K in the table's
    material: |ρ| by inverting the element-summed density on the
    ln(1 − |ρ|) grid with ``u_abs``, the sign from ``u_sign``."""
    e = np.asarray(kinetic_gev, float) + MUON_MASS_GEV
    q = np.minimum(np.asarray(q_gev, float), 0.999 * (e - MUON_MASS_GEV))
    rho, jac = _rho_grid(e, q)
    v = (q / e)[:, None]
    density = np.zeros_like(rho)
    for z, a, w in tab.extra["composition"]:
        density += (w / a * z * (z + zeta(e, z)))[:, None] * phi(rho, e[:, None], v, z)
    density *= jac
    t = np.log(jac)
    cdf = np.concatenate([np.zeros((len(e), 1)), np.cumsum(
        0.5 * (density[:, 1:] + density[:, :-1]) * -np.diff(t, axis=1), axis=1)], axis=1)
    total = cdf[:, -1:]
    cdf = np.divide(cdf, total, out=np.tile(np.linspace(0, 1, N_RHO), (len(e), 1)),
                    where=total > 0)
    j, f = cdf_cells(cdf, u_abs)
    rows = np.arange(len(e))
    t_s = t[rows, j] + f * (t[rows, j + 1] - t[rows, j])
    return np.where(np.asarray(u_sign) < 0.5, -1.0, 1.0) * (1 - np.exp(t_s))


def sample(tab: ProcessTable, kinetic_gev, direction, charge, u) -> FinalState:
    q = sample_transfer(tab, kinetic_gev, u[:, 0])
    rho = sample_rho(tab, kinetic_gev, q, u[:, 1], u[:, 3])
    e_plus = 0.5 * q * (1 + rho)
    e_plus = np.clip(e_plus, ELECTRON_MASS_GEV, q - ELECTRON_MASS_GEV)
    return lepton_pair_state(kinetic_gev, q, e_plus, ELECTRON_MASS_GEV, direction,
                             charge, 2 * np.pi * u[:, 2], names=("e+", "e-"))
