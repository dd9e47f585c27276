"""A geometry compiled for the C navigator: z slabs split into transverse
regions (element apertures and layers, bodies, fill layers, fill material),
the volume table that grammage is booked to, and the field maps.

:func:`compile_geometry` does it (:meth:`backtrace.beamline.line.BeamLine.compiled` caches it per z range);
:func:`locate_reference` is a small pure-Python locator kept to check the C
one (:class:`backtrace.pumas.navigator.Navigator`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backtrace.beamline.fields import load_field_map
from backtrace.beamline.geometry import Z_TOLERANCE_M, Element, Geometry, Part
from backtrace.pumas.navigator import Navigator, Region, Slab

__all__ = ["CompiledGeometry", "Volume", "compile_geometry", "locate_reference"]


@dataclass
class Volume:
    """A named piece of the compiled geometry (what grammage is booked to)."""

    name: str
    element: str | None
    role: str
    material: str
    z_min_m: float
    z_max_m: float


@dataclass
class CompiledGeometry:
    """A geometry in navigator form, with its volume table."""

    geometry: Geometry
    navigator: Any
    volumes: list[Volume]
    slabs: list  # list[navigator.Slab], for the Python reference locator
    region_volume: np.ndarray  # region index -> volume index
    material_names: dict[int, str]

    def volume_names(self) -> list[str]:
        return [v.name for v in self.volumes]


def _cuts(geometry: Geometry, z_range, reference_planes_m) -> list[float]:
    """z boundaries of the slabs: element parts, fills, reference planes and
    the transport's z range, merged within Z_TOLERANCE_M."""
    world = geometry.world
    z_lo, z_hi = world["z_min_m"], world["z_max_m"]
    cuts = {z_lo, z_hi}
    for e in geometry.elements:
        for p in e.parts:
            cuts.update((p.z_min_m, p.z_max_m))
    for f in geometry.fills:
        cuts.update((max(z_lo, f["z_min_m"]), min(z_hi, f["z_max_m"])))
    for z in tuple(reference_planes_m) + tuple(z_range or ()):
        if z_lo < z < z_hi:
            cuts.add(float(z))
    cuts = sorted(c for c in cuts if z_lo <= c <= z_hi)
    merged = [cuts[0]]
    for c in cuts[1:]:
        if c - merged[-1] > Z_TOLERANCE_M:
            merged.append(c)
    return merged


