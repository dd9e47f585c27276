"""Selection and signal/control regions from a TOML file.

Default: ``backtrace/data/regions_na62_mumu.toml`` (estimated NA62 limits,
marked as such); ``--regions FILE`` replaces it. Regions are rectangles in
(Z_TAX, CDA_TAX), tested in order (SR before CR: the CR excludes the SR),
with half-open limits min <= value < max.

``[selection]`` keys (required unless a default is given; an unknown key is
an error, so that a typo cannot silently drop a cut):

=============================  ========  ====================================
key                            default   meaning
=============================  ========  ====================================
opposite_charges               —         the two tracks have opposite charges
muon_id                        —         "both", "one" or "none": tracks
                                         identified as muons (MUV3 hit)
fiducial_z_min_m, _max_m       —         vertex z range [m]
fiducial_r_max_m               none      vertex radius from the beam axis [m]
fiducial_cones                 none      [[z_base_m, r_base_m], …]: vertex in
                                         the union of cones with their tip on
                                         the beam axis at
                                         fiducial_cone_tip_z_m
track_p_min_gev                —         momentum of each selected track
track_p_max_gev                1e9
cda_max_m                      —         distance between the two tracks
straw_chambers                 4         chambers a selected track crosses
reconstructable_min_chambers   3         chambers that make a track count as
                                         extra activity
exactly_two_tracks             true      no other reconstructed product
vetoes                         []        veto detectors of the geometry the
                                         selection uses (names or patterns,
                                         e.g. ["LAV*"]); an event with an
                                         in-time charged particle crossing
                                         one is rejected (a weight, with the
                                         detector's inefficiency)
muon_id_ep_max                 inf       a muon-identified track also needs
                                         LKr E/p below this
=============================  ========  ====================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Region", "Regions", "RegionsError", "load_regions", "OUTSIDE",
           "describe_selection", "SELECTION_DEFAULTS"]

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
        """What outputs record: the file's content with the selection's
        defaults filled in, its path and a one-line description of the cuts."""
        return dict(self.raw, selection=dict(self.selection), path=self.path,
                    description=describe_selection(self.selection))


REQUIRED_SELECTION = ("opposite_charges", "muon_id", "fiducial_z_min_m",
                      "fiducial_z_max_m", "track_p_min_gev", "cda_max_m")
#: Optional selection keys and their defaults (module docstring).
SELECTION_DEFAULTS = {"track_p_max_gev": 1e9, "straw_chambers": 4,
                      "reconstructable_min_chambers": 3, "exactly_two_tracks": True,
                      "fiducial_r_max_m": None, "fiducial_cones": None,
                      "fiducial_cone_tip_z_m": None, "vetoes": [],
                      "muon_id_ep_max": float("inf")}


def _check_selection(sel: dict, source: str) -> dict:
    """The selection with defaults filled in; RegionsError naming the key."""
    if "lav_veto" in sel:
        raise RegionsError(f"{source}: selection.lav_veto is replaced by selection.vetoes, "
                           'the veto detectors used, e.g. vetoes = ["LAV*"]')
    unknown = sorted(set(sel) - set(REQUIRED_SELECTION) - set(SELECTION_DEFAULTS))
    if unknown:
        raise RegionsError(f"{source}: [selection] has unknown key(s) {', '.join(unknown)} "
                           f"(known: {', '.join(REQUIRED_SELECTION + tuple(SELECTION_DEFAULTS))})")
    missing = [k for k in REQUIRED_SELECTION if k not in sel]
    if missing:
        raise RegionsError(f"{source}: [selection] misses {', '.join(missing)}")
    sel = {**SELECTION_DEFAULTS, **sel}
    if sel["muon_id"] not in ("both", "one", "none"):
        raise RegionsError(f"{source}: selection.muon_id {sel['muon_id']!r} "
                           "(expected both, one or none)")
    if not isinstance(sel["vetoes"], list) or not all(isinstance(v, str) for v in sel["vetoes"]):
        raise RegionsError(f"{source}: selection.vetoes must be a list of detector names")
    if not 1 <= sel["reconstructable_min_chambers"] <= sel["straw_chambers"] <= 4:
        raise RegionsError(f"{source}: need 1 <= reconstructable_min_chambers <= "
                           "straw_chambers <= 4")
    cones = sel["fiducial_cones"]
    if cones is not None:
        if sel["fiducial_cone_tip_z_m"] is None:
            raise RegionsError(f"{source}: selection.fiducial_cones needs "
                               "fiducial_cone_tip_z_m (the cones' tip on the beam axis)")
        if not all(len(c) == 2 and c[0] > sel["fiducial_cone_tip_z_m"] and c[1] > 0
                   for c in cones):
            raise RegionsError(f"{source}: selection.fiducial_cones: each cone is "
                               "[z_base_m > tip, r_base_m > 0]")
    return sel


def describe_selection(sel: dict) -> str:
    """One line with every cut of a selection (printed in every output)."""
    parts = [f"p {sel['track_p_min_gev']:g}–{sel['track_p_max_gev']:g} GeV per track",
             f"vertex {sel['fiducial_z_min_m']:g} <= z <= {sel['fiducial_z_max_m']:g} m"]
    if sel.get("fiducial_r_max_m") is not None:
        parts.append(f"vertex r <= {sel['fiducial_r_max_m']:g} m")
    if sel.get("fiducial_cones"):
        cones = ", ".join(f"(z {z:g} m, R {r:g} m)" for z, r in sel["fiducial_cones"])
        parts.append(f"vertex in the cones from z {sel['fiducial_cone_tip_z_m']:g} m to "
                     + cones)
    parts.append(f"CDA < {1e3 * sel['cda_max_m']:g} mm")
    parts.append({"both": "both tracks muon-identified (MUV3)",
                  "one": "at least one track muon-identified (MUV3)",
                  "none": "no muon identification"}[sel["muon_id"]])
    if sel.get("opposite_charges", True):
        parts.append("opposite charges")
    if np.isfinite(sel.get("muon_id_ep_max", np.inf)) and sel["muon_id"] != "none":
        parts.append(f"muon E/p < {sel['muon_id_ep_max']:g}")
    parts.append(f"{sel['straw_chambers']} STRAW chambers per track")
    if sel.get("exactly_two_tracks", True):
        parts.append(f"no other track (>= {sel['reconstructable_min_chambers']} chambers)")
    parts.append("vetoes: " + (", ".join(sel["vetoes"]) if sel.get("vetoes") else "none"))
    return "; ".join(parts)


def load_regions(path=None) -> Regions:
    """Read and check a regions file (default: the packaged NA62 one)."""
    from .io import read_data_toml

    raw, source, _ = read_data_toml(path, "regions_na62_mumu.toml", RegionsError,
                                    "regions file")
    sel = _check_selection(raw.get("selection", {}), source)
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
