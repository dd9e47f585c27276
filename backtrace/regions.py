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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backtrace.io import read_data_toml

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


REQUIRED_SELECTION = ("opposite_charges", "muon_id", "fiducial_z_min_m",
                      "fiducial_z_max_m", "track_p_min_gev", "cda_max_m")
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
_ID_MODES = ("both", "one", "none")


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


def _check_names(sel: dict, key: str, source: str) -> None:
    value = sel[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegionsError(f"{source}: selection.{key} must be a list of detector names")


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
    for key in ("muon_id", "electron_id"):
        if sel[key] not in _ID_MODES:
            raise RegionsError(f"{source}: selection.{key} {sel[key]!r} "
                               "(expected both, one or none)")
    if sel["muon_id"] == "both" and sel["electron_id"] == "both":
        raise RegionsError(f"{source}: selection.muon_id and electron_id cannot both be "
                           "'both' (a track is not a muon and an electron)")
    for key in ("vetoes", "eta_vetoes", "upstream_activity_detectors"):
        _check_names(sel, key, source)
    missing = [v for v in sel["eta_vetoes"] if v not in sel["vetoes"]]
    if missing:
        raise RegionsError(f"{source}: selection.eta_vetoes {missing} are not in "
                           f"selection.vetoes {sel['vetoes']}")
    if not sel["upstream_activity_radius_m"] > 0:
        raise RegionsError(f"{source}: selection.upstream_activity_radius_m must be > 0")
    lower_at_low_p = electron_ep_window(0.0, sel)[0]
    if not lower_at_low_p < sel["electron_ep_max"]:
        raise RegionsError(f"{source}: the electron E/p window is empty (lower limit "
                           f"{float(lower_at_low_p):g} >= electron_ep_max "
                           f"{sel['electron_ep_max']:g})")
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
    must be of that channel."""
    if channel is not None and channel not in CHANNELS:
        raise RegionsError(f"channel {channel!r} unknown (known: {', '.join(CHANNELS)})")
    raw, source, _ = read_data_toml(path, CHANNELS[channel or "mumu"]["file"], RegionsError,
                                    "regions file")
    file_channel = raw.get("channel", "mumu")
    if file_channel not in CHANNELS:
        raise RegionsError(f"{source}: channel {file_channel!r} unknown "
                           f"(known: {', '.join(CHANNELS)})")
    if channel is not None and file_channel != channel:
        raise RegionsError(f"{source}: a selection of the {file_channel} channel, "
                           f"not {channel}")
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
                   bool(raw.get("estimated", False)), str(path) if path else None, raw,
                   file_channel)
