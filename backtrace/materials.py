"""Materials shipped in ``materials/`` (PUMAS MDF XML) and their names.

The default Material Description File is ``materials/backtrace.xml``; another
file can be given with ``BACKTRACE_MDF`` or the ``mdf`` argument of
:class:`backtrace.pumas.Physics`. Geometry files refer to materials by the
names of this file.
"""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

__all__ = ["default_mdf_path", "mdf_path", "read_mdf", "Material", "MaterialError"]

ENV_MDF = "BACKTRACE_MDF"
DEFAULT_MDF = "backtrace.xml"


class MaterialError(ValueError):
    """Raised when a Material Description File is missing or malformed."""


@dataclass(frozen=True)
class Material:
    """One material of an MDF: name, density [kg/m^3], mass fractions."""

    name: str
    density_kg_m3: float
    composition: tuple[tuple[str, float], ...]


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
        materials[name] = Material(name, density, comp)
    if not materials:
        raise MaterialError(f"material file {path}: no <material> found")
    return materials


def read_mdf(path: str | os.PathLike | None = None) -> dict[str, Material]:
    """Materials of an MDF by name."""
    p = mdf_path(path)
    return _read(str(p), mdf_digest(p))
