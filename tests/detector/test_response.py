"""Detector response: vetoes (products, incoming muon, inefficiencies as
weights), muon identification (MUV3, E/p, punch-through), the LKr energy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from backtrace.beamline.geometry import GeometryError, load_geometry
from backtrace.detector.candidates import Reconstruction, build_candidates
from backtrace.detector.response import Response
from backtrace.interactions.products import ProductTransport
from backtrace.paths import crossing_runs
from backtrace.regions import load_regions

LAVS = [f"LAV{i}" for i in range(1, 13)]


@pytest.fixture(scope="module")
def selection():
    return load_regions(None).selection


@pytest.fixture(scope="module")
def response(beamline, selection):
    return Response.from_geometry(beamline.geometry, selection, seed=1)


def _with_inefficiency(response, value):
    return replace(response, vetoes=tuple(replace(v, inefficiency=value)
                                          for v in response.vetoes))


def _product(x=0.0, y=0.0, z=130.0, p=20.0, theta_x=0.0, name="mu+", charge=1.0,
             particle=2, interaction=0):
    pz = p / np.sqrt(1 + theta_x ** 2)
    return {"interaction": interaction, "particle": particle, "name": name,
            "charge": charge, "e_gev": p, "px_gev": pz * theta_x, "py_gev": 0.0,
            "pz_gev": pz, "scattered": False, "x_m": x, "y_m": y, "z_m": z}


def _transport(beamline, response, rows):
    prods = pd.DataFrame(rows)
    inter = pd.DataFrame({"interaction": sorted(prods["interaction"].unique()),
                          "track_index": 7, "sample_index": 0})
    return ProductTransport(beamline, seed=1, response=response).transport(prods, inter)


def test_the_mumu_selection_uses_the_twelve_lavs_with_sources(response):
    assert [v.name for v in response.vetoes] == sorted(LAVS)
    for v in response.vetoes:
        assert v.volume == f"{v.name}/lead_glass"
        assert 1e-4 <= v.inefficiency <= 1e-2
        assert v.estimated and "[est" in v.source


def test_an_unknown_veto_is_named(beamline, selection):
    with pytest.raises(GeometryError, match="LAV99"):
        Response.from_geometry(beamline.geometry, {**selection, "vetoes": ["LAV99"]}, 1)


def test_crossing_runs_join_consecutive_states_of_one_volume():
    states = pd.DataFrame({
        "track_index": [1, 1, 1, 1, 1, 2, 2],
        "sample_index": 0, "state_index": [0, 1, 2, 3, 4, 0, 1],
        "volume": ["A", "A", "x", "A", "x", "x", "A"],
        "z_m": [10.0, 10.5, 11.0, 20.0, 21.0, 5.0, 6.0]})
    runs = crossing_runs(states, {"A": 0.0})
    assert list(runs["track_index"]) == [1, 1, 2]
    assert list(runs["at_start"]) == [True, False, False]
    assert runs["z_lo_m"].tolist() == [10.0, 20.0, 6.0]
    assert runs["z_hi_m"].tolist() == [11.0, 21.0, 6.0]


def test_a_product_crossing_lav3_vetoes_the_event(beamline, response):
    """A 20 GeV μ+ from the axis at z = 130 m, 0.1 rad outwards, meets LAV3's
    lead glass (r = 0.5365-0.9065 m at z = 136.6-137.2 m) at r ≈ 0.67 m
    and no other veto before it leaves the tank: its survival is ε_LAV3."""
    row = _transport(beamline, response, [_product(theta_x=0.1)]).iloc[0]
    assert row["veto_log_survival"] == pytest.approx(np.log(1e-3))
    on_axis = _transport(beamline, response, [_product(theta_x=0.0)]).iloc[0]
    assert on_axis["veto_log_survival"] == 0.0          # in the beam pipe: no veto


def _two_muons_and(extra: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A clean μ+μ− pair from (0, 0, 150 m) read out at the STRAWs, plus the
    detector rows ``extra`` of a third product of the same interaction."""
    rows = []
    for part, (x, q, pz) in enumerate([(0.3, 1.0, 40.0), (-0.3, -1.0, 30.0)]):
        row = {"interaction": 0, "particle": part, "identity": "mu", "name": "mu",
               "charge": q, "status": "reached_target", "weight_factor": 1.0,
               "muv3_hit": True, "veto_log_survival": 0.0, "e_over_p": 0.01,
               "punch_through": 0.0, "STRAW1_px_gev": x / 33.5 * pz,
               "STRAW1_py_gev": 0.0, "STRAW1_pz_gev": pz}
        for s in ("STRAW1", "STRAW2", "STRAW3", "STRAW4"):
            row[f"{s}_x_m"], row[f"{s}_y_m"] = x, 0.05
        rows.append(row)
    det = pd.concat([pd.DataFrame(rows), extra], ignore_index=True)
    inter = pd.DataFrame({"interaction": [0], "track_index": [7], "sample_index": [0],
                          "repeat": [0], "weight": [0.5], "zone": ["prompt"],
                          "process": ["mumu_pair"], "volume": ["LAV3"], "z_m": [150.0]})
    return det, inter