class _Compiler:
    """Builds the regions of each slab, the volume table and the field maps."""

    #: Intermediate states are recorded only in matter denser than this [kg/m³].
    DENSE_KG_M3 = 100.0

    def __init__(self, geometry: Geometry, physics):
        self.geometry, self.physics = geometry, physics
        self.volumes: list[Volume] = []
        self.volume_index: dict[tuple, int] = {}
        self.maps: list = []
        self.map_index: dict[str, int] = {}
        self.record_step = float(geometry.world["record_step_m"])

    def volume(self, key, name, element, role, material, z0, z1) -> int:
        if key not in self.volume_index:
            self.volume_index[key] = len(self.volumes)
            self.volumes.append(Volume(name, element, role, material, z0, z1))
        v = self.volumes[self.volume_index[key]]
        v.z_min_m, v.z_max_m = min(v.z_min_m, z0), max(v.z_max_m, z1)
        return self.volume_index[key]

    def field_map_for(self, e: Element):
        if e.field_map is None:
            return -1, 1.0
        file = e.field_map["file"]
        if file not in self.map_index:
            self.map_index[file] = len(self.maps)
            self.maps.append(load_field_map(file))
        return self.map_index[file], e.scale * float(e.field_map.get("scale", 1.0))

    def region(self, material, scale, shape, cx, cy, a, b, field_vec, vol,
               map_=(-1, 1.0), field_scale=1.0, record=True):
        rho = self.physics.material_density(material) * scale
        fvec = (0.0, 0.0, 0.0) if field_vec is None else \
            tuple(field_scale * c for c in field_vec)
        return Region(material=self.physics.material_index(material), density=rho,
                      shape=shape, cx=cx, cy=cy, a=a, b=b, field=fvec,
                      map=map_[0], map_scale=map_[1],
                      record_step=self.record_step
                      if record and rho > self.DENSE_KG_M3 else 0.0,
                      volume=vol)

    def element_regions(self, e: Element, ip: int, p: Part, z0, z1) -> list:
        """Apertures then body of part ``ip`` of element ``e`` in [z0, z1]."""
        which = e.field_map.get("region", "aperture") if e.field_map else None
        tail = f"/{p.material}" if len(e.parts) > 1 else ""
        regions = []
        for ia, a in enumerate(p.apertures):
            label = f"{e.name}{tail}/{a.name}" if a.name else \
                f"{e.name}{tail}/aperture" + (f"{ia}" if len(p.apertures) > 1 else "")
            vol = self.volume((e.name, ip, ia), label, e.name, e.role, a.material, z0, z1)
            regions.append(self.region(
                a.material, a.density_scale, a.shape, a.center_m[0], a.center_m[1],
                a.half_x_m, a.half_y_m, a.field_tesla, vol,
                self.field_map_for(e) if which == "aperture" else (-1, 1.0), e.scale))
        vol = self.volume((e.name, ip, "body"), f"{e.name}{tail}", e.name,
                          e.role, p.material, z0, z1)
        full = e.shape == "full"
        regions.append(self.region(
            p.material, p.density_scale, "all" if full else e.shape, e.center_m[0],
            e.center_m[1], 0.0 if full else e.half_x_m,
            0.0 if full else e.half_y_m, e.field_tesla, vol,
            self.field_map_for(e) if which == "body" else (-1, 1.0), e.scale))
        return regions

    def slab(self, z0: float, z1: float):
        """The slab [z0, z1]: the element part there (last one listed wins),
        then the fill material unless the element fills the whole plane."""
        mid = 0.5 * (z0 + z1)
        hit = None
        for e in self.geometry.elements:
            for ip, p in enumerate(e.parts):
                if p.z_min_m <= mid < p.z_max_m:
                    hit = (e, ip, p)
        regions = [] if hit is None else self.element_regions(*hit, z0, z1)
        if hit is None or hit[0].shape != "full":
            regions += self.fill_regions(self.geometry.fill_at(mid), z0, z1)
        return Slab(z0, z1, regions)

    def fill_regions(self, fill: dict, z0: float, z1: float) -> list:
        """The fill's layers (e.g. the vacuum tank and its wall), then its
        material over the rest of the plane. Layers record no intermediate
        states (thin walls: boundaries suffice, and records stay bounded)."""
        out = []
        for i, a in enumerate(fill["layer"]):
            vol = self.volume(("fill", fill.get("name"), i), f"fill:{fill.get('name')}/{a.name}",
                              None, "fill", a.material, z0, z1)
            out.append(self.region(a.material, a.density_scale, a.shape, a.center_m[0],
                                   a.center_m[1], a.half_x_m, a.half_y_m, None, vol,
                                   record=False))
        material = fill["material"]
        vol = self.volume(("fill", material), f"fill:{material}", None, "fill",
                          material, z0, z1)
        out.append(self.region(material, 1.0, "all", 0, 0, 0, 0, None, vol))
        return out


def compile_geometry(geometry: Geometry, physics, *, z_range=None,
                     reference_planes_m=()) -> CompiledGeometry:
    """The slabs, regions, volume table and field maps of a geometry."""
    world = geometry.world
    cuts = _cuts(geometry, z_range, reference_planes_m)
    build = _Compiler(geometry, physics)
    slabs = [build.slab(z0, z1) for z0, z1 in zip(cuts, cuts[1:])]
    nav = Navigator(slabs, half_x=float(world["half_x_m"]),
                    half_y=float(world["half_y_m"]), maps=build.maps,
                    field_step=float(world["field_step_m"]),
                    field_accuracy=float(world["field_accuracy"]),
                    mass_gev=physics.particle()[0], z_range=z_range)
    region_volume = np.array([r.volume for s in slabs for r in s.regions])
    names = {i: n for n, i in physics.materials.items()}
    return CompiledGeometry(geometry, nav, build.volumes, slabs, region_volume, names)


def locate_reference(compiled: CompiledGeometry, xyz) -> np.ndarray:
    """Pure-Python locator (region index, -1 outside), for agreement tests."""
    nav = compiled.navigator
    z_min, z_max = nav.z_range
    hx = compiled.geometry.world["half_x_m"]
    hy = compiled.geometry.world["half_y_m"]
    out = []
    starts = [s.z0 for s in compiled.slabs]
    offsets = np.cumsum([0] + [len(s.regions) for s in compiled.slabs])
    import bisect

    for x, y, z in np.atleast_2d(xyz):
        idx = -1
        if z_min <= z < z_max and abs(x) < hx and abs(y) < hy:
            k = bisect.bisect_right(starts, z) - 1
            if 0 <= k < len(compiled.slabs) and z < compiled.slabs[k].z1:
                for j, r in enumerate(compiled.slabs[k].regions):
                    dx, dy = x - r.cx, y - r.cy
                    if r.shape == "all":
                        inside = True
                    elif r.shape == "box":
                        inside = abs(dx) < r.a and abs(dy) < r.b
                    else:
                        inside = (dx / r.a) ** 2 + (dy / r.b) ** 2 < 1.0
                    if inside:
                        idx = int(offsets[k] + j)
                        break
        out.append(idx)
    return np.array(out, dtype=np.int32)
