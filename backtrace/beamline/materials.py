"""Materials shipped in ``materials/``: the PUMAS MDF, its physics tables and
the constants used outside PUMAS.

The default Material Description File is ``materials/backtrace.xml``; another
file can be given with ``BACKTRACE_MDF`` or the ``mdf`` argument of
:func:`load_physics`. Geometry files refer to materials by the names of this
file. ``materials/properties.toml`` holds, per material, the nuclear
interaction length, radiation length and mass number used by the hadron
absorption, the dump source and the backward method (:func:`properties`),
each with its source.
"""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from backtrace.pumas import Physics

__all__ = ["default_mdf_path", "mdf_path", "read_mdf", "Material", "MaterialError",
           "load_physics", "properties", "MaterialProperties"]

ENV_MDF = "BACKTRACE_MDF"
DEFAULT_MDF = "backtrace.xml"


class MaterialError(ValueError):
    """Raised when a Material Description File is missing or malformed."""


@dataclass(frozen=True)
class Material:
    """One material of an MDF: name, density [g/cm^3 as written, and
    kg/m^3], mass fractions."""

    name: str
    density_kg_m3: float
    composition: tuple[tuple[str, float], ...]
    density_g_cm3: float = float("nan")


@dataclass(frozen=True)
class MaterialProperties:
    """Constants of one material outside PUMAS (``materials/properties.toml``).

    ``lambda_i_estimated``: λ_I comes from the PDG rule of thumb
    35 A^(1/3) g/cm² rather than a tabulated value."""

    name: str
    nuclear_interaction_length_g_cm2: float
    radiation_length_g_cm2: float
    mass_number: float
    lambda_i_estimated: bool
    source: str

    @property
    def radiation_length_kg_m2(self) -> float:
        return 10.0 * self.radiation_length_g_cm2


def default_mdf_path() -> Path:
    """The MDF shipped with backtrace (``materials/backtrace.xml``)."""
    path = resources.files("backtrace.resources.materials") / DEFAULT_MDF
    return Path(str(path))


def mdf_path(path: str | os.PathLike | None = None) -> Path:
    """The MDF to use: ``path``, else ``BACKTRACE_MDF``, else the default."""
    if path is None:
        path = os.environ.get(ENV_MDF) or default_mdf_path()
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise MaterialError(f"material file {path}: no such file")
    return path


def mdf_digest(path: Path) -> str:
    """SHA-256 of an MDF's bytes (part of the physics cache key)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=8)
def _read(path: str, digest: str) -> dict[str, Material]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise MaterialError(f"material file {path}: {err}") from err
    materials = {}
    for node in root.iter("material"):
        name = node.get("name")
        try:
            density = float(node.get("density")) * 1e3  # g/cm3 -> kg/m3
        except (TypeError, ValueError) as err:
            raise MaterialError(
                f"material file {path}: material {name!r} has no valid "
                "density") from err
        comp = tuple((c.get("name"), float(c.get("fraction")))
                     for c in node.iter("component"))
        materials[name] = Material(name, density, comp, float(node.get("density")))
    if not materials:
        raise MaterialError(f"material file {path}: no <material> found")
    return materials


def read_mdf(path: str | os.PathLike | None = None) -> dict[str, Material]:
    """Materials of an MDF by name."""
    p = mdf_path(path)
    return _read(str(p), mdf_digest(p))


PROPERTIES_FILE = "properties.toml"
#: PDG rule of thumb for the nuclear interaction length, λ_I ≈ 35 A^(1/3)
#: g/cm² (PDG Review, "Passage of particles through matter").
LAMBDA_I_RULE_G_CM2 = 35.0


@lru_cache(maxsize=1)
def _properties_table() -> dict:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    path = resources.files("backtrace.resources.materials") / PROPERTIES_FILE
    raw = tomllib.loads(path.read_text())
    if raw.get("version") != 1:
        raise MaterialError(f"{PROPERTIES_FILE}: version {raw.get('version')!r} "
                            "unsupported (expected 1)")
    return {k: v for k, v in raw.items() if isinstance(v, dict)}


def properties(name: str) -> MaterialProperties:
    """λ_I, X0 and A of a material (``materials/properties.toml``)."""
    table = _properties_table()
    if name not in table:
        raise MaterialError(f"{PROPERTIES_FILE}: no material {name!r} (known: "
                            f"{', '.join(sorted(table))}); add its nuclear interaction "
                            "length, radiation length and mass number there")
    row = table[name]
    a = float(row["mass_number"])
    lam = row.get("nuclear_interaction_length_g_cm2")
    return MaterialProperties(
        name=name,
        nuclear_interaction_length_g_cm2=float(lam) if lam is not None
        else LAMBDA_I_RULE_G_CM2 * a ** (1 / 3),
        radiation_length_g_cm2=float(row["radiation_length_g_cm2"]),
        mass_number=a, lambda_i_estimated=lam is None, source=row.get("source", ""))


def load_physics(mdf=None, settings=None, cache: bool = True):
    """PUMAS physics tables for an MDF (default: ``BACKTRACE_MDF`` or the
    shipped file), cached on disk (:class:`backtrace.pumas.Physics`)."""
    return Physics(mdf_path(mdf), settings=settings, cache=cache)