@pytest.mark.parametrize("inefficiency, kept", [(1.0, 1.0), (1e-3, 1e-3), (0.0, 0.0)])
def test_the_veto_weight_follows_the_inefficiency(beamline, response, inefficiency, kept):
    """The third product crosses LAV3 and misses the spectrometer: the pair
    survives with the LAV3 inefficiency (1 keeps the event, 0 rejects it),
    times the MUV3 efficiency of each muon."""
    r = _with_inefficiency(response, inefficiency)
    extra = _transport(beamline, r, [_product(theta_x=0.1)])
    det, inter = _two_muons_and(extra)
    recon = replace(Reconstruction.from_beamline(beamline, 1, response=r), smearing=False)
    cands, _ = build_candidates(det, inter, 1.0, load_regions(None), recon)
    weight = cands["weight"].sum() if len(cands) else 0.0
    assert weight == pytest.approx(0.5 * r.muon_efficiency ** 2 * kept, rel=1e-9)
    if kept:
        assert cands["veto_survival"].iloc[0] == pytest.approx(kept)


def test_a_selection_without_vetoes_ignores_lav_crossings(beamline, selection):
    r = Response.from_geometry(beamline.geometry, {**selection, "vetoes": []}, 1)
    assert r.vetoes == ()
    row = _transport(beamline, r, [_product(theta_x=0.1)]).iloc[0]
    assert row["veto_log_survival"] == 0.0


@pytest.fixture(scope="module")
def wide_muon_states(beamline):
    """Backward trace of a 200 GeV μ+ seen at STRAW1 at r = 0.95 m, pointing
    to the dump: its straight line crosses the lead glass of LAV1-LAV8
    (r = 0.58-0.94 m there, ≥ 4 cm inside every ring; multiple scattering
    in 8 × 0.59 m of lead glass moves it by ~1 cm at 200 GeV)."""
    from backtrace.transport import TraceConfig, Tracer

    z1, z_tax = 183.52, 23.07
    tx = 0.95 / (z1 - z_tax)
    pz = 200.0 / np.sqrt(1 + tx ** 2)
    tracks = pd.DataFrame({"x_m": [0.95], "y_m": [0.0], "z_m": [z1], "px_gev": [pz * tx],
                           "py_gev": [0.0], "pz_gev": [pz], "charge": [1.0], "track_index": [0]})
    tracer = Tracer(TraceConfig(samples_per_track=1, seed=2, record=True, to_z_m=100.0),
                    beamline)
    return tracer.trace(tracks).states


def test_the_incoming_muon_vetoes_upstream_of_its_interaction(response, wide_muon_states):
    """Only the LAVs the muon crossed upstream of the interaction count: an
    interaction at z = 140 m sees LAV1-3, one at 110 m none, one at 175 m
    LAV1-7 (its straight line is in the lead glass of each)."""
    geo_lavs = {v.name: v for v in response.vetoes}
    inter = pd.DataFrame({"track_index": 0, "sample_index": 0,
                          "z_m": [110.0, 140.0, 175.0]})
    got = response.incoming_log_survival(wide_muon_states, inter)
    log_eps = np.log(geo_lavs["LAV1"].inefficiency)
    np.testing.assert_allclose(got, [0.0, 3 * log_eps, 7 * log_eps], rtol=1e-9)


