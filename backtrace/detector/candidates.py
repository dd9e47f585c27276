"""Two-track candidates of forced interactions, vectorised over a batch.

Input: the detector read-out of every product outcome of a batch of forced
interactions (:meth:`backtrace.interactions.products.ProductTransport.transport`:
one row per outcome, sorted by interaction and product rank, with the
position and momentum at each STRAW chamber and the MUV3 hit).

1. **Reconstructed tracks**: outcomes that reached the end of the forward
   transport (not absorbed, not going backward) with a non-zero weight
   factor, crossing the active annulus of at least
   ``reconstructable_min_chambers`` STRAW chambers (regions file, default 3
   [est]: NA62 reconstructs tracks from three or four chambers, JINST 12
   (2017) P05025; three of the four chambers always include one on each
   side of the MNP33 magnet, which the momentum measurement needs) —
   whatever their momentum. Each gets its batch-independent random key
   (:func:`backtrace.rng.product_key`), its muon identification: a MUV3
   hit, which a particle arriving there as a muon makes — a true muon
   (``mu``) or a pion that decayed in flight (``mu_from_pi``) — and, when
   the selection asks for it, its electron identification (E/p window, no
   MUV3 hit; :meth:`backtrace.detector.response.Response.electron_id_probability`).
2. **Pairs**: every pair of reconstructed tracks of an interaction that
   both cross ``straw_chambers`` chambers (default 4 [est]), with opposite
   charges when ``opposite_charges``, never the two outcomes of one pion.
3. **Exactly two tracks** (``exactly_two_tracks``, default): a pair is an
   event in which no other product is reconstructed. The pair's weight gets
   the probability of that, Π over the other products c of (1 − p_c), p_c
   the summed weight factor of c's reconstructed outcomes: 0 when another
   muon is reconstructed, the absorption probability for an extra pion.
   Each pair is then a distinct, disjoint outcome of the interaction. Every
   pair that could be selected (non-zero identification probability and
   upstream-activity survival) is kept before the kinematic cuts, with the
   weight a candidate of it would carry, for the upper limits of empty
   cells (:func:`backtrace.prompt.estimate.weight_per_entry`).
   Without ``exactly_two_tracks`` the pair with the smallest CDA of an
   interaction that passes the cuts is its candidate.
4. **Measurement**: momenta at STRAW1 smeared (:mod:`.reconstruction`, one
   set of normals per track from the ``smearing`` stream), the vertex at
   the closest approach of the two straight tracks, Z_TAX/CDA_TAX from the
   total momentum and the geometry's beam axis, the invariant mass under
   the dimuon hypothesis (as the analysis computes it).
5. **Selection** (regions file ``[selection]``, :mod:`backtrace.regions`):
   both momenta in [``track_p_min_gev``, ``track_p_max_gev``], the vertex
   in the fiducial volume, CDA below ``cda_max_m``, the muon identification
   (``both``: both tracks identified as muons, the same for every category;
   ``one``; ``none``), the electron identification (same modes), and no
   upstream activity near the tracks (:func:`upstream_activity_survival`).
6. Category from the *true* identities of the two tracks, as in NA62's
   table (:data:`backtrace.regions.CHANNELS`): μ+μ− channel ``mu-mu`` both
   true muons, ``mu-pi`` a true muon and a true pion (identified as a muon
   after decaying in flight), ``other`` any other pair; e+e− channel
   ``e-e`` two true electrons/positrons, ``other`` any other pair. Region
   from (Z_TAX, CDA_TAX).

Weight of a candidate: interaction weight × the product weight factors of
its two tracks (pion survival/decay split) × the veto survival of the
products × the probability that no other product is reconstructed × the
identification probability × the upstream-activity survival × ``scale``
(POT ratio). ``eta_veto_survival`` holds the survival of the vetoes of the
factorised estimate's η alone (incoming muon and products), so that the
weight before those vetoes is ``weight / eta_veto_survival``
(:mod:`backtrace.prompt.factorised`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from backtrace.constants import MUON_MASS_GEV
from backtrace.detector.reconstruction import (
    Smearing,
    in_fiducial_volume,
    invariant_mass,
    pointing,
    smear,
    straw_acceptance,
    two_track_vertex,
)
from backtrace.interactions.products import product_key
from backtrace.rng import normals, uniforms

__all__ = ["Reconstruction", "build_candidates", "category", "MUON_IDENTITIES",
           "CANDIDATE_COLUMNS", "empty_pairs", "spectrometer_tracks", "measured_momenta",
           "straw1_points", "measure_pairs", "passes_selection",
           "identification_probability", "kinematic_precheck", "upstream_activity_survival"]

#: Outcomes that arrive at the detector as muons (MUV3 can identify them).
MUON_IDENTITIES = frozenset({"mu", "mu_from_pi"})
#: Outcomes that are true pions (decayed in flight or not).
PION_IDENTITIES = frozenset({"pi", "mu_from_pi"})
#: Forward-transport statuses of a product that can make a track.
TRACK_STATUSES = ("reached_target", "left_world", "stopped")
CANDIDATE_COLUMNS = ["interaction", "region", "category", "zone", "process", "stratum",
                     "weight",
                     "track_index", "sample_index", "z_tax_m", "cda_tax_m", "vertex_x_m",
                     "vertex_y_m", "vertex_z_m", "cda_m", "mass_gev", "p1_gev", "p2_gev",
                     "muon_ids", "id_probability", "veto_survival", "eta_veto_survival",
                     "upstream_survival", "volume", "interaction_z_m"]


#: Active area of a chamber without an ``[element.detector]`` table: the
#: annulus 0.1 m < r < 1.0 m around the axis.
DEFAULT_CHAMBER = (1.0, 0.0, 0.0, 0.1)


@dataclass(frozen=True)
class Reconstruction:
    """What candidate building needs from the beam line and the run:
    the STRAW chamber names (z order) with their active areas (outer
    radius, hole centre x, y and radius [m]), STRAW1's z [m], the beam axis
    (point [m], unit direction), the seed, whether momenta are smeared and
    the detector response (vetoes, identification; None: MUV3 hits only)."""

    straws: tuple[str, ...]
    straw1_z_m: float
    axis_point: np.ndarray
    axis_direction: np.ndarray
    seed: int
    smearing: bool = True
    chambers: tuple = ()
    response: object = None
    #: every tracker resolution term × this (:meth:`.reconstruction.Smearing.scaled`)
    resolution_scale: float = 1.0

    @classmethod
    def from_beamline(cls, beamline, seed: int, smearing: bool = True, response=None,
                      resolution_scale: float = 1.0):
        point, direction = beamline.geometry.beam_axis
        straws = tuple(beamline.geometry.tracker_planes_z_m)
        chambers = []
        for name in straws:
            d = beamline.geometry.element(name).detector or {}
            chambers.append((float(d["active_radius_m"]), *map(float, d["hole_center_m"]),
                             float(d["hole_radius_m"])) if d.get("role") == "tracker"
                            else DEFAULT_CHAMBER)
        return cls(straws, beamline.first_tracker_z_m, point, direction, seed, smearing,
                   tuple(chambers), response, float(resolution_scale))

    def chamber(self, i: int) -> tuple:
        return self.chambers[i] if self.chambers else DEFAULT_CHAMBER


def category(id1, id2, channel: str = "mumu") -> np.ndarray:
    """The category of pairs from arrays of outcome identities (``mu``,
    ``mu_from_pi``, ``pi``, ``e``): μ+μ− channel 'mu-mu' (two true muons),
    'mu-pi' (a true muon and a true pion) or 'other'; e+e− channel 'e-e'
    (two true electrons) or 'other'."""
    id1, id2 = np.asarray(id1, dtype=object), np.asarray(id2, dtype=object)
    if channel == "ee":
        return np.where((id1 == "e") & (id2 == "e"), "e-e", "other").astype(object)
    mu1, mu2 = id1 == "mu", id2 == "mu"
    pi1 = np.isin(id1, list(PION_IDENTITIES))
    pi2 = np.isin(id2, list(PION_IDENTITIES))
    mupi = (mu1 & pi2) | (pi1 & mu2)
    return np.where(mu1 & mu2, "mu-mu", np.where(mupi, "mu-pi", "other")).astype(object)


def empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"track_index": pd.Series(dtype=np.int64),
                         "category": pd.Series(dtype=object),
                         "weight": pd.Series(dtype=float)})


def _empty_candidates() -> pd.DataFrame:
    return pd.DataFrame(columns=CANDIDATE_COLUMNS)


def in_chamber(x, y, chamber) -> np.ndarray:
    """Inside a chamber's active area: r < outer radius and outside the
    beam hole ((outer radius, hole x, hole y, hole radius) [m]; NaN: the
    track did not reach the plane)."""
    r_out, hx, hy, r_hole = chamber
    x, y = np.asarray(x, float), np.asarray(y, float)
    return (np.hypot(x, y) < r_out) & (np.hypot(x - hx, y - hy) > r_hole)


def chambers_crossed(det: pd.DataFrame, straws, recon=None) -> np.ndarray:
    """Number of STRAW chambers whose active area each outcome crosses."""
    if recon is None:
        return sum(straw_acceptance([(det[f"{s}_x_m"], det[f"{s}_y_m"])]).astype(int)
                   for s in straws)
    return sum(in_chamber(det[f"{s}_x_m"], det[f"{s}_y_m"], recon.chamber(i)).astype(int)
               for i, s in enumerate(straws))


def spectrometer_tracks(det: pd.DataFrame, inter: pd.DataFrame, recon: "Reconstruction",
                        min_chambers: int, selection: dict | None = None) -> pd.DataFrame:
    """Outcomes the spectrometer reconstructs (step 1): a track status, a
    non-zero weight factor and at least ``min_chambers`` STRAW chambers
    crossed (``n_chambers``), with ``rng_key``, ``muon_id`` (the
    probability that the track is identified as a muon) and, when
    ``selection`` asks for electrons, ``electron_id``; product order
    kept."""
    ok = det["status"].isin(TRACK_STATUSES) & (det["weight_factor"] > 0)
    n_chambers = chambers_crossed(det, recon.straws, recon if recon.chambers else None)
    keep = (ok & (n_chambers >= min_chambers)).to_numpy()
    tracks = det[keep].copy()
    tracks["n_chambers"] = n_chambers[keep]
    h = inter.set_index("interaction").loc[tracks["interaction"]]
    tracks["rng_key"] = product_key(h, tracks["particle"])
    if recon.response is None:
        is_muon = tracks["identity"].isin(list(MUON_IDENTITIES))
        tracks["muon_id"] = (is_muon & tracks["muv3_hit"].astype(bool)).astype(float)
    else:
        tracks["muon_id"] = recon.response.muon_id_probability(
            tracks["identity"], tracks["muv3_hit"], tracks["e_over_p"],
            tracks["punch_through"])
    if selection is not None and selection.get("electron_id", "none") != "none":
        tracks["electron_id"] = _electron_id(tracks, recon, selection)
    return tracks


def _electron_id(tracks: pd.DataFrame, recon: "Reconstruction", selection: dict):
    """P(identified as an electron) of each track (without a detector
    response: a true electron without a MUV3 hit)."""
    if recon.response is None:
        return ((tracks["identity"] == "e") & ~tracks["muv3_hit"].astype(bool)).astype(float)
    p = np.sqrt(tracks["STRAW1_px_gev"] ** 2 + tracks["STRAW1_py_gev"] ** 2
                + tracks["STRAW1_pz_gev"] ** 2).to_numpy(float)
    return recon.response.electron_id_probability(tracks["muv3_hit"], tracks["e_over_p"],
                                                  p, selection)


def veto_survival(det: pd.DataFrame, column: str = "veto_log_survival") -> pd.Series:
    """Π ε over the veto crossings of all products of each interaction
    (index: interaction): one value per product (its outcomes share its
    trajectory); ``column``: the log survival summed (all vetoes, or
    ``veto_log_survival_eta``: the factorised estimate's η vetoes)."""
    if column not in det:
        return pd.Series(1.0, index=pd.Index(det["interaction"].unique()))
    per_product = det.drop_duplicates(["interaction", "particle"])
    return np.exp(per_product.groupby("interaction")[column].sum())


def _eta_survival(det, inter, iid) -> np.ndarray:
    """Survival of the η vetoes (incoming muon and products) of the
    interactions ``iid``."""
    out = veto_survival(det, "veto_log_survival_eta").reindex(iid).to_numpy(float)
    if "incoming_log_survival_eta" in inter:
        inc = inter.set_index("interaction")["incoming_log_survival_eta"]
        out = out * np.exp(inc.reindex(iid).to_numpy(float))
    return out


def absence_factor(tracks: pd.DataFrame, a, b) -> np.ndarray:
    """P(no reconstructed product of the interaction other than the two of
    pair (a, b)): Π over the other products c of (1 − p_c), p_c the summed
    weight factor of c's reconstructed outcomes (a muon: 1; a pion: its
    survival probability, its two outcomes — decayed or not — being one
    track)."""
    key = pd.MultiIndex.from_arrays([tracks["interaction"], tracks["particle"]])
    p_prod = pd.Series(tracks["weight_factor"].to_numpy(float), index=key) \
        .groupby(level=[0, 1]).sum().clip(upper=1.0)
    inter_of = p_prod.index.get_level_values(0)
    certain = p_prod >= 1.0
    with np.errstate(divide="ignore"):
        log_absent = np.where(certain, 0.0, np.log1p(-p_prod.to_numpy()))
    n_certain = pd.Series(certain.to_numpy(int), index=inter_of).groupby(level=0).sum()
    sum_log = pd.Series(log_absent, index=inter_of).groupby(level=0).sum()
    iid = tracks["interaction"].to_numpy()
    part = tracks["particle"].to_numpy()
    own = [p_prod.reindex(pd.MultiIndex.from_arrays([iid[x], part[x]])).to_numpy()
           for x in (a, b)]
    others_certain = n_certain.reindex(iid[a]).to_numpy() \
        - sum((o >= 1.0).astype(int) for o in own)
    with np.errstate(divide="ignore"):
        own_log = sum(np.where(o >= 1.0, 0.0, np.log1p(-np.minimum(o, 1.0))) for o in own)
    factor = np.exp(sum_log.reindex(iid[a]).to_numpy() - own_log)
    return np.where(others_certain > 0, 0.0, factor)


def _pair_indices(interaction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (a, b), a < b, of every pair of rows sharing an
    interaction (rows sorted by interaction), in (a, b) order."""
    n = len(interaction)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, interaction[1:] != interaction[:-1]])
    ends = np.repeat(np.r_[starts[1:], n], np.diff(np.r_[starts, n]))
    partners = ends - np.arange(n) - 1          # rows after each row in its group
    a = np.repeat(np.arange(n), partners)
    rank = np.arange(len(a)) - np.repeat(np.cumsum(partners) - partners, partners)
    return a, a + 1 + rank


def measured_momenta(tracks: pd.DataFrame, recon: Reconstruction) -> np.ndarray:
    """(n, 3) momenta at STRAW1, smeared with each track's own normals."""
    p = tracks[["STRAW1_px_gev", "STRAW1_py_gev", "STRAW1_pz_gev"]].to_numpy(float)
    if not recon.smearing or not len(p):
        return p
    u = uniforms(recon.seed, tracks["rng_key"].to_numpy(np.int64), 6, stream="smearing")
    n = np.column_stack([normals(u[:, 0], u[:, 1]), normals(u[:, 2], u[:, 3]),
                         normals(u[:, 4], u[:, 5])])
    return smear(p, Smearing().scaled(recon.resolution_scale), n)


def _pairs(tracks: pd.DataFrame, selection: dict) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of step 3 as positions into ``tracks``: distinct products,
    opposite charges (if asked), both crossing ``straw_chambers`` chambers."""
    a, b = _pair_indices(tracks["interaction"].to_numpy())
    q = tracks["charge"].to_numpy(float)
    part = tracks["particle"].to_numpy()
    full = tracks["n_chambers"].to_numpy() >= selection["straw_chambers"]
    keep = (part[a] != part[b]) & full[a] & full[b]
    if selection.get("opposite_charges", True):
        keep &= q[a] * q[b] < 0
    return a[keep], b[keep]


def _measure_pairs(tracks, a, b, recon: Reconstruction) -> dict:
    """Vertex, CDA, Z_TAX, CDA_TAX, mass and momenta of pairs (a, b)."""
    return measure_pairs(straw1_points(tracks, recon), measured_momenta(tracks, recon),
                         a, b, recon)


def straw1_points(tracks: pd.DataFrame, recon: Reconstruction) -> np.ndarray:
    """(n, 3) positions [m] of tracks at STRAW1 (its entry face)."""
    return np.column_stack([tracks["STRAW1_x_m"].to_numpy(float),
                            tracks["STRAW1_y_m"].to_numpy(float),
                            np.full(len(tracks), recon.straw1_z_m)])


def measure_pairs(x, p, a, b, recon: Reconstruction) -> dict:
    """Vertex, CDA, Z_TAX, CDA_TAX, mass and momenta of pairs (a, b) of
    tracks measured at STRAW1 at positions ``x`` with momenta ``p`` ((n, 3)
    arrays, smeared)."""
    p1, p2 = p[a], p[b]
    vertex, cda = two_track_vertex(x[a], p1, x[b], p2)
    z_tax, cda_tax = pointing(vertex, p1 + p2, recon.axis_point, recon.axis_direction)
    return {"p1_gev": np.linalg.norm(p1, axis=1), "p2_gev": np.linalg.norm(p2, axis=1),
            "vertex_x_m": vertex[:, 0], "vertex_y_m": vertex[:, 1],
            "vertex_z_m": vertex[:, 2], "cda_m": cda, "z_tax_m": z_tax,
            "cda_tax_m": cda_tax,
            # the analysis' dimuon hypothesis, whatever the true identities
            "mass_gev": invariant_mass(p1, p2, MUON_MASS_GEV, MUON_MASS_GEV)}


def passes_selection(m: dict, selection: dict, recon: Reconstruction) -> np.ndarray:
    """Selection cuts of step 5 on measured pairs (:func:`measure_pairs`)."""
    p_min, p_max = selection["track_p_min_gev"], selection.get("track_p_max_gev", 1e9)
    ok = (p_min <= m["p1_gev"]) & (m["p1_gev"] <= p_max)
    ok &= (p_min <= m["p2_gev"]) & (m["p2_gev"] <= p_max)
    vertex = np.column_stack([m["vertex_x_m"], m["vertex_y_m"], m["vertex_z_m"]])
    ok &= in_fiducial_volume(vertex, selection, recon.axis_point, recon.axis_direction)
    ok &= ~(m["cda_m"] > selection["cda_max_m"])
    return ok


def kinematic_precheck(readout: pd.DataFrame, inter: pd.DataFrame, recon: Reconstruction,
                       selection: dict) -> np.ndarray:
    """The interactions that may still give a candidate, from the products'
    read-out at STRAW1 alone (columns interaction, particle, charge,
    STRAW1_*): at least one pair of distinct products, both in STRAW1's
    active area, of opposite charges when the selection asks, whose
    measured momenta (smeared as in step 4, same keys), vertex and CDA pass
    step 5. Every candidate's interaction is among them: the remaining cuts
    (chambers, other tracks, identification, vetoes) only remove."""
    x, y = readout["STRAW1_x_m"].to_numpy(float), readout["STRAW1_y_m"].to_numpy(float)
    t = readout[in_chamber(x, y, recon.chamber(0))].sort_values(
        ["interaction", "particle"], kind="stable").reset_index(drop=True)
    if len(t) < 2:
        return np.zeros(0, dtype=np.int64)
    h = inter.set_index("interaction").loc[t["interaction"]]
    t["rng_key"] = product_key(h, t["particle"])
    a, b = _pair_indices(t["interaction"].to_numpy())
    keep = t["particle"].to_numpy()[a] != t["particle"].to_numpy()[b]
    if selection.get("opposite_charges", True):
        q = t["charge"].to_numpy(float)
        keep &= q[a] * q[b] < 0
    a, b = a[keep], b[keep]
    if not len(a):
        return np.zeros(0, dtype=np.int64)
    ok = passes_selection(_measure_pairs(t, a, b, recon), selection, recon)
    return np.unique(t["interaction"].to_numpy()[a[ok]])


def identification_probability(tracks, a, b, selection: dict) -> np.ndarray:
    """P(the pair passes the selection's muon and electron identification):
    for each, both, at least one, or no identified track (independent
    tracks)."""
    out = np.ones(len(a))
    for column, key in (("muon_id", "muon_id"), ("electron_id", "electron_id")):
        mode = selection.get(key, "none")
        if mode == "none":
            continue
        pa = tracks[column].to_numpy(float)[a]
        pb = tracks[column].to_numpy(float)[b]
        out = out * (pa * pb if mode == "both" else 1 - (1 - pa) * (1 - pb))
    return out


def upstream_activity_survival(tracks, a, b, vertex_z, p, det, inter,
                               recon: "Reconstruction") -> np.ndarray:
    """Survival of pairs (a, b) under the upstream-activity rule
    (:mod:`backtrace.detector.response`): for each surface of
    ``recon.response.upstream``, every entry of a charged particle of the
    interaction — the incoming muon (``upstream_<det>_*`` columns of
    ``inter``) and every product (same columns of ``det``), the two tracks
    included — upstream of the vertex z and within the radius of the
    backward straight-line extrapolation of either track (position at
    STRAW1, measured momentum ``p``) costs a factor ε of the surface."""
    response = recon.response
    out = np.ones(len(a))
    if response is None or not response.upstream or not len(a):
        return out
    x0 = tracks["STRAW1_x_m"].to_numpy(float)
    y0 = tracks["STRAW1_y_m"].to_numpy(float)
    tx, ty = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
    pairs = pd.DataFrame({"pair": np.arange(len(a)),
                          "interaction": tracks["interaction"].to_numpy()[a],
                          "vz": vertex_z})
    products = det.drop_duplicates(["interaction", "particle"])
    for v in response.upstream:
        cols = [f"upstream_{v.name}_{c}" for c in ("x_m", "y_m", "z_m")]
        hits = pd.concat([f[["interaction", *cols]] for f in (inter, products)
                          if set(cols) <= set(f.columns)], ignore_index=True)
        hits = hits.dropna().set_axis(["interaction", "hx", "hy", "hz"], axis=1)
        m = pairs.merge(hits, on="interaction", how="inner")
        if m.empty:
            continue
        i = m["pair"].to_numpy()
        dz = m["hz"].to_numpy() - recon.straw1_z_m
        near = np.zeros(len(m), bool)
        for t in (a[i], b[i]):
            near |= np.hypot(m["hx"].to_numpy() - (x0[t] + tx[t] * dz),
                             m["hy"].to_numpy() - (y0[t] + ty[t] * dz)) \
                < response.upstream_radius_m
        seen = near & (m["hz"].to_numpy() < m["vz"].to_numpy())
        out *= v.inefficiency ** np.bincount(i[seen], minlength=len(a))
    return out


def _pairs_frame(interaction, cats, factor, inter, scale) -> pd.DataFrame:
    """Pre-selection pairs with the weight a candidate of them carries."""
    if not len(interaction):
        return empty_pairs()
    i = inter.set_index("interaction").loc[interaction]
    return pd.DataFrame({"track_index": i["track_index"].to_numpy(np.int64),
                         "category": cats.astype(object),
                         "weight": i["weight"].to_numpy() * factor.astype(float) * scale})


def build_candidates(det: pd.DataFrame, inter: pd.DataFrame, scale: float, regions,
                     recon: Reconstruction) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(candidates, pre-selection pairs) of a batch (module docstring)."""
    if det is None or det.empty:
        return _empty_candidates(), empty_pairs()
    sel = regions.selection
    tracks = spectrometer_tracks(det, inter, recon, sel["reconstructable_min_chambers"], sel)
    a, b = _pairs(tracks, sel)
    ident = tracks["identity"].to_numpy(object)
    cats = category(ident[a], ident[b], getattr(regions, "channel", "mumu"))
    wf = tracks["weight_factor"].to_numpy(float)
    iid = tracks["interaction"].to_numpy()[a]
    survival = veto_survival(det).reindex(iid).to_numpy(float) if len(a) else np.zeros(0)
    factor = wf[a] * wf[b] * survival
    two_only = sel.get("exactly_two_tracks", True)
    if two_only and len(a):
        factor = factor * absence_factor(tracks, a, b)
    keep = factor > 0
    a, b, cats, factor, iid, survival = (a[keep], b[keep], cats[keep], factor[keep],
                                         iid[keep], survival[keep])
    if not len(a):
        return _empty_candidates(), empty_pairs()
    p = measured_momenta(tracks, recon)
    m = measure_pairs(straw1_points(tracks, recon), p, a, b, recon)
    id_prob = identification_probability(tracks, a, b, sel)
    upstream = upstream_activity_survival(tracks, a, b, m["vertex_z_m"], p, det, inter, recon)
    # what an entry of each pair would weigh: every factor of a candidate
    # (identification, upstream activity) but the 0/1 kinematic cuts
    could = id_prob * upstream > 0
    pairs = _pairs_frame(iid[could], cats[could], (factor * id_prob * upstream)[could],
                         inter, scale)
    ok = passes_selection(m, sel, recon) & (id_prob > 0) & (upstream > 0)
    if not ok.any():
        return _empty_candidates(), pairs
    muon_id = tracks["muon_id"].to_numpy(float)
    c = pd.DataFrame({"interaction": iid, "category": cats,
                      "factor": factor * id_prob * upstream,
                      "muon_ids": (muon_id[a] > 0).astype(int) + (muon_id[b] > 0).astype(int),
                      "id_probability": id_prob, "veto_survival": survival,
                      "eta_veto_survival": _eta_survival(det, inter, iid),
                      "upstream_survival": upstream, **m})[ok]
    if not two_only:
        # more tracks allowed: per interaction the pair with the smallest CDA
        c = c.sort_values(["interaction", "cda_m"], kind="stable") \
            .drop_duplicates("interaction", keep="first")
    c = c.reset_index(drop=True)
    i = inter.set_index("interaction").loc[c["interaction"]]
    for col in ("zone", "process", "track_index", "sample_index", "volume"):
        c[col] = i[col].to_numpy()
    # the forcing stratum (interaction tables without one: the process)
    c["stratum"] = i["stratum" if "stratum" in i else "process"].to_numpy()
    c["interaction_z_m"] = i["z_m"].to_numpy()
    c["weight"] = i["weight"].to_numpy() * c["factor"] * scale
    c["region"] = regions.classify(c["z_tax_m"], c["cda_tax_m"])
    return c[CANDIDATE_COLUMNS], pairs
