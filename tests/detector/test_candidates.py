"""Two-track candidates: the vectorised builder against a pair-by-pair
reference loop, and the rules it applies (exactly two tracks, one track per
pion, opposite charges, smallest CDA, muon identification)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.detector import pointing, smear, two_track_vertex
from backtrace.detector.candidates import (
    MUON_IDENTITIES,
    Reconstruction,
    _pair_indices,
    build_candidates,
    category,
)
from backtrace.detector.reconstruction import Smearing
from backtrace.regions import load_regions
from backtrace.rng import normals, product_key, uniforms

STRAWS = ("STRAW1", "STRAW2", "STRAW3", "STRAW4")
RECON = Reconstruction(STRAWS, 183.508, np.array([0.0, -0.022, 23.07]),
                       np.array([0.0, 0.0, 1.0]), seed=3)


def _det(rows):
    """Detector read-out rows: (interaction, particle, identity, charge,
    x, y, px, py, pz[, muv3, weight_factor, status])."""
    out = []
    for r in rows:
        it, part, ident, q, x, y, px, py, pz = r[:9]
        muv3 = r[9] if len(r) > 9 else ident in MUON_IDENTITIES
        wf = r[10] if len(r) > 10 else 1.0
        status = r[11] if len(r) > 11 else "reached_target"
        row = {"interaction": it, "particle": part, "identity": ident, "charge": q,
               "name": ident, "status": status, "weight_factor": wf, "muv3_hit": muv3,
               "STRAW1_px_gev": px, "STRAW1_py_gev": py, "STRAW1_pz_gev": pz}
        for s in STRAWS:
            row[f"{s}_x_m"], row[f"{s}_y_m"] = x, y
        out.append(row)
    return pd.DataFrame(out)


def _inter(n):
    return pd.DataFrame({"interaction": np.arange(n), "track_index": 10 + np.arange(n),
                         "sample_index": np.zeros(n, int), "repeat": np.zeros(n, int),
                         "weight": 0.5 + np.arange(n), "zone": "prompt",
                         "process": "mumu_pair", "volume": "TAX", "z_m": 23.0})


def _reference(det, inter, scale, regions, recon):
    """Pair-by-pair loop over the documented rules (independent of the
    vectorised code): reconstructed tracks cross >= 3 chambers, selected
    ones 4; a pair's weight holds P(no other product reconstructed)."""
    sel = regions.selection
    ok = det["status"].isin(["reached_target", "left_world", "stopped"]) \
        & (det["weight_factor"] > 0)
    n_ch = sum(((np.hypot(det[f"{s}_x_m"], det[f"{s}_y_m"]) > 0.1)
                & (np.hypot(det[f"{s}_x_m"], det[f"{s}_y_m"]) < 1.0)).astype(int)
               for s in STRAWS)
    t = det[ok & (n_ch >= sel["reconstructable_min_chambers"])].copy()
    t["n_ch"] = n_ch[ok & (n_ch >= sel["reconstructable_min_chambers"])]
    h = inter.set_index("interaction").loc[t["interaction"]]
    t["key"] = product_key(h["track_index"], h["sample_index"], h["repeat"], t["particle"])
    rows = []
    for iid, g in t.groupby("interaction"):
        p_reco = {part: min(1.0, gg["weight_factor"].sum()) for part, gg in g.groupby("particle")}
        items = g.to_dict("records")
        for ia in range(len(items)):
            for ib in range(ia + 1, len(items)):
                t1, t2 = items[ia], items[ib]
                if t1["charge"] * t2["charge"] >= 0 or t1["particle"] == t2["particle"]:
                    continue
                if min(t1["n_ch"], t2["n_ch"]) < sel["straw_chambers"]:
                    continue
                absent = 1.0
                for part, pc in p_reco.items():
                    if part not in (t1["particle"], t2["particle"]):
                        absent *= 1.0 - pc
                factor = t1["weight_factor"] * t2["weight_factor"] * absent
                if factor == 0:
                    continue
                ps = []
                for tr in (t1, t2):
                    u = uniforms(recon.seed, [tr["key"]], 6, stream="smearing")
                    n = np.column_stack([normals(u[:, 0], u[:, 1]), normals(u[:, 2], u[:, 3]),
                                         normals(u[:, 4], u[:, 5])])
                    p = np.array([[tr["STRAW1_px_gev"], tr["STRAW1_py_gev"],
                                   tr["STRAW1_pz_gev"]]])
                    ps.append(smear(p, Smearing(), n))
                pm = [float(np.linalg.norm(p, axis=1)[0]) for p in ps]
                if not all(sel["track_p_min_gev"] <= m <= sel["track_p_max_gev"] for m in pm):
                    continue
                x1 = np.array([[t1["STRAW1_x_m"], t1["STRAW1_y_m"], recon.straw1_z_m]])
                x2 = np.array([[t2["STRAW1_x_m"], t2["STRAW1_y_m"], recon.straw1_z_m]])
                v, cda = two_track_vertex(x1, ps[0], x2, ps[1])
                if not sel["fiducial_z_min_m"] <= v[0, 2] <= sel["fiducial_z_max_m"] \
                        or cda[0] > sel["cda_max_m"]:
                    continue
                identified = [tr["identity"] in MUON_IDENTITIES and tr["muv3_hit"]
                              for tr in (t1, t2)]
                if sel["muon_id"] == "both" and not all(identified):
                    continue
                z, c = pointing(v, ps[0] + ps[1], recon.axis_point, recon.axis_direction)
                rows.append({"interaction": iid,
                             "category": category([t1["identity"]], [t2["identity"]])[0],
                             "cda_m": cda[0], "z_tax_m": z[0], "cda_tax_m": c[0],
                             "weight": inter.loc[iid, "weight"] * factor * scale})
    return pd.DataFrame(rows)