def test_the_incoming_muon_with_inefficiency_one_is_not_vetoed(response, wide_muon_states):
    r = _with_inefficiency(response, 1.0)
    inter = pd.DataFrame({"track_index": [0], "sample_index": [0], "z_m": [175.0]})
    assert r.incoming_log_survival(wide_muon_states, inter)[0] == 0.0


def test_muon_identification_needs_muv3_and_a_small_e_over_p(response):
    got = response.muon_id_probability(
        identity=["mu", "mu", "mu", "mu_from_pi", "pi", "e"],
        muv3_hit=[True, False, True, True, True, False],
        e_over_p=[0.01, 0.01, 0.5, 0.02, 0.02, 1.0],
        punch_through=[0.0, 0.0, 0.0, 0.0, 2e-5, 0.0])
    eff = response.muon_efficiency
    assert 0.9 < eff <= 1.0
    np.testing.assert_allclose(got, [eff, 0.0, 0.0, eff, eff * 2e-5, 0.0])


def test_a_muon_deposits_a_mip_in_the_lkr_and_passes_the_e_over_p_cut(beamline, response):
    """200 μ of 30 GeV through the LKr (1.41 m of krypton, 2.41 t/m³, ~1.6
    MeV cm²/g: ~0.54 GeV mean ionisation, plus radiative tails): median
    deposit 0.5–1 GeV, E/p below the cut for nearly all, every one in MUV3."""
    prods = pd.DataFrame([_product(x=0.5, z=230.0, p=30.0, interaction=i)
                          for i in range(200)])
    # one history per muon: distinct product keys, independent random streams
    inter = pd.DataFrame({"interaction": np.arange(200), "track_index": np.arange(200),
                          "sample_index": 0})
    out = ProductTransport(beamline, seed=1, response=response).transport(prods, inter)
    assert 0.5 < out["lkr_energy_gev"].median() < 1.0
    assert (out["e_over_p"] < response.muon_id_ep_max).mean() > 0.95
    assert out["muv3_hit"].all()


def test_a_pion_punches_through_with_the_hadronic_depth_behind_the_straws(
        beamline, response):
    """exp(−ΣX/λ_π) over LKr, MUV1, MUV2 and the iron wall: ~1e-6-1e-4."""
    out = _transport(beamline, response, [_product(x=0.5, z=230.0, p=30.0, name="pi",
                                                   charge=1.0)])
    pi = out[out["identity"] == "pi"].iloc[0]
    assert 1e-7 < pi["punch_through"] < 1e-3
    assert out[out["identity"] == "mu_from_pi"]["punch_through"].iloc[0] == 0.0


def test_the_lkr_resolution_smears_reproducibly(response):
    e = np.full(2000, 10.0)
    keys = np.arange(2000)
    a = response.smeared_energy(e, keys)
    np.testing.assert_array_equal(a, response.smeared_energy(e, keys))
    stoch, noise, const = response.lkr_resolution
    sigma = np.sqrt(stoch ** 2 * 10.0 + noise ** 2 + (const * 10.0) ** 2)
    assert np.std(a) == pytest.approx(sigma, rel=0.08)


def test_the_record_lists_vetoes_and_inefficiencies(response):
    cfg = response.config()
    assert [v["name"] for v in cfg["vetoes"]] == sorted(LAVS)
    assert all({"inefficiency", "source", "estimated", "volume"} <= set(v)
               for v in cfg["vetoes"])
    assert cfg["muon_id"]["e_over_p_max"] == response.muon_id_ep_max


def test_an_override_changes_one_inefficiency(selection):
    geometry = load_geometry(overrides=["LAV3.detector.inefficiency=0.5"])
    r = Response.from_geometry(geometry, selection, 1)
    eps = {v.name: v.inefficiency for v in r.vetoes}
    assert eps["LAV3"] == 0.5 and eps["LAV4"] == pytest.approx(1e-3)


@pytest.fixture(scope="module")
def ee_selection():
    return load_regions(None, channel="ee").selection


