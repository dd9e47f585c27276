"""Beam-line geometry: load, validate, override and compile ``geometry/*.toml``.

A geometry file (format described in ``geometry/README.md``) lists the world
(transverse size, z range, filler materials), the proton beam (impact point
and the beam axis used for Z_TAX / CDA_TAX) and the elements along z, each
with a transverse shape, a material, fields, optional apertures (holes with
their own material and field) and optional parts along z (e.g. the copper
then iron of TAX1).

:func:`load_geometry` parses the file, applies ``--set`` overrides, checks it
against the packaged JSON schema (``backtrace/data/geometry-1.schema.json``)
and against physics rules (no overlapping elements, known materials,
positive lengths), and returns a :class:`Geometry`. :func:`backtrace.beamline.compile.compile_geometry`
turns it into z slabs split into transverse regions for the C navigator
(:mod:`backtrace.beamline.compile`).
"""

from __future__ import annotations

import copy
import json
import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from backtrace.beamline import materials as _materials

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Geometry", "Element", "Part", "Aperture", "GeometryError",
    "load_geometry", "default_geometry_path", "parse_override", "ROLES",
]

SCHEMA_VERSION = 1
DEFAULT_GEOMETRY = "na62_k12_2021.toml"
#: Element roles understood by the tools.
ROLES = ("dump", "converter", "dipole", "sweeper", "collimator", "scraper",
         "vacuum", "veto", "detector", "spectrometer", "calorimeter",
         "absorber", "muon_detector")
#: Tolerance on z comparisons [m].
Z_TOLERANCE_M = 1e-6


class GeometryError(ValueError):
    """Raised when a geometry file or override is invalid; the message names
    the file, the element and the key at fault."""


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
@dataclass
class Aperture:
    """A transverse region inside an element, tested before the body: a hole
    (``aperture``) or a named ``layer`` (e.g. the lead-glass ring of a LAV):
    shape, centre [m], half sizes [m], material, uniform field [T] (before
    the magnet's scale), density scale; ``name`` names its volume."""

    shape: str
    center_m: tuple[float, float]
    half_x_m: float
    half_y_m: float
    material: str
    field_tesla: tuple[float, float, float] | None = None
    name: str | None = None
    density_scale: float = 1.0


@dataclass
class Part:
    """A z segment of an element with its own material (and apertures)."""

    z_min_m: float
    z_max_m: float
    material: str
    density_scale: float
    apertures: list[Aperture]


@dataclass
class Element:
    """One beam-line element (see geometry/README.md for every key)."""

    name: str
    role: str
    z_min_m: float
    z_max_m: float
    shape: str
    center_m: tuple[float, float]
    half_x_m: float
    half_y_m: float
    material: str
    field_tesla: tuple[float, float, float] | None
    scale: float
    density_scale: float
    group: str | None
    estimated: bool
    parts: list[Part]
    field_map: dict | None = None
    source: str = ""
    #: response of an active element (``[element.detector]``), None if passive
    detector: dict | None = None
    #: the ``estimated_keys`` of the file (which numbers are our estimates)
    estimated_keys: list | None = None

    @property
    def is_magnet(self) -> bool:
        fields = [self.field_tesla] + [a.field_tesla for p in self.parts
                                       for a in p.apertures]
        return self.field_map is not None or any(
            f is not None and any(c != 0 for c in f) for f in fields)

    def describe(self) -> dict:
        """Summary used by ``backtrace geometry describe --json``."""
        field_vec = self.field_tesla
        aperture_fields = [a.field_tesla for p in self.parts for a in p.apertures
                           if a.field_tesla is not None]
        if aperture_fields and (field_vec is None or not any(field_vec)):
            field_vec = aperture_fields[0]
        scaled = None if field_vec is None or not any(field_vec) else \
            [self.scale * c for c in field_vec]
        materials = []
        for p in self.parts:
            if p.material not in materials:
                materials.append(p.material)
        return {
            "name": self.name,
            "role": self.role,
            "z_min_m": self.z_min_m,
            "z_max_m": self.z_max_m,
            "material": "+".join(materials),
            "field_tesla": scaled,
            "field_region": None if scaled is None else (
                "body" if self.field_tesla is not None and any(self.field_tesla)
                else "aperture"),
            "scale": self.scale,
            "estimated": self.estimated,
            "parts": [{"material": p.material, "z_min_m": p.z_min_m,
                       "z_max_m": p.z_max_m} for p in self.parts],
            "apertures": [
                {"shape": a.shape, "center_m": list(a.center_m),
                 "half_x_m": a.half_x_m, "half_y_m": a.half_y_m,
                 "material": a.material,
                 "field_tesla": None if a.field_tesla is None else
                 [self.scale * c for c in a.field_tesla]}
                for a in self.parts[0].apertures],
        }


