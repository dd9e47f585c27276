"""PUMAS differential cross sections of radiative processes, vectorised.

``dcs(process, Z, A, K, q)`` returns the atomic DCS dσ/dq [m²/GeV] of a
muon of kinetic energy K [GeV] losing q [GeV] to bremsstrahlung, e⁺e⁻ pair
production or a photonuclear interaction, with the model PUMAS uses by
default (SSR, SSR, DRSS in 1.2.3) or a named one; ``dcs_range`` gives the
kinematic range of q. Material compositions come from the loaded physics.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from backtrace.pumas._lib import check, load

__all__ = ["PROCESSES", "dcs", "dcs_range", "default_model", "composition"]

#: enum pumas_process
PROCESSES = {"bremsstrahlung": 0, "pair_production": 1, "photonuclear": 2}


def default_model(process: str) -> str:
    ffi, lib = load()
    return ffi.string(lib.bt_pumas.pumas_dcs_default(PROCESSES[process])).decode()


@lru_cache(maxsize=None)
def _function(process: str, model: str | None):
    ffi, lib = load()
    name = (model or default_model(process)).encode()
    out = ffi.new("pumas_dcs_t **")
    check(lib.bt_pumas.pumas_dcs_get(PROCESSES[process], name, out))
    return out[0]


def dcs(process: str, z: float, a: float, kinetic_gev, q_gev, *,
        mass_gev: float, model: str | None = None) -> np.ndarray:
    """Atomic dσ/dq [m²/GeV] at arrays of (K, q) for a projectile of mass
    ``mass_gev``; zero outside the range."""
    ffi, lib = load()
    k, q = np.broadcast_arrays(np.asarray(kinetic_gev, float), np.asarray(q_gev, float))
    k = np.ascontiguousarray(k.ravel())
    q = np.ascontiguousarray(q.ravel())
    out = np.empty_like(k)
    lib.bt_dcs_eval(_function(process, model), float(z), float(a), mass_gev,
                    len(k), ffi.from_buffer("double[]", k),
                    ffi.from_buffer("double[]", q), ffi.from_buffer("double[]", out))
    return np.where(np.isfinite(out) & (out > 0), out, 0.0).reshape(
        np.broadcast(np.asarray(kinetic_gev), np.asarray(q_gev)).shape)


def dcs_range(process: str, z: float, kinetic_gev: float, *,
              mass_gev: float) -> tuple[float, float]:
    """Allowed energy transfers [GeV] for a radiative process (projectile
    of mass ``mass_gev``)."""
    ffi, lib = load()
    lo, hi = ffi.new("double *"), ffi.new("double *")
    check(lib.bt_pumas.pumas_dcs_range(PROCESSES[process], float(z), mass_gev,
                                       float(kinetic_gev), lo, hi))
    return lo[0], hi[0]


def composition(physics, material: str) -> list[tuple[float, float, float]]:
    """[(Z, A [g/mol], mass fraction), ...] of a material."""
    ffi, lib = physics.ffi, physics.lib
    index = physics.material_index(material)
    n = ffi.new("int *")
    check(lib.bt_pumas.pumas_physics_material_properties(
        physics.ptr, index, n, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL))
    comps = ffi.new("int[]", n[0])
    fracs = ffi.new("double[]", n[0])
    check(lib.bt_pumas.pumas_physics_material_properties(
        physics.ptr, index, n, ffi.NULL, ffi.NULL, comps, fracs))
    out = []
    z, a, i_mean = ffi.new("double *"), ffi.new("double *"), ffi.new("double *")
    for j in range(n[0]):
        check(lib.bt_pumas.pumas_physics_element_properties(
            physics.ptr, comps[j], z, a, i_mean))
        out.append((z[0], a[0], fracs[j]))
    return out