@pytest.fixture(scope="module")
def ee_response(beamline, ee_selection):
    return Response.from_geometry(beamline.geometry, ee_selection, seed=1)


def test_the_ee_selection_vetoes_muv3_anti0_and_the_lavs(ee_response):
    """MUV3 vetoes with 1 − its muon efficiency; LAV and ANTI0 form the η of
    the factorised estimate, MUV3 does not; ANTI0 is an in-time veto, so
    the upstream-activity rule adds no detector."""
    by_name = {v.name: v for v in ee_response.vetoes}
    assert sorted(by_name) == sorted(LAVS + ["ANTI0", "MUV3"])
    assert by_name["MUV3"].inefficiency == pytest.approx(1 - ee_response.muon_efficiency)
    assert by_name["MUV3"].volume == "MUV3" and not by_name["MUV3"].eta
    assert by_name["ANTI0"].eta and all(by_name[n].eta for n in LAVS)
    assert ee_response.muv3_is_veto and ee_response.upstream == ()
    assert ee_response.config()["upstream_activity"]["detectors"] == ["ANTI0"]


def test_a_veto_needs_an_inefficiency_or_an_efficiency(beamline, ee_selection):
    with pytest.raises(GeometryError, match="STRAW1"):
        Response.from_geometry(beamline.geometry, {**ee_selection, "vetoes": ["STRAW1"]}, 1)


@pytest.mark.parametrize("p_gev, inside, outside", [(20.0, 0.94, 0.93), (150.0, 0.94, 0.93),
                                                    (250.0, 0.81, 0.80)])
def test_electron_identification_follows_the_momentum_dependent_window(
        ee_response, ee_selection, p_gev, inside, outside):
    """1 − 0.0013 max(p − 100, 50) < E/p < 1.05: 0.935 up to 150 GeV/c, 0.805
    at 250 GeV/c; a MUV3 hit costs nothing more when MUV3 is an in-time veto
    (its miss is already in the veto weight)."""
    got = ee_response.electron_id_probability(
        muv3_hit=[False, False, False, True], e_over_p=[inside, outside, 1.06, inside],
        p_gev=p_gev, selection=ee_selection)
    np.testing.assert_array_equal(got, [1.0, 0.0, 0.0, 1.0])
    no_muv3_veto = replace(ee_response, vetoes=tuple(v for v in ee_response.vetoes
                                                     if v.name != "MUV3"))
    got = no_muv3_veto.electron_id_probability([True], [inside], p_gev, ee_selection)
    assert got[0] == pytest.approx(1 - ee_response.muon_efficiency)


def test_the_eta_share_of_a_product_veto(beamline, ee_response):
    """The μ+ through LAV3's lead glass: its survival is ε_LAV3, all of it in
    the η of the factorised estimate; a muon down the axis to MUV3 is
    vetoed by MUV3 (ε = 0.005), none of it in the η."""
    row = _transport(beamline, ee_response, [_product(theta_x=0.1)]).iloc[0]
    assert row["veto_log_survival"] == pytest.approx(np.log(1e-3))
    assert row["veto_log_survival_eta"] == pytest.approx(np.log(1e-3))
    to_muv3 = _transport(beamline, ee_response, [_product(x=0.5, z=230.0, p=30.0)]).iloc[0]
    assert bool(to_muv3["muv3_hit"])
    assert to_muv3["veto_log_survival"] == pytest.approx(np.log(0.005))
    assert to_muv3["veto_log_survival_eta"] == 0.0


def test_the_incoming_muon_records_its_eta_share(ee_response, wide_muon_states):
    """Upstream of z = 140 m the wide muon crossed ANTI0 (at r ≈ 0.5 m,
    ε = 0.01) and LAV1-3 (ε = 1e-3 each): all of it in the η."""
    inter = pd.DataFrame({"track_index": 0, "sample_index": 0, "z_m": [140.0],
                          "weight": [2.0]})
    out = ee_response.with_incoming_vetoes(wide_muon_states, inter)
    log3 = 3 * np.log(1e-3) + np.log(0.01)
    assert out["weight"].iloc[0] == pytest.approx(2.0 * np.exp(log3))
    assert out["incoming_log_survival_eta"].iloc[0] == pytest.approx(log3)