@dataclass
class Geometry:
    """A validated geometry file (see :func:`load_geometry`)."""

    name: str
    path: Path | None
    world: dict
    fills: list[dict]
    beam: dict
    elements: list[Element]
    overrides: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)

    def element(self, name: str) -> Element:
        for e in self.elements:
            if e.name == name:
                return e
        raise GeometryError(f"no element {name!r} (known: "
                            f"{', '.join(e.name for e in self.elements)})")

    def by_role(self, role: str) -> list[Element]:
        return [e for e in self.elements if e.role == role]

    @property
    def tax_exit_z_m(self) -> float:
        """Downstream face of the dump (TAX) [m]: where the source density
        lives and the forward simulation keeps each muon's true state."""
        return max(p.z_max_m for e in self.by_role("dump") for p in e.parts)

    @property
    def beam_momentum_gev(self) -> float:
        """Momentum of the protons on the dump [GeV/c] (``beam.proton_momentum_gev``)."""
        return float(self.beam["proton_momentum_gev"])

    @property
    def tracker_planes_z_m(self) -> dict[str, float]:
        """{name: entry face z [m]} of the tracking chambers (``role =
        "detector"`` elements named STRAW*), in z order."""
        planes = sorted((e.z_min_m, e.name) for e in self.elements
                        if e.role == "detector" and e.name.upper().startswith("STRAW"))
        return {name: z for z, name in planes}

    @property
    def first_tracker_z_m(self) -> float:
        """Entry face of the first tracking chamber (STRAW1) [m]: where
        tracks are measured and forced interactions must have happened."""
        planes = self.tracker_planes_z_m
        if not planes:
            raise GeometryError(f"{self.name}: no tracking chamber (a role = "
                                "'detector' element named STRAW*)")
        return next(iter(planes.values()))

    @property
    def decay_volume_z_m(self) -> tuple[float, float]:
        """(entrance, end) of the decay volume [m] (``[decay_volume]``): the
        prompt / upstream-prompt boundary is its entrance."""
        dv = self.raw.get("decay_volume")
        if dv is None:
            raise GeometryError(f"{self.name}: no [decay_volume] table (its z_min_m is "
                                "the prompt / upstream-prompt boundary)")
        return float(dv["z_min_m"]), float(dv["z_max_m"])

    @property
    def target_z_m(self) -> float:
        """Default end plane of backward transport: the dump front face."""
        return float(self.beam["target_z_m"])

    @property
    def beam_axis(self) -> tuple[np.ndarray, np.ndarray]:
        """(point [m], unit direction) of the beam line used for Z_TAX."""
        p = np.asarray(self.beam["axis_point_m"], float)
        d = np.asarray(self.beam["axis_direction"], float)
        return p, d / np.linalg.norm(d)

    def describe(self) -> list[dict]:
        return [e.describe() for e in self.elements]

    def fill_at(self, z: float) -> dict:
        """The fill at ``z`` (name, material, layers); the world's material
        where no fill is defined."""
        for f in self.fills:
            if f["z_min_m"] <= z < f["z_max_m"]:
                return f
        return {"name": "world", "material": self.world["material"], "layer": []}

    def fill_material(self, z: float) -> str:
        return self.fill_at(z)["material"]

    def detectors(self, role: str | None = None) -> list[Element]:
        """Active elements (with ``[element.detector]``), optionally of a role."""
        return [e for e in self.elements if e.detector is not None
                and (role is None or e.detector["role"] == role)]

    def config(self) -> dict:
        """What outputs record about the geometry."""
        return {"name": self.name, "path": str(self.path) if self.path else None,
                "overrides": list(self.overrides)}


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------
def default_geometry_path() -> Path:
    """The shipped NA62 K12 2021 geometry."""
    return Path(str(resources.files("backtrace.resources.geometry")
                    / DEFAULT_GEOMETRY))


def _schema() -> dict:
    text = (resources.files("backtrace.data") /
            f"geometry-{SCHEMA_VERSION}.schema.json").read_text()
    return json.loads(text)


