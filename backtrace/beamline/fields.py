"""Magnetic field models of the beam line.

Three kinds of field appear in geometry files, all static and in tesla:

- **uniform**: a constant vector in a volume, e.g. the field in a dipole's
  aperture or in a magnetised-iron yoke (``field_tesla = [bx, by, bz]``);
- **field-free**: no ``field_tesla`` (or zeros);
- **map**: a regular 3-D grid of B read from a ``.npz`` or ``.csv`` file and
  interpolated trilinearly (zero outside the grid), added to the uniform part.

Every magnet carries a ``scale`` knob multiplying all its fields.

The field acts through the Lorentz force F = q v × B: a positive particle
moving along +z in B along +x bends towards +y. The bending angle of a
particle of momentum p [GeV/c] crossing length L [m] of field B [T] is
θ ≈ 0.2998 B L / p (:func:`deflection_angle_rad`).

The navigator evaluates fields in C (``_shim.c``); :func:`trilinear` is the
Python reference used by tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from backtrace.constants import LARMOR_GEV_PER_T_M
from backtrace.pumas.navigator import FieldMap

__all__ = ["load_field_map", "trilinear", "deflection_angle_rad",
           "larmor_radius_m", "FieldMapError"]


class FieldMapError(ValueError):
    """Raised when a field-map file is missing or malformed."""


def deflection_angle_rad(b_tesla, length_m, p_gev):
    """Small-angle deflection 0.2998 B L / p [rad] (unit charge)."""
    return LARMOR_GEV_PER_T_M * np.asarray(b_tesla) * length_m / np.asarray(p_gev)


def larmor_radius_m(p_gev, b_tesla):
    """Radius of curvature [m] of a unit charge of momentum p in field B."""
    return np.asarray(p_gev) / (LARMOR_GEV_PER_T_M * np.asarray(b_tesla))


def _regular_axis(values: np.ndarray, name: str, path: Path) -> tuple[float, float, int]:
    axis = np.unique(values)
    if len(axis) > 1:
        steps = np.diff(axis)
        if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
            raise FieldMapError(f"{path}: {name} grid is not regular")
        return float(axis[0]), float(steps[0]), len(axis)
    return float(axis[0]), 1.0, 1


def load_field_map(path: str | Path) -> FieldMap:
    """Read a field map.

    ``.npz``: arrays ``x_m``, ``y_m``, ``z_m`` (1-D regular axes) and
    ``b_tesla`` of shape (nz, ny, nx, 3).
    ``.csv``: columns ``x_m, y_m, z_m, bx_t, by_t, bz_t`` covering a regular
    grid (any row order).
    """
    path = Path(path)
    if not path.is_file():
        raise FieldMapError(f"field map {path}: no such file")
    extension = os.path.splitext(str(path))[1]
    if extension == ".npz":
        try:
            data = np.load(path)
            xs, ys, zs = (np.asarray(data[k], float) for k in ("x_m", "y_m", "z_m"))
            b = np.asarray(data["b_tesla"], float)
        except (KeyError, ValueError, OSError) as err:
            raise FieldMapError(f"field map {path}: {err}") from err
        x0, dx, nx = _regular_axis(xs, "x", path)
        y0, dy, ny = _regular_axis(ys, "y", path)
        z0, dz, nz = _regular_axis(zs, "z", path)
        if b.shape != (nz, ny, nx, 3):
            raise FieldMapError(
                f"field map {path}: b_tesla has shape {b.shape}, expected "
                f"{(nz, ny, nx, 3)}")
    elif extension == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(path)
            cols = ["x_m", "y_m", "z_m", "bx_t", "by_t", "bz_t"]
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise FieldMapError(f"field map {path}: missing columns {missing}")
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise FieldMapError(f"field map {path}: {err}") from err
        x0, dx, nx = _regular_axis(df["x_m"].to_numpy(), "x", path)
        y0, dy, ny = _regular_axis(df["y_m"].to_numpy(), "y", path)
        z0, dz, nz = _regular_axis(df["z_m"].to_numpy(), "z", path)
        if len(df) != nx * ny * nz:
            raise FieldMapError(
                f"field map {path}: {len(df)} rows for a {nx}x{ny}x{nz} grid")
        ix = np.rint((df["x_m"].to_numpy() - x0) / dx).astype(int)
        iy = np.rint((df["y_m"].to_numpy() - y0) / dy).astype(int)
        iz = np.rint((df["z_m"].to_numpy() - z0) / dz).astype(int)
        b = np.zeros((nz, ny, nx, 3))
        b[iz, iy, ix] = df[["bx_t", "by_t", "bz_t"]].to_numpy()
    else:
        raise FieldMapError(f"field map {path}: expected a .npz or .csv file")
    if not np.all(np.isfinite(b)):
        raise FieldMapError(f"field map {path}: non-finite field values")
    return FieldMap(origin=(x0, y0, z0), step=(dx, dy, dz), values=b)


def trilinear(field_map: FieldMap, points) -> np.ndarray:
    """Reference trilinear interpolation of a map at points (n, 3) [T];
    zero outside the grid."""
    pts = np.atleast_2d(np.asarray(points, float))
    values = field_map.values
    nz, ny, nx, _ = values.shape
    shape = np.array([nx, ny, nz])
    f = (pts - np.asarray(field_map.origin)) / np.asarray(field_map.step)
    inside = np.all((f >= 0) & (f <= shape - 1), axis=1)
    i = np.clip(np.floor(f).astype(int), 0, np.maximum(shape - 2, 0))
    t = np.where(shape > 1, f - i, 0.0)
    out = np.zeros((len(pts), 3))
    for corner in range(8):
        j = np.array([(corner >> k) & 1 for k in range(3)])
        if np.any(j & (shape < 2)):
            continue
        w = np.prod(np.where(j, t, 1 - t), axis=1)
        idx = i + j
        out += w[:, None] * values[idx[:, 2], idx[:, 1], idx[:, 0]]
    out[~inside] = 0.0
    return out
