"""Selection and signal/control regions from a TOML file.

Default: ``backtrace/data/regions_na62_mumu.toml`` (estimated NA62 limits,
marked as such); ``--regions FILE`` replaces it. Regions are rectangles in
(Z_TAX, CDA_TAX), tested in order (SR before CR: the CR excludes the SR),
with half-open limits min <= value < max.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Region", "Regions", "RegionsError", "load_regions", "OUTSIDE"]

OUTSIDE = "outside"


class RegionsError(ValueError):
    """Raised when a regions file is missing or malformed."""


@dataclass(frozen=True)
class Region:
    name: str
    z_tax_min_m: float
    z_tax_max_m: float
    cda_tax_min_m: float
    cda_tax_max_m: float

    def contains(self, z_tax, cda_tax):
        z, c = np.asarray(z_tax, float), np.asarray(cda_tax, float)
        return ((z >= self.z_tax_min_m) & (z < self.z_tax_max_m)
                & (c >= self.cda_tax_min_m) & (c < self.cda_tax_max_m))


@dataclass
class Regions:
    name: str
    selection: dict
    regions: list[Region]
    estimated: bool = True
    path: str | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.regions] + [OUTSIDE]

    def classify(self, z_tax, cda_tax) -> np.ndarray:
        """Region name of each point (first match, else 'outside')."""
        z = np.asarray(z_tax, float)
        out = np.full(z.shape, OUTSIDE, dtype=object)
        free = np.ones(z.shape, bool)
        for r in self.regions:
            hit = free & r.contains(z_tax, cda_tax)
            out[hit] = r.name
            free &= ~hit
        return out

    def config(self) -> dict:
        return dict(self.raw, path=self.path)


REQUIRED_SELECTION = ("opposite_charges", "muon_id", "fiducial_z_min_m",
                      "fiducial_z_max_m", "track_p_min_gev", "cda_max_m")


def load_regions(path=None) -> Regions:
    """Read and check a regions file (default: the packaged NA62 one)."""
    if path is None:
        text = (resources.files("backtrace.data") / "regions_na62_mumu.toml").read_text()
        source = "regions_na62_mumu.toml"
    else:
        p = Path(path)
        if not p.is_file():
            raise RegionsError(f"regions file {p}: no such file")
        text, source = p.read_text(), p.name
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RegionsError(f"{source}: not valid TOML ({err})") from None
    if raw.get("version") != 1:
        raise RegionsError(f"{source}: version {raw.get('version')!r} unsupported (expected 1)")
    sel = raw.get("selection", {})
    missing = [k for k in REQUIRED_SELECTION if k not in sel]
    if missing:
        raise RegionsError(f"{source}: [selection] misses {', '.join(missing)}")
    if sel["muon_id"] not in ("both", "one", "none"):
        raise RegionsError(f"{source}: selection.muon_id {sel['muon_id']!r} "
                           "(expected both, one or none)")
    if sel.get("lav_veto", False):
        raise RegionsError(f"{source}: selection.lav_veto = true is not available: the "
                           "LAV and ANTI0 vetoes are not modelled yet (set it to false)")
    regions = []
    for i, r in enumerate(raw.get("region", [])):
        try:
            reg = Region(r["name"], float(r["z_tax_min_m"]), float(r["z_tax_max_m"]),
                         float(r["cda_tax_min_m"]), float(r["cda_tax_max_m"]))
        except KeyError as err:
            raise RegionsError(f"{source}: region {i}: missing key {err}") from None
        if not (reg.z_tax_min_m < reg.z_tax_max_m and reg.cda_tax_min_m < reg.cda_tax_max_m):
            raise RegionsError(f"{source}: region {reg.name!r}: empty rectangle")
        regions.append(reg)
    if not regions:
        raise RegionsError(f"{source}: no [[region]]")
    names = [r.name for r in regions]
    if len(set(names)) != len(names) or OUTSIDE in names:
        raise RegionsError(f"{source}: region names must be unique and not 'outside'")
    return Regions(raw.get("name", source), sel, regions,
                   bool(raw.get("estimated", False)), str(path) if path else None, raw)