def parse_override(text: str) -> tuple[str, list[str], Any]:
    """``ELEMENT.KEY=VALUE`` → (element, key path, value). VALUE is read as a
    TOML value (numbers, booleans, arrays), else kept as a string."""
    if "=" not in text:
        raise GeometryError(f"--set {text!r}: expected ELEMENT.KEY=VALUE")
    target, value_text = text.split("=", 1)
    parts = target.strip().split(".")
    if len(parts) < 2 or not all(parts):
        raise GeometryError(f"--set {text!r}: expected ELEMENT.KEY=VALUE")
    try:
        value = tomllib.loads(f"v = {value_text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()
    return parts[0], parts[1:], value


def _set_path(node, keys: list[str], value, where: str) -> None:
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            try:
                node = node[int(key)]
            except (ValueError, IndexError):
                raise GeometryError(f"{where}: no item {key!r}") from None
        else:
            if key not in node:
                raise GeometryError(f"{where}: no key {'.'.join(keys[:i + 1])!r}")
            node = node[key]
    last = keys[-1]
    if isinstance(node, list):
        try:
            node[int(last)] = value
        except (ValueError, IndexError):
            raise GeometryError(f"{where}: no item {last!r}") from None
    else:
        node[last] = value


def apply_overrides(raw: dict, overrides) -> dict:
    """A copy of the raw TOML dict with ``--set`` overrides applied."""
    raw = copy.deepcopy(raw)
    for text in overrides or ():
        target, keys, value = parse_override(text)
        where = f"--set {text}"
        if target in ("world", "beam"):
            raw.setdefault(target, {})
            _set_path(raw[target], keys, value, where)
            continue
        target, keys = _element_target(raw, target, keys)
        matches = [e for e in raw.get("element", []) if e.get("name") == target]
        if not matches:
            known = ", ".join(str(e.get("name")) for e in raw.get("element", []))
            raise GeometryError(f"{where}: no element {target!r} (known: "
                                f"world, beam, {known})")
        element = matches[0]
        if keys in (["material"], ["density_scale"]) and "part" in element:
            for part in element["part"]:
                part[keys[0]] = value
        _set_path(element, keys, value, where)
    return raw


def _element_target(raw: dict, target: str, keys: list[str]) -> tuple[str, list[str]]:
    """Element names may contain dots (``SCR.1``): the element is the
    longest dotted prefix of ``TARGET.KEYS`` naming one, the rest the key."""
    names = {str(e.get("name")) for e in raw.get("element", [])}
    full = [target, *keys]
    for k in range(len(full) - 1, 0, -1):
        if ".".join(full[:k]) in names:
            return ".".join(full[:k]), full[k:]
    return target, keys


def _schema_error_path(err) -> str:
    path = []
    for key in err.absolute_path:
        path.append(str(key))
    return ".".join(path) or "(top level)"


def _validate_schema(raw: dict, source: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    location = _schema_error_path(err)
    path = list(err.absolute_path)
    if len(path) >= 2 and path[0] == "element" and isinstance(path[1], int):
        name = raw["element"][path[1]].get("name", f"#{path[1]}")
        location = ".".join([f"element {name!r}"] + [str(p) for p in path[2:]])
    raise GeometryError(f"{source}: {location}: {err.message}")


def _vec(value, default=None):
    if value is None:
        return default
    return tuple(float(v) for v in value)


def _shape_sizes(node: dict, where: str) -> tuple[str, float, float]:
    shape = node.get("shape", "box")
    if shape == "circle":
        if "radius_m" not in node:
            raise GeometryError(f"{where}: shape 'circle' needs radius_m")
        r = float(node["radius_m"])
        return "ellipse", r, r
    if shape == "full":
        return "full", math.inf, math.inf
    for key in ("half_x_m", "half_y_m"):
        if key not in node:
            raise GeometryError(f"{where}: shape {shape!r} needs {key}")
    return shape, float(node["half_x_m"]), float(node["half_y_m"])


def _aperture(node: dict, where: str) -> Aperture:
    shape, hx, hy = _shape_sizes(node, where)
    if shape == "full":
        raise GeometryError(f"{where}: an aperture cannot be 'full'")
    if hx <= 0 or hy <= 0:
        raise GeometryError(f"{where}: aperture sizes must be positive")
    density_scale = float(node.get("density_scale", 1.0))
    if not density_scale > 0:
        raise GeometryError(f"{where}: density_scale must be > 0")
    return Aperture(shape=shape, center_m=_vec(node.get("center_m"), (0.0, 0.0)),
                    half_x_m=hx, half_y_m=hy,
                    material=node.get("material", "vacuum"),
                    field_tesla=_vec(node.get("field_tesla")),
                    name=node.get("name"), density_scale=density_scale)


def _regions_of(node: dict, where: str) -> list[Aperture]:
    """The element's (or part's) apertures then its named layers."""
    out = [_aperture(a, f"{where}: aperture {i}")
           for i, a in enumerate(node.get("aperture", []))]
    out += [_aperture(a, f"{where}: layer {a.get('name', i)!r}")
            for i, a in enumerate(node.get("layer", []))]
    names = [a.name for a in out if a.name]
    if len(set(names)) != len(names):
        raise GeometryError(f"{where}: layer names must be unique")
    return out


#: Detector roles of ``[element.detector]`` and their required keys.
DETECTOR_ROLES = {
    "tracker": ("active_radius_m", "hole_center_m", "hole_radius_m"),
    "veto": ("active_layer", "inefficiency"),
    # the energy resolution (resolution_stochastic, _noise_gev, _constant)
    # is needed only of the calorimeter that measures E/p (the LKr)
    "calorimeter": ("active_layer",),
    "muon": ("active_layer", "efficiency"),
    "hodoscope": ("active_layer",),
}


def _detector(node: dict | None, regions: list[Aperture], material: str, where: str):
    """``[element.detector]`` checked: known role, its keys, an existing
    active layer, probabilities in [0, 1]."""
    if node is None:
        return None
    role = node.get("role")
    if role not in DETECTOR_ROLES:
        raise GeometryError(f"{where}: detector.role {role!r} unknown (known: "
                            f"{', '.join(DETECTOR_ROLES)})")
    missing = [k for k in DETECTOR_ROLES[role] if k not in node]
    if missing:
        raise GeometryError(f"{where}: detector of role {role!r} needs "
                            f"{', '.join(missing)}")
    layer = node.get("active_layer")
    if layer is not None and layer != "body" and layer not in {a.name for a in regions}:
        raise GeometryError(f"{where}: detector.active_layer {layer!r} is not a layer "
                            "of the element (or 'body')")
    for key in ("inefficiency", "efficiency"):
        if key in node and not 0 <= float(node[key]) <= 1:
            raise GeometryError(f"{where}: detector.{key} must be in [0, 1]")
    return dict(node)


def _element(node: dict, source: str) -> Element:
    name = node["name"]
    where = f"{source}: element {name!r}"
    z0 = float(node["z_min_m"])
    if "z_max_m" in node:
        z1 = float(node["z_max_m"])
    elif "length_m" in node:
        z1 = z0 + float(node["length_m"])
    else:
        raise GeometryError(f"{where}: needs z_max_m or length_m")
    if not z1 > z0:
        raise GeometryError(f"{where}: negative or zero length "
                            f"(z_min_m = {z0}, z_max_m = {z1})")
    shape, hx, hy = _shape_sizes(node, where)
    if hx <= 0 or hy <= 0:
        raise GeometryError(f"{where}: sizes must be positive")
    apertures = _regions_of(node, where)
    material = node.get("material")
    density_scale = float(node.get("density_scale", 1.0))
    parts = []
    if "part" in node:
        z = z0
        for i, p in enumerate(node["part"]):
            length = float(p["length_m"])
            if not length > 0:
                raise GeometryError(f"{where}: part {i}: negative or zero length")
            part_apertures = _regions_of(p, f"{where}: part {i}") \
                if ("aperture" in p or "layer" in p) else apertures
            parts.append(Part(z, z + length, p.get("material", material),
                              float(p.get("density_scale", density_scale)),
                              part_apertures))
            z += length
        if abs(z - z1) > 1e-3:
            raise GeometryError(
                f"{where}: parts add up to {z - z0:.4f} m but the element is "
                f"{z1 - z0:.4f} m long")
        parts[-1].z_max_m = z1
    else:
        if material is None:
            raise GeometryError(f"{where}: missing key 'material'")
        parts.append(Part(z0, z1, material, density_scale, apertures))
    for p in parts:
        if p.material is None:
            raise GeometryError(f"{where}: a part has no material")
    role = node.get("role", "absorber")
    return Element(
        name=name, role=role, z_min_m=z0, z_max_m=z1, shape=shape,
        center_m=_vec(node.get("center_m"), (0.0, 0.0)),
        half_x_m=hx, half_y_m=hy, material=parts[0].material,
        field_tesla=_vec(node.get("field_tesla")),
        scale=float(node.get("scale", 1.0)), density_scale=density_scale,
        group=node.get("group"), estimated=bool(node.get("estimated", False)),
        parts=parts, field_map=node.get("field_map"),
        source=node.get("source", ""), estimated_keys=node.get("estimated_keys"),
        detector=_detector(node.get("detector"), apertures, parts[0].material, where))


def _check_physics_rules(geometry: Geometry, known_materials, source: str):
    world = geometry.world
    if not world["z_max_m"] > world["z_min_m"]:
        raise GeometryError(f"{source}: world: z_max_m must exceed z_min_m")
    names = set()
    for e in geometry.elements:
        where = f"{source}: element {e.name!r}"
        if e.name in names:
            raise GeometryError(f"{where}: duplicate name")
        names.add(e.name)
        if e.role not in ROLES:
            raise GeometryError(f"{where}: role {e.role!r} unknown "
                                f"(known: {', '.join(ROLES)})")
        used = [p.material for p in e.parts] + [a.material for p in e.parts
                                                for a in p.apertures]
        for m in used:
            if m not in known_materials:
                raise GeometryError(
                    f"{where}: material {m!r} unknown (known: "
                    f"{', '.join(sorted(known_materials))})")
        if e.scale < 0:
            raise GeometryError(f"{where}: scale must be >= 0")
        for p in e.parts:
            if not p.density_scale > 0:
                raise GeometryError(f"{where}: density_scale must be > 0")
        if e.z_min_m < world["z_min_m"] - Z_TOLERANCE_M or \
                e.z_max_m > world["z_max_m"] + Z_TOLERANCE_M:
            raise GeometryError(f"{where}: outside the world z range")
        if e.shape != "full" and (abs(e.center_m[0]) + e.half_x_m > world["half_x_m"] + 1e-9
                                  or abs(e.center_m[1]) + e.half_y_m > world["half_y_m"] + 1e-9):
            raise GeometryError(f"{where}: wider than the world")
    ordered = sorted(geometry.elements, key=lambda e: e.z_min_m)
    for a, b in zip(ordered, ordered[1:]):
        if b.z_min_m < a.z_max_m - Z_TOLERANCE_M:
            raise GeometryError(
                f"{source}: overlapping volumes: element {a.name!r} "
                f"[{a.z_min_m}, {a.z_max_m}] m and element {b.name!r} "
                f"[{b.z_min_m}, {b.z_max_m}] m")
    for f in geometry.fills:
        for m in [f["material"]] + [a.material for a in f["layer"]]:
            if m not in known_materials:
                raise GeometryError(f"{source}: fill {f.get('name', '')!r}: material "
                                    f"{m!r} unknown")
    if world["material"] not in known_materials:
        raise GeometryError(f"{source}: world: material {world['material']!r} unknown")


def load_geometry(path: str | Path | None = None, overrides=(), *,
                  mdf=None) -> Geometry:
    """Read, override and validate a geometry file (default: the shipped
    NA62 K12 2021 file). Raises :class:`GeometryError` naming what is wrong."""
    path = Path(path) if path is not None else default_geometry_path()
    source = path.name
    if not path.is_file():
        raise GeometryError(f"geometry file {path}: no such file")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise GeometryError(f"{source}: not valid TOML ({err})") from None
    raw = apply_overrides(raw, overrides)
    _validate_schema(raw, source)
    if raw["version"] != SCHEMA_VERSION:
        raise GeometryError(f"{source}: version {raw['version']} unsupported "
                            f"(this backtrace reads version {SCHEMA_VERSION})")
    elements = [_element(e, source) for e in raw["element"]]
    for e in elements:
        if e.field_map is not None:
            fm = Path(e.field_map["file"])
            if not fm.is_absolute():
                e.field_map = dict(e.field_map, file=str(path.parent / fm))
    world = dict(raw["world"])
    world.setdefault("record_step_m", 0.25)
    world.setdefault("field_step_m", 0.25)
    world.setdefault("field_accuracy", 1e-3)
    fills = [dict(f, layer=_regions_of(f, f"{source}: fill {f.get('name', i)!r}"))
             for i, f in enumerate(raw.get("fill", []))]
    geometry = Geometry(name=raw.get("name", path.stem), path=path.resolve(),
                        world=world, fills=fills,
                        beam=dict(raw["beam"]), elements=elements,
                        overrides=list(overrides or ()), raw=raw)
    known = set(_materials.read_mdf(mdf))
    _check_physics_rules(geometry, known, source)
    return geometry
