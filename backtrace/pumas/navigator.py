"""C-side geometry for PUMAS: z slabs split into transverse regions.

:class:`Navigator` packs a plain description (slabs → regions, field maps)
into the C structures of ``_shim.h`` and exposes the C locator, distance and
field functions vectorised over numpy arrays. ``backtrace.beamline.geometry`` builds
that description from geometry files; tests and the ``physics slab`` command
build small ones directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backtrace.pumas._lib import load

__all__ = ["Region", "Slab", "FieldMap", "Navigator", "SHAPES"]

#: Transverse shapes understood by the C navigator.
SHAPES = {"all": 0, "box": 1, "ellipse": 2}


@dataclass
class Region:
    """A transverse region of a slab (first match wins within a slab).

    shape: 'all', 'box' (|x-cx| < a, |y-cy| < b) or 'ellipse'; lengths in m.
    material: PUMAS material index; density in kg/m^3; field in T.
    """

    material: int
    density: float
    shape: str = "all"
    cx: float = 0.0
    cy: float = 0.0
    a: float = 0.0
    b: float = 0.0
    field: tuple[float, float, float] = (0.0, 0.0, 0.0)
    map: int = -1
    map_scale: float = 1.0
    record_step: float = 0.0
    volume: int = -1


@dataclass
class Slab:
    """The part of the world with z0 <= z < z1 [m]."""

    z0: float
    z1: float
    regions: list[Region] = field(default_factory=list)


@dataclass
class FieldMap:
    """Regular grid of B [T], shape (nz, ny, nx, 3); origin and steps in m."""

    origin: tuple[float, float, float]
    step: tuple[float, float, float]
    values: np.ndarray


class Navigator:
    """A geometry in C memory, usable by PUMAS contexts."""

    def __init__(self, slabs: list[Slab], half_x: float, half_y: float, *,
                 mass_gev: float, maps: list[FieldMap] = (), field_step: float = 0.25,
                 z_range: tuple[float, float] | None = None,
                 field_accuracy: float = 1e-3):
        self.ffi, self.lib = ffi, lib = load()
        if not slabs:
            raise ValueError("a geometry needs at least one slab")
        regions = [r for s in slabs for r in s.regions]
        self._slabs = ffi.new("struct bt_slab[]", len(slabs))
        self._regions = ffi.new("struct bt_region[]", len(regions))
        self.region_info = []
        k = 0
        for i, slab in enumerate(slabs):
            c = self._slabs[i]
            c.z0, c.z1, c.first, c.count = slab.z0, slab.z1, k, len(slab.regions)
            for r in slab.regions:
                cr = self._regions[k]
                cr.medium.material = r.material
                cr.shape = SHAPES[r.shape]
                cr.cx, cr.cy, cr.a, cr.b = r.cx, r.cy, r.a, r.b
                cr.density = r.density
                cr.field = list(r.field)
                cr.map = r.map
                cr.map_scale = r.map_scale
                cr.record_step = r.record_step
                cr.volume = r.volume
                cr.slab = i
                self.region_info.append((i, r))
                k += 1
        self._maps_keep = []
        self._maps = ffi.new("struct bt_field_map[]", max(len(maps), 1))
        for i, m in enumerate(maps):
            values = np.ascontiguousarray(m.values, dtype=float)
            nz, ny, nx, three = values.shape
            if three != 3:
                raise ValueError("field map values must have shape (nz, ny, nx, 3)")
            buf = ffi.from_buffer("double[]", values)
            self._maps_keep.append((values, buf))
            cm = self._maps[i]
            cm.nx, cm.ny, cm.nz = nx, ny, nz
            cm.x0, cm.y0, cm.z0 = m.origin
            cm.dx, cm.dy, cm.dz = m.step
            cm.b = buf
        self._geometry = ffi.new("struct bt_geometry *")
        g = self._geometry
        g.n_slabs = len(slabs)
        g.slabs = self._slabs
        g.regions = self._regions
        g.n_maps = len(maps)
        g.maps = self._maps
        g.half_x, g.half_y = half_x, half_y
        z0, z1 = (slabs[0].z0, slabs[-1].z1) if z_range is None else z_range
        g.z_min, g.z_max = z0, z1
        g.field_step = field_step
        g.field_accuracy = field_accuracy
        g.mass = mass_gev
        lib.bt_geometry_init(g)
        self.n_regions = len(regions)

    @property
    def ptr(self):
        """``struct bt_geometry *``."""
        return self._geometry

    @property
    def z_range(self) -> tuple[float, float]:
        return self._geometry.z_min, self._geometry.z_max

    def set_z_range(self, z_min: float, z_max: float) -> None:
        """Restrict the world to z_min <= z < z_max [m] (transport stops at
        these planes)."""
        if not z_min < z_max:
            raise ValueError(f"empty z range [{z_min}, {z_max})")
        self._geometry.z_min, self._geometry.z_max = z_min, z_max

    def _points(self, xyz):
        xyz = np.ascontiguousarray(np.atleast_2d(xyz), dtype=float)
        if xyz.shape[-1] != 3:
            raise ValueError("points must have shape (n, 3)")
        return xyz

    def locate(self, xyz) -> np.ndarray:
        """Region index of each point, -1 outside the world."""
        xyz = self._points(xyz)
        out = np.empty(len(xyz), dtype=np.int32)
        self.lib.bt_locate(self._geometry, len(xyz),
                           self.ffi.from_buffer("double[]", xyz),
                           self.ffi.from_buffer("int[]", out))
        return out

    def distance(self, xyz, direction) -> np.ndarray:
        """Straight distance [m] to the next boundary along ``direction``."""
        xyz = self._points(xyz)
        u = self._points(direction)
        out = np.empty(len(xyz))
        self.lib.bt_distance(self._geometry, len(xyz),
                             self.ffi.from_buffer("double[]", xyz),
                             self.ffi.from_buffer("double[]", u),
                             self.ffi.from_buffer("double[]", out))
        return out

    def field(self, xyz) -> np.ndarray:
        """Magnetic field [T] at each point, shape (n, 3)."""
        xyz = self._points(xyz)
        out = np.empty_like(xyz)
        self.lib.bt_field(self._geometry, len(xyz),
                          self.ffi.from_buffer("double[]", xyz),
                          self.ffi.from_buffer("double[]", out))
        return out

    def region_arrays(self) -> dict[str, np.ndarray]:
        """Per-region attributes as arrays (volume, material, density)."""
        return {
            "volume": np.array([r.volume for _, r in self.region_info]),
            "material": np.array([r.material for _, r in self.region_info]),
            "density": np.array([r.density for _, r in self.region_info]),
            "slab": np.array([s for s, _ in self.region_info]),
        }
