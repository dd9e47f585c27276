"""Reference checks of the PUMAS physics: stopping tables and slab transport.

These back ``backtrace physics table`` and ``backtrace physics slab``, the
commands users (and the tests) use to compare with published numbers: PDG
muon range tables, the ~1.88 GeV mean loss of a 50 GeV muon in 1 m of iron,
and the 0.2998 B L / p deflection of a dipole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtrace.beamline.fields import deflection_angle_rad
from backtrace.pumas import Context, Physics, TransportOptions
from backtrace.pumas.navigator import Navigator, Region, Slab
from backtrace.tracks import momentum_gev

__all__ = ["stopping_table", "slab_transport", "SlabResult", "slab_navigator",
           "expected_deflection_rad"]

#: Transverse half size of the slab world [m]: large enough that nothing
#: leaves sideways.
SLAB_WORLD_HALF_M = 1e4


def stopping_table(physics: Physics, material: str, kinetic_energy_gev):
    """CSDA range and mean total stopping power at each kinetic energy.

    Returns a list of dicts: kinetic_energy_gev, csda_range_m,
    csda_range_g_cm2, stopping_power_gev_per_m,
    stopping_power_mev_cm2_g.
    """
    density = physics.material_density(material)  # kg/m^3
    rows = []
    for k in np.atleast_1d(kinetic_energy_gev).astype(float):
        if not k > 0:
            raise ValueError(f"kinetic energy {k} GeV must be positive")
        grammage = physics.range(material, k)  # kg/m^2
        dedx = physics.stopping_power(material, k)  # GeV/(kg/m^2)
        rows.append({
            "kinetic_energy_gev": float(k),
            "csda_range_m": grammage / density,
            "csda_range_g_cm2": grammage / 10.0,
            "stopping_power_gev_per_m": dedx * density,
            "stopping_power_mev_cm2_g": dedx * 1e4,
        })
    return rows


def slab_navigator(physics: Physics, material: str, thickness_m: float,
                   field_tesla=(0.0, 0.0, 0.0), field_step_m: float = 0.25,
                   field_accuracy: float = 1e-3):
    """A single slab 0 <= z < thickness of ``material`` in a uniform field."""
    if not thickness_m > 0:
        raise ValueError(f"thickness {thickness_m} m must be positive")
    region = Region(material=physics.material_index(material),
                    density=physics.material_density(material),
                    field=tuple(float(b) for b in field_tesla), volume=0)
    return Navigator([Slab(0.0, thickness_m, [region])],
                     half_x=SLAB_WORLD_HALF_M, half_y=SLAB_WORLD_HALF_M,
                     field_step=field_step_m, field_accuracy=field_accuracy,
                     mass_gev=physics.particle()[0])


@dataclass
class SlabResult:
    """Weighted summary of a slab transport (energies in GeV)."""

    energy_in_gev: float
    energy_out_gev: float
    mean_loss_gev: float
    mean_loss_err_gev: float
    direction_out: list[float]
    deflection_rad: float
    transmitted_fraction: float
    n: int
    mode: str
    direction: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _weighted_mean_err(x, w):
    sw = w.sum()
    mean = (w * x).sum() / sw
    err = np.sqrt((w ** 2 * (x - mean) ** 2).sum()) / sw
    return mean, err


def slab_transport(physics: Physics, material: str, thickness_m: float,
                   kinetic_energy_gev: float, n: int, *, mode="straggled",
                   direction="forward", field_tesla=(0.0, 0.0, 0.0),
                   scattering=True, seed=1, charge=1.0,
                   accuracy=1e-2, field_step_m=0.25) -> SlabResult:
    """Transport ``n`` muons along +z through a slab.

    Forward: muons start at z = 0 with the given kinetic energy. Backward:
    the given energy is the final one at the exit face z = thickness; PUMAS
    transports back to z = 0 and the weighted initial energy is reported.
    Energy loss and its error are weighted means over transmitted muons.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if not kinetic_energy_gev > 0:
        raise ValueError("kinetic energy must be positive")
    nav = slab_navigator(physics, material, thickness_m, field_tesla,
                         field_step_m)
    ctx = Context(physics, nav)
    z_start = 0.0 if direction == "forward" else thickness_m * (1 - 1e-12)
    states = {
        "charge": np.full(n, float(charge)),
        "energy": np.full(n, float(kinetic_energy_gev)),
        "weight": np.ones(n),
        "position": np.tile([0.0, 0.0, z_start], (n, 1)),
        "direction": np.tile([0.0, 0.0, 1.0], (n, 1)),
    }
    opts = TransportOptions(energy_loss=mode, scattering=scattering,
                            decay=False, direction=direction,
                            accuracy=accuracy)
    final, status, _ = ctx.transport(states, opts, seed=seed)
    exit_status = 1 if direction == "forward" else 0  # reached z max / z min
    ok = status == exit_status
    w = final["weight"][ok]
    if not ok.any():
        raise RuntimeError("no muon crossed the slab")
    e_end = final["energy"][ok]
    if direction == "forward":
        e_in = float(kinetic_energy_gev)
        e_out, _ = _weighted_mean_err(e_end, w)
        loss, err = _weighted_mean_err(e_in - e_end, w)
    else:
        e_out = float(kinetic_energy_gev)
        e_in, _ = _weighted_mean_err(e_end, w)
        loss, err = _weighted_mean_err(e_end - e_out, w)
    u = (final["direction"][ok] * w[:, None]).sum(axis=0) / w.sum()
    u /= np.linalg.norm(u)
    deflection = float(np.arccos(np.clip(u[2], -1.0, 1.0)))
    return SlabResult(
        energy_in_gev=float(e_in), energy_out_gev=float(e_out),
        mean_loss_gev=float(loss), mean_loss_err_gev=float(err),
        direction_out=[float(c) for c in u], deflection_rad=deflection,
        transmitted_fraction=float(ok.mean()), n=int(n), mode=mode,
        direction=direction)


def expected_deflection_rad(field_tesla: float, length_m: float,
                            kinetic_energy_gev: float) -> float:
    """Small-angle dipole deflection 0.2998 B L / p [rad] of a muon."""
    return float(deflection_angle_rad(field_tesla, length_m,
                                      momentum_gev(kinetic_energy_gev)))
