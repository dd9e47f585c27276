"""Selection and signal/control regions from a TOML file.

A file belongs to a **channel** (top-level ``channel``, default ``"mumu"``):
the final state the selection looks for, which fixes the background
categories of the tables (:data:`CHANNELS`). Each channel has a packaged
file — ``backtrace/data/regions_na62_mumu.toml`` (the default) and
``regions_na62_ee.toml`` (estimated NA62 limits, marked as such); ``backtrace
run --channel ee`` picks the second, ``--regions FILE`` replaces either.
Regions are rectangles in (Z_TAX, CDA_TAX), tested in order (SR before CR:
the CR excludes the SR), with half-open limits min <= value < max.

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
electron_id                    "none"    "both", "one" or "none": tracks
                                         identified as electrons: E/p in the
                                         window below and no MUV3 hit
electron_ep_min                1.0       lower E/p limit: electron_ep_min −
electron_ep_min_slope_per_gev  0.0013    slope × max(p − p_ref, dp_min),
electron_ep_min_p_ref_gev      100.0     p the measured momentum [GeV/c]
electron_ep_min_dp_min_gev     50.0      (NA62 e+e− selection)
electron_ep_max                1.05      upper E/p limit
eta_vetoes                     []        vetoes (entries of ``vetoes``) whose
                                         rejection is the η of the factorised
                                         estimate (:mod:`backtrace.prompt.factorised`)
upstream_activity_detectors    []        active surfaces (names or patterns):
                                         a charged particle crossing one
                                         upstream of the vertex within
                                         upstream_activity_radius_m of the
                                         backward extrapolation of a selected
                                         track rejects the event
upstream_activity_radius_m     0.2       that distance [m]
=============================  ========  ====================================

Timing is not simulated: every particle of an event is in time, so the
time windows of a selection (e.g. NA62's 5 ns) are always satisfied.

:func:`load_regions` checks a file against the packaged JSON schema
``backtrace/data/selection-1.schema.json`` (types, ranges, required and
unknown keys; NaN is refused) before it uses any value, then checks the
relations between keys (min < max, ``eta_vetoes`` within ``vetoes``, …).
Every error is one line, ``<file>: <key.path>: <what is wrong> (expected
<what>)`` (:mod:`backtrace.schemas`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backtrace.io import read_data_toml
from backtrace.schemas import check_against_schema

__all__ = ["Region", "Regions", "RegionsError", "load_regions", "OUTSIDE",
           "describe_selection", "SELECTION_DEFAULTS", "CHANNELS", "electron_ep_window"]

OUTSIDE = "outside"

#: The channels: the packaged selection of each and its background
#: categories (true identities of the two selected tracks, as in the
#: analysis' tables). μ+μ−: μ-μ, μ-π (a pion taken for a muon), other.
#: e+e−: e-e (two true electrons/positrons), other (a muon or a pion taken
#: for an electron; NA62's e+e− table has a single 'prompt' column).
CHANNELS = {
    "mumu": {"file": "regions_na62_mumu.toml", "categories": ("mu-mu", "mu-pi", "other")},
    "ee": {"file": "regions_na62_ee.toml", "categories": ("e-e", "other")},
}


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
    channel: str = "mumu"

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.regions] + [OUTSIDE]

    @property
    def categories(self) -> tuple[str, ...]:
        """The background categories of the channel (:data:`CHANNELS`)."""
        return CHANNELS[self.channel]["categories"]

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
                    channel=self.channel, categories=list(self.categories),
                    description=describe_selection(self.selection))


#: The schema of a selection file (``backtrace/data``): types, ranges,
#: required and unknown keys.
SCHEMA = "selection-1.schema.json"
#: Keys whose rename deserves more than 'unknown key' (:func:`check_against_schema`).
_HINTS = {"selection.lav_veto": ("unknown key, replaced by selection.vetoes",
                                 'vetoes = ["LAV*"], the veto detectors used')}
#: Optional selection keys and their defaults (module docstring).
SELECTION_DEFAULTS = {"track_p_max_gev": 1e9, "straw_chambers": 4,
                      "reconstructable_min_chambers": 3, "exactly_two_tracks": True,
                      "fiducial_r_max_m": None, "fiducial_cones": None,
                      "fiducial_cone_tip_z_m": None, "vetoes": [],
                      "muon_id_ep_max": float("inf"),
                      "electron_id": "none", "electron_ep_min": 1.0,
                      "electron_ep_min_slope_per_gev": 0.0013,
                      "electron_ep_min_p_ref_gev": 100.0,
                      "electron_ep_min_dp_min_gev": 50.0, "electron_ep_max": 1.05,
                      "eta_vetoes": [], "upstream_activity_detectors": [],
                      "upstream_activity_radius_m": 0.2}


def electron_ep_window(p_gev, selection: dict) -> tuple[np.ndarray, float]:
    """(lower, upper) limits of the electron E/p window at measured momenta
    ``p_gev`` [GeV/c]: lower = electron_ep_min − slope × max(p − p_ref,
    dp_min) — NA62's 1 − 0.0013 × max(p − 100, 50) (e+e− selection, 2021
    dump data) — and upper = electron_ep_max; a track is identified when
    lower < E/p < upper."""
    p = np.asarray(p_gev, float)
    lower = selection["electron_ep_min"] - selection["electron_ep_min_slope_per_gev"] \
        * np.maximum(p - selection["electron_ep_min_p_ref_gev"],
                     selection["electron_ep_min_dp_min_gev"])
    return lower, float(selection["electron_ep_max"])


def _check_selection(sel: dict, where: str) -> dict:
    """The selection (already checked against the schema) with defaults
    filled in; RegionsError naming the key for what the schema cannot say
    (relations between keys)."""
    sel = {**SELECTION_DEFAULTS, **sel}

    def fail(key: str, what: str, expected: str):
        raise RegionsError(f"{where}: selection.{key}: {what} (expected {expected})")

    if sel["muon_id"] == "both" and sel["electron_id"] == "both":
        fail("electron_id", "'both' with muon_id 'both'",
             "at most one of them 'both': a track is not a muon and an electron")
    if not sel["fiducial_z_min_m"] < sel["fiducial_z_max_m"]:
        fail("fiducial_z_max_m", f"{sel['fiducial_z_max_m']:g} <= fiducial_z_min_m "
             f"{sel['fiducial_z_min_m']:g}", "fiducial_z_min_m < fiducial_z_max_m")
    if not sel["track_p_min_gev"] < sel["track_p_max_gev"]:
        fail("track_p_max_gev", f"{sel['track_p_max_gev']:g} <= track_p_min_gev "
             f"{sel['track_p_min_gev']:g}", "track_p_min_gev < track_p_max_gev")
    missing = [v for v in sel["eta_vetoes"] if v not in sel["vetoes"]]
    if missing:
        fail("eta_vetoes", f"{missing} are not in selection.vetoes {sel['vetoes']}",
             "entries of vetoes")
    lower_at_low_p = electron_ep_window(0.0, sel)[0]
    if not lower_at_low_p < sel["electron_ep_max"]:
        fail("electron_ep_max", f"the electron E/p window is empty (lower limit "
             f"{float(lower_at_low_p):g} >= electron_ep_max {sel['electron_ep_max']:g})",
             "electron_ep_max above the lower limit")
    if not sel["reconstructable_min_chambers"] <= sel["straw_chambers"]:
        fail("reconstructable_min_chambers", f"{sel['reconstructable_min_chambers']} > "
             f"straw_chambers {sel['straw_chambers']}",
             "1 <= reconstructable_min_chambers <= straw_chambers <= 4")
    tip = sel["fiducial_cone_tip_z_m"]
    for i, (z_base, _) in enumerate(sel["fiducial_cones"] or ()):
        if not z_base > tip:
            fail(f"fiducial_cones[{i}]", f"base z {z_base:g} m is not downstream of "
                 f"fiducial_cone_tip_z_m {tip:g} m", "each cone [z_base_m > tip, r_base_m > 0]")
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
    if sel.get("electron_id", "none") != "none":
        which = "both tracks" if sel["electron_id"] == "both" else "at least one track"
        parts.append(
            f"{which} electron-identified ({sel['electron_ep_min']:g} − "
            f"{sel['electron_ep_min_slope_per_gev']:g} × max(p − "
            f"{sel['electron_ep_min_p_ref_gev']:g}, {sel['electron_ep_min_dp_min_gev']:g}) "
            f"< E/p < {sel['electron_ep_max']:g}, no MUV3 hit)")
    parts.append(f"{sel['straw_chambers']} STRAW chambers per track")
    if sel.get("exactly_two_tracks", True):
        parts.append(f"no other track (>= {sel['reconstructable_min_chambers']} chambers)")
    parts.append("vetoes: " + (", ".join(sel["vetoes"]) if sel.get("vetoes") else "none"))
    if sel.get("upstream_activity_detectors"):
        parts.append(f"no activity in {', '.join(sel['upstream_activity_detectors'])} "
                     f"upstream of the vertex within "
                     f"{1e3 * sel['upstream_activity_radius_m']:g} mm of a track")
    if sel.get("eta_vetoes"):
        parts.append("factorised estimate: η from " + ", ".join(sel["eta_vetoes"]))
    return "; ".join(parts)


def load_regions(path=None, channel: str | None = None) -> Regions:
    """Read and check a regions file (default: the packaged NA62 file of
    ``channel``, μ+μ− when None). With both a path and a channel, the file
    must be of that channel. The file is checked against
    ``backtrace/data/selection-1.schema.json`` before any value is used."""
    if channel is not None and channel not in CHANNELS:
        raise RegionsError(f"channel {channel!r} unknown (known: {', '.join(CHANNELS)})")
    packaged = CHANNELS[channel or "mumu"]["file"]
    raw, source, _ = read_data_toml(path, packaged, RegionsError, "regions file")
    where = str(path) if path is not None else packaged
    check_against_schema(raw, SCHEMA, where, RegionsError, hints=_HINTS)
    file_channel = raw.get("channel", "mumu")
    if channel is not None and file_channel != channel:
        raise RegionsError(f"{where}: channel: a selection of the {file_channel} channel, "
                           f"not {channel} (expected channel = {channel!r})")
    sel = _check_selection(raw["selection"], where)
    regions = [Region(r["name"], float(r["z_tax_min_m"]), float(r["z_tax_max_m"]),
                      float(r["cda_tax_min_m"]), float(r["cda_tax_max_m"]))
               for r in raw["region"]]
    for i, reg in enumerate(regions):
        for axis in ("z_tax", "cda_tax"):
            lo, hi = getattr(reg, f"{axis}_min_m"), getattr(reg, f"{axis}_max_m")
            if not lo < hi:
                raise RegionsError(f"{where}: region[{i}].{axis}_max_m: empty rectangle "
                                   f"{reg.name!r}, {hi:g} <= {axis}_min_m {lo:g} "
                                   f"(expected {axis}_min_m < {axis}_max_m)")
    seen: set[str] = set()
    for i, name in enumerate(r.name for r in regions):
        if name in seen or name == OUTSIDE:
            raise RegionsError(f"{where}: region[{i}].name: {name!r} is "
                               f"{'reserved' if name == OUTSIDE else 'repeated'} "
                               f"(expected unique region names other than {OUTSIDE!r})")
        seen.add(name)
    return Regions(raw.get("name", source), sel, regions,
                   bool(raw.get("estimated", False)), str(path) if path else None, raw,
                   file_channel)
