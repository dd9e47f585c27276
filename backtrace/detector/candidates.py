"""Two-track candidates of forced interactions, vectorised over a batch.

Input: the detector read-out of every product outcome of a batch of forced
interactions (:meth:`backtrace.interactions.products.ProductTransport.transport`:
one row per outcome, sorted by interaction and product rank, with the
position and momentum at each STRAW chamber and the MUV3 hit).

1. **Spectrometer tracks**: outcomes that reached the end of the forward
   transport (not absorbed, not going backward), inside the active annulus
   of every STRAW chamber, with a non-zero weight factor. Each gets its
   batch-independent random key (:func:`backtrace.rng.product_key`) and its
   muon identification (a true muon — ``mu`` or ``mu_from_pi`` — with a
   MUV3 hit).
2. With ``exactly_two_tracks`` (default), interactions with exactly two
   distinct charged products in the spectrometer (the two outcomes of one
   pion, decayed or not, are one track).
3. **Pairs**: every pair of tracks of an interaction (in product order),
   with opposite charges when ``opposite_charges``, never the two outcomes
   of one pion. All such pairs are kept (before cuts) for the upper limits
   of empty cells (:func:`backtrace.estimate.weight_per_entry`).
4. **Measurement**: momenta at STRAW1 smeared (:mod:`.reconstruction`, one
   set of normals per track from the ``smearing`` stream), the vertex at
   the closest approach of the two straight tracks, Z_TAX/CDA_TAX from the
   total momentum and the geometry's beam axis.
5. **Selection** (regions file ``[selection]``): both momenta in
   [``track_p_min_gev``, ``track_p_max_gev``], vertex z in the fiducial
   range, CDA below ``cda_max_m``, the muon identification; per
   interaction the passing pair with the smallest CDA is the candidate.
6. Category from the true identities (``mu-mu``, ``mu-pi``, ``other``),
   region from (Z_TAX, CDA_TAX).

Weight of a candidate: interaction weight × the product weight factors of
its two tracks (pion survival/decay split) × ``scale`` (POT ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..constants import MUON_MASS_GEV, PION_MASS_GEV
from ..rng import normals, uniforms
from .reconstruction import (Smearing, invariant_mass, pointing, smear, straw_acceptance,
                             two_track_vertex)

__all__ = ["Reconstruction", "build_candidates", "category", "MUON_IDENTITIES",
           "CANDIDATE_COLUMNS", "empty_pairs"]

#: True identities that are muons at the detector.
MUON_IDENTITIES = frozenset({"mu", "mu_from_pi"})
#: Forward-transport statuses of a product that can make a track.
TRACK_STATUSES = ("reached_target", "left_world", "stopped")
CANDIDATE_COLUMNS = ["interaction", "region", "category", "zone", "process", "weight",
                     "track_index", "sample_index", "z_tax_m", "cda_tax_m", "vertex_z_m",
                     "cda_m", "mass_gev", "p1_gev", "p2_gev", "muon_ids"]


@dataclass(frozen=True)
class Reconstruction:
    """What candidate building needs from the beam line and the run:
    the STRAW chamber names (z order), STRAW1's z [m], the beam axis (point
    [m], unit direction), the seed and whether momenta are smeared."""

    straws: tuple[str, ...]
    straw1_z_m: float
    axis_point: np.ndarray
    axis_direction: np.ndarray
    seed: int
    smearing: bool = True

    @classmethod
    def from_beamline(cls, beamline, seed: int, smearing: bool = True):
        point, direction = beamline.geometry.beam_axis
        straws = tuple(beamline.geometry.tracker_planes_z_m)
        return cls(straws, beamline.first_tracker_z_m, point, direction, seed, smearing)


def category(id1, id2) -> np.ndarray:
    """'mu-mu' (two muons), 'mu-pi' (a muon and a pion) or 'other', from
    arrays of true identities."""
    id1, id2 = np.asarray(id1, dtype=object), np.asarray(id2, dtype=object)
    mu1 = np.isin(id1, list(MUON_IDENTITIES))
    mu2 = np.isin(id2, list(MUON_IDENTITIES))
    mupi = (mu1 & (id2 == "pi")) | (mu2 & (id1 == "pi"))
    return np.where(mu1 & mu2, "mu-mu", np.where(mupi, "mu-pi", "other")).astype(object)


def empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"track_index": pd.Series(dtype=np.int64),
                         "category": pd.Series(dtype=object),
                         "weight": pd.Series(dtype=float)})


def _empty_candidates() -> pd.DataFrame:
    return pd.DataFrame(columns=CANDIDATE_COLUMNS)


def spectrometer_tracks(det: pd.DataFrame, inter: pd.DataFrame, straws) -> pd.DataFrame:
    """Outcomes seen by the spectrometer (step 1), with ``rng_key`` and
    ``muon_id``; product order kept."""
    from ..interactions.products import product_key

    ok = det["status"].isin(TRACK_STATUSES)
    ok &= ~det["identity"].eq("e") | ~det["status"].eq("absorbed")
    xy = [(det[f"{s}_x_m"], det[f"{s}_y_m"]) for s in straws]
    ok &= straw_acceptance(xy).astype(bool) & (det["weight_factor"] > 0)
    tracks = det[ok].copy()
    h = inter.set_index("interaction").loc[tracks["interaction"]]
    tracks["rng_key"] = product_key(h, tracks["particle"])
    is_muon = tracks["identity"].isin(list(MUON_IDENTITIES))
    tracks["muon_id"] = is_muon & tracks["muv3_hit"].astype(bool)
    return tracks


def _exactly_two(tracks: pd.DataFrame) -> pd.DataFrame:
    n_tracks = tracks.groupby("interaction")["particle"].transform("nunique")
    return tracks[n_tracks.to_numpy() == 2]


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


def _measured_momenta(tracks: pd.DataFrame, recon: Reconstruction) -> np.ndarray:
    """(n, 3) momenta at STRAW1, smeared with each track's own normals."""
    p = tracks[["STRAW1_px_gev", "STRAW1_py_gev", "STRAW1_pz_gev"]].to_numpy(float)
    if not recon.smearing or not len(p):
        return p
    u = uniforms(recon.seed, tracks["rng_key"].to_numpy(np.int64), 6, stream="smearing")
    n = np.column_stack([normals(u[:, 0], u[:, 1]), normals(u[:, 2], u[:, 3]),
                         normals(u[:, 4], u[:, 5])])
    return smear(p, Smearing(), n)