def _random_det(rng, n_inter):
    rows = []
    ident_choices = ["mu", "pi", "e", "mu_from_pi"]
    for it in range(n_inter):
        for part in range(rng.integers(2, 4)):
            ident = ident_choices[rng.integers(0, 4)]
            q = rng.choice([-1.0, 1.0])
            z0 = rng.uniform(110, 170)
            x0, y0 = rng.normal(0, 0.02, 2)
            px, py = rng.normal(0, 0.08, 2)
            pz = rng.uniform(5, 80)
            x = x0 + px / pz * (183.508 - z0)
            y = y0 + py / pz * (183.508 - z0)
            rows.append((it, part, ident, q, x, y, px, py, pz, bool(rng.random() < 0.8),
                         rng.uniform(0.2, 1.0)))
            if ident == "pi" and rng.random() < 0.5:   # the decayed outcome too
                rows.append((it, part, "mu_from_pi", q, x, y, px, py, pz, True, 0.3))
    return _det(rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorised_builder_equals_the_pair_by_pair_reference(seed):
    rng = np.random.default_rng(seed)
    det = _random_det(rng, 1000)
    inter = _inter(1000)
    regions = load_regions(None)
    cands, pairs = build_candidates(det, inter, 2.0, regions, RECON)
    ref = _reference(det, inter.set_index("interaction", drop=False), 2.0, regions, RECON)
    assert len(ref) > 10, "the random sample must give candidates"
    assert list(cands["interaction"]) == list(ref["interaction"])
    assert list(cands["category"]) == list(ref["category"])
    for col in ("cda_m", "z_tax_m", "cda_tax_m", "weight"):
        np.testing.assert_allclose(cands[col].to_numpy(float), ref[col].to_numpy(float),
                                   rtol=1e-12)
    assert len(pairs) >= len(cands)


def test_pair_indices_enumerate_every_pair_of_a_group_once():
    a, b = _pair_indices(np.array([4, 4, 4, 7, 9, 9]))
    assert list(zip(a, b)) == [(0, 1), (0, 2), (1, 2), (4, 5)]
    assert _pair_indices(np.array([1]))[0].size == 0


def _from_vertex(x, y, pz, vertex=(0.0, 0.0, 150.0)):
    """(x, y, px, py, pz) at STRAW1 of a straight track from ``vertex``."""
    dz = 183.508 - vertex[2]
    return x, y, (x - vertex[0]) / dz * pz, (y - vertex[1]) / dz * pz, pz


def test_categories_follow_the_true_identities():
    """NA62's table: μ-μ two true muons, μ-π a true muon and a true pion
    (here identified as a muon after decaying in flight), other the rest."""
    got = category(["mu", "mu", "mu_from_pi", "mu", "pi", "e"],
                   ["mu", "mu_from_pi", "mu", "pi", "mu_from_pi", "mu"])
    assert list(got) == ["mu-mu", "mu-pi", "mu-pi", "mu-pi", "other", "other"]


def _two_muons(extra=()):
    rows = [(0, 0, "mu", 1.0, *_from_vertex(0.3, 0.05, 40.0)),
            (0, 1, "mu", -1.0, *_from_vertex(-0.3, 0.05, 30.0)), *extra]
    return _det(rows), _inter(1)


def test_a_clean_two_muon_event_is_one_candidate():
    det, inter = _two_muons()
    cands, pairs = build_candidates(det, inter, 1.0, load_regions(None), RECON)
    assert len(cands) == 1 and cands["category"].iloc[0] == "mu-mu"
    assert cands["weight"].iloc[0] == pytest.approx(0.5)
    assert cands["vertex_z_m"].iloc[0] == pytest.approx(150.0, abs=1.0)  # smearing
    assert cands["region"].iloc[0] in ("SR", "CR", "outside")
    assert len(pairs) == 1


def test_a_third_track_removes_the_event_whatever_its_momentum():
    """A soft third product (2 GeV, far below the 10 GeV track cut) that the
    spectrometer reconstructs (3 chambers) vetoes the event; one that misses
    two chambers does not."""
    soft = (0, 2, "e", 1.0, *_from_vertex(0.45, -0.3, 2.0))
    det, inter = _two_muons([soft])
    det.loc[2, ["STRAW4_x_m", "STRAW4_y_m"]] = [3.0, 0.0]     # bent out after MNP33
    cands, pairs = build_candidates(det, inter, 1.0, load_regions(None), RECON)
    assert cands.empty and pairs.empty
    det.loc[2, ["STRAW3_x_m", "STRAW3_y_m"]] = [3.0, 0.0]     # now 2 chambers only
    cands, _ = build_candidates(det, inter, 1.0, load_regions(None), RECON)
    assert len(cands) == 1


def test_an_extra_pion_vetoes_with_its_survival_probability():
    """A third product that is a pion reconstructed with probability 0.7
    (its outcomes: 0.5 not decayed, 0.2 decayed): the two-muon event is kept
    with the weight of the pion being absent, 0.3."""
    pion = _from_vertex(0.5, 0.3, 20.0)
    det, inter = _two_muons([(0, 2, "pi", 1.0, *pion, False, 0.5),
                             (0, 2, "mu_from_pi", 1.0, *pion, True, 0.2)])
    cands, _ = build_candidates(det, inter, 1.0, load_regions(None), RECON)
    mumu = cands[cands["category"] == "mu-mu"]
    assert len(mumu) == 1 and mumu["weight"].iloc[0] == pytest.approx(0.5 * 0.3)


def test_both_tracks_need_the_muon_identification_in_every_category():
    """A true muon and a pion that decayed in flight (μ-π): selected only
    when both have a MUV3 hit; a muon and an electron (other): never."""
    pion = _from_vertex(-0.3, 0.05, 30.0)
    det, inter = _det([(0, 0, "mu", 1.0, *_from_vertex(0.3, 0.05, 40.0)),
                       (0, 1, "pi", -1.0, *pion, False, 0.6),
                       (0, 1, "mu_from_pi", -1.0, *pion, True, 0.4)]), _inter(1)
    cands, pairs = build_candidates(det, inter, 1.0, load_regions(None), RECON)
    # the pion outcome without a MUV3 hit cannot be identified: no pair of it
    # is kept for the limits; the decay-muon pair weighs what its candidate does
    assert list(pairs["category"]) == ["mu-pi"]
    assert list(cands["category"]) == ["mu-pi"] and list(cands["muon_ids"]) == [2]
    assert cands["weight"].iloc[0] == pytest.approx(0.5 * 0.4)
    assert pairs["weight"].iloc[0] == pytest.approx(cands["weight"].iloc[0])
    det.loc[2, "muv3_hit"] = False                 # the decay muon misses MUV3
    assert build_candidates(det, inter, 1.0, load_regions(None), RECON)[0].empty
    det, inter = _two_muons()
    det.loc[1, ["identity", "muv3_hit"]] = ["e", False]
    assert build_candidates(det, inter, 1.0, load_regions(None), RECON)[0].empty
    det.loc[0, "muv3_hit"] = False                 # and with both unidentified
    assert build_candidates(det, inter, 1.0, load_regions(None), RECON)[0].empty


def test_same_charge_pairs_are_not_candidates():
    det, inter = _two_muons()
    det.loc[1, "charge"] = 1.0
    cands, pairs = build_candidates(det, inter, 1.0, load_regions(None), RECON)
    assert cands.empty and pairs.empty


def test_tracks_outside_the_straw_annulus_do_not_count():
    det, inter = _two_muons()
    det.loc[0, ["STRAW3_x_m", "STRAW3_y_m"]] = [0.05, 0.0]   # in the beam hole
    cands, _ = build_candidates(det, inter, 1.0, load_regions(None), RECON)
    assert cands.empty


def _ee_pair(extra=()):
    rows = [(0, 1, "e", 1.0, *_from_vertex(0.3, 0.05, 40.0), False),
            (0, 2, "e", -1.0, *_from_vertex(-0.3, 0.05, 30.0), False), *extra]
    return _det(rows), _inter(1)


def test_an_electron_pair_is_an_e_e_candidate_of_the_ee_selection():
    """Two electrons from (0, 0, 150 m) (in the cones: 22 mm from the beam
    axis): one e-e candidate; an electron and a muon are 'other', and the
    muon (MUV3 hit, no E/p in the window) fails the electron identification."""
    ee = load_regions(channel="ee")
    det, inter = _ee_pair()
    cands, pairs = build_candidates(det, inter, 1.0, ee, RECON)
    assert list(cands["category"]) == ["e-e"] and list(pairs["category"]) == ["e-e"]
    assert cands["weight"].iloc[0] == pytest.approx(0.5)
    assert list(category(["e", "e", "mu"], ["e", "mu", "pi"], "ee")) == \
        ["e-e", "other", "other"]
    det.loc[0, ["identity", "muv3_hit"]] = ["mu", True]
    cands, pairs = build_candidates(det, inter, 1.0, ee, RECON)
    assert cands.empty and pairs.empty      # it cannot be identified: no limit input


def test_the_eta_veto_survival_of_a_candidate_holds_the_incoming_and_product_shares():
    """weight / eta_veto_survival is the weight before the η vetoes: here the
    incoming muon's η share (ε = 0.01) and one product's (ε = 1e-3); the
    products' total veto survival (1e-3 × 0.005) is in the weight."""
    det, inter = _ee_pair()
    det["veto_log_survival"] = [np.log(1e-3) + np.log(0.005), 0.0]
    det["veto_log_survival_eta"] = [np.log(1e-3), 0.0]
    inter["incoming_log_survival_eta"] = np.log(0.01)
    cands, _ = build_candidates(det, inter, 1.0, load_regions(channel="ee"), RECON)
    assert cands["eta_veto_survival"].iloc[0] == pytest.approx(1e-5)
    assert cands["weight"].iloc[0] == pytest.approx(0.5 * 5e-6)


def _upstream_response(radius_m=0.2):
    from backtrace.detector.response import Response, VetoDetector

    return Response(vetoes=(), muon_volume=None, muon_efficiency=1.0, lkr_volume=None,
                    lkr_resolution=(0.0, 0.0, 0.0), muon_id_ep_max=np.inf, seed=1,
                    upstream=(VetoDetector("ANTI0", "ANTI0", 0.01, True, ""),),
                    upstream_radius_m=radius_m, upstream_named=("ANTI0",))


@pytest.mark.parametrize("who, dx, z_hit, kept", [
    ("incoming", 0.1, 105.08, 0.01),     # 100 mm from track 1's extrapolation
    ("incoming", 0.25, 105.08, 1.0),     # 250 mm from it (and 0.55 m from track 2)
    ("incoming", 0.0, 160.0, 1.0),       # on the track, but downstream of the vertex
    ("product", 0.05, 105.08, 0.01),     # a third product's crossing near track 1
    ("none", 0.0, 0.0, 1.0)])
def test_upstream_activity_near_a_track_rejects_the_event(who, dx, z_hit, kept):
    """An e+e− pair from (0, 0, 150 m); a crossing of ANTI0 (not an in-time
    veto of this selection) by a charged particle of the event upstream of
    the vertex within 200 mm of the backward extrapolation of a selected
    track costs ANTI0's inefficiency (0.01); farther away, or downstream of
    the vertex, nothing."""
    from dataclasses import replace

    ee = load_regions(channel="ee")
    recon = replace(RECON, smearing=False, response=_upstream_response())
    x1 = 0.3 + 0.3 / (183.508 - 150.0) * (z_hit - 183.508)   # track 1 at z_hit
    y1 = 0.05 + 0.05 / (183.508 - 150.0) * (z_hit - 183.508)
    third = (0, 3, "e", 1.0, *_from_vertex(2.0, 2.0, 1.0), False)   # misses the STRAWs
    det, inter = _ee_pair([third])
    det = det.assign(e_over_p=1.0, punch_through=0.0)
    cols = ["upstream_ANTI0_x_m", "upstream_ANTI0_y_m", "upstream_ANTI0_z_m"]
    for c in cols:
        det[c], inter[c] = np.nan, np.nan
    if who == "incoming":
        inter.loc[0, cols] = [x1 + dx, y1, z_hit]
    elif who == "product":
        det.loc[2, cols] = [x1 + dx, y1, z_hit]
    cands, _ = build_candidates(det, inter, 1.0, ee, recon)
    assert len(cands) == 1
    assert cands["upstream_survival"].iloc[0] == pytest.approx(kept)
    assert cands["weight"].iloc[0] == pytest.approx(0.5 * kept)