def _pairs(tracks: pd.DataFrame, selection: dict) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of step 3 as positions into ``tracks``."""
    a, b = _pair_indices(tracks["interaction"].to_numpy())
    q = tracks["charge"].to_numpy(float)
    part = tracks["particle"].to_numpy()
    keep = part[a] != part[b]
    if selection.get("opposite_charges", True):
        keep &= q[a] * q[b] < 0
    return a[keep], b[keep]


def _measure_pairs(tracks, a, b, recon: Reconstruction) -> dict:
    """Vertex, CDA, Z_TAX, CDA_TAX, mass and momenta of pairs (a, b)."""
    p = _measured_momenta(tracks, recon)
    x = np.column_stack([tracks["STRAW1_x_m"].to_numpy(float),
                         tracks["STRAW1_y_m"].to_numpy(float),
                         np.full(len(tracks), recon.straw1_z_m)])
    p1, p2 = p[a], p[b]
    vertex, cda = two_track_vertex(x[a], p1, x[b], p2)
    z_tax, cda_tax = pointing(vertex, p1 + p2, recon.axis_point, recon.axis_direction)
    ident = tracks["identity"].to_numpy(object)
    mass = np.where(np.isin(ident, list(MUON_IDENTITIES)), MUON_MASS_GEV, PION_MASS_GEV)
    return {"p1_gev": np.linalg.norm(p1, axis=1), "p2_gev": np.linalg.norm(p2, axis=1),
            "vertex_z_m": vertex[:, 2], "cda_m": cda, "z_tax_m": z_tax,
            "cda_tax_m": cda_tax,
            "mass_gev": invariant_mass(p1, p2, mass[a], mass[b])}


def _passes(m: dict, tracks, a, b, cats, selection: dict) -> np.ndarray:
    """Selection cuts of step 5 on measured pairs."""
    p_min, p_max = selection["track_p_min_gev"], selection.get("track_p_max_gev", 1e9)
    ok = (p_min <= m["p1_gev"]) & (m["p1_gev"] <= p_max)
    ok &= (p_min <= m["p2_gev"]) & (m["p2_gev"] <= p_max)
    ok &= (selection["fiducial_z_min_m"] <= m["vertex_z_m"]) \
        & (m["vertex_z_m"] <= selection["fiducial_z_max_m"])
    ok &= ~(m["cda_m"] > selection["cda_max_m"])
    muon_id = tracks["muon_id"].to_numpy(bool)
    n_id = muon_id[a].astype(int) + muon_id[b].astype(int)
    need = selection["muon_id"]
    ok &= ~(((need == "both") & (n_id < 2) & (cats == "mu-mu"))
            | ((need == "one") & (n_id < 1)))
    return ok


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
    tracks = spectrometer_tracks(det, inter, recon.straws)
    if sel.get("exactly_two_tracks", True):
        tracks = _exactly_two(tracks)
    a, b = _pairs(tracks, sel)
    ident = tracks["identity"].to_numpy(object)
    cats = category(ident[a], ident[b])
    wf = tracks["weight_factor"].to_numpy(float)
    factor = wf[a] * wf[b]
    iid = tracks["interaction"].to_numpy()[a]
    pairs = _pairs_frame(iid, cats, factor, inter, scale)
    if not len(a):
        return _empty_candidates(), pairs
    m = _measure_pairs(tracks, a, b, recon)
    ok = _passes(m, tracks, a, b, cats, sel)
    if not ok.any():
        return _empty_candidates(), pairs
    muon_id = tracks["muon_id"].to_numpy(bool)
    c = pd.DataFrame({"interaction": iid, "category": cats, "factor": factor,
                      "muon_ids": muon_id[a].astype(int) + muon_id[b].astype(int),
                      **m})[ok]
    # per interaction, the passing pair with the smallest CDA (first on ties)
    c = c.sort_values(["interaction", "cda_m"], kind="stable") \
        .drop_duplicates("interaction", keep="first").reset_index(drop=True)
    i = inter.set_index("interaction").loc[c["interaction"]]
    for col in ("zone", "process", "track_index", "sample_index"):
        c[col] = i[col].to_numpy()
    c["weight"] = i["weight"].to_numpy() * c["factor"] * scale
    c["region"] = regions.classify(c["z_tax_m"], c["cda_tax_m"])
    return c[CANDIDATE_COLUMNS], pairs
