"""Forward transport of interaction products to the STRAW planes and MUV3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.interactions.products import ProductTransport, pion_absorption_length_kg_m2


@pytest.fixture(scope="module")
def transport(beamline):
    return ProductTransport(beamline)


def _one(name, charge, p, z, x=0.3, y=0.0, theta_x=0.0):
    pz = p / np.sqrt(1 + theta_x ** 2)
    prods = pd.DataFrame({"interaction": [0], "particle": [1], "name": [name],
                          "charge": [charge], "e_gev": [p], "px_gev": [pz * theta_x],
                          "py_gev": [0.0], "pz_gev": [pz], "scattered": [False],
                          "x_m": [x], "y_m": [y], "z_m": [z]})
    inter = pd.DataFrame({"interaction": [0], "track_index": [5], "sample_index": [0]})
    return prods, inter


def test_planes_of_the_shipped_geometry(transport):
    planes = transport.planes
    assert planes["STRAW1"] == pytest.approx(183.508)
    assert planes["STRAW4"] == pytest.approx(218.885)
    assert planes["MUV3"] == pytest.approx(246.8)


def test_muon_reaches_straws_and_muv3_with_mnp33_kick(transport):
    """A 50 GeV μ+ from z = 110 m, parallel to z at x = 0.5 m: straight to
    STRAW2 (vacuum), then the MNP33 kick of −0.2998·0.6928·1.3 GeV/c, and a
    MUV3 hit at x ≈ 0.23 m (at x = 0.3 m it would end in MUV3's beam hole)."""
    prods, inter = _one("mu+", 1.0, 50.0, 110.0, x=0.5)
    out = transport.transport(prods, inter)
    row = out.iloc[0]
    assert row["identity"] == "mu" and bool(row["muv3_hit"])
    assert row["STRAW1_x_m"] == pytest.approx(0.5, abs=1e-4)
    assert row["STRAW2_px_gev"] == pytest.approx(0.0, abs=2e-3)
    kick = -0.299792458 * 0.6928 * 1.3
    assert row["STRAW3_px_gev"] == pytest.approx(kick, rel=0.02)


def test_pion_weights_split_between_pion_and_decay_muon(transport):
    # 50 GeV π+ starting just upstream of the tank end cap at x = 0.2 m
    # (outside the beam pipe): it crosses the 20 mm iron plate, then flies
    # in vacuum inside the LAV rings; the STRAW mylar adds < 1 %
    prods, inter = _one("pi", 1.0, 50.0, 105.2, x=0.2)
    out = transport.transport(prods, inter)
    assert set(out["identity"]) == {"pi", "mu_from_pi"}
    w = out.set_index("identity")["weight_factor"]
    lam = pion_absorption_length_kg_m2("iron")
    # crossed 0.020 m of iron (7.874 t/m^3) in the end cap
    w_abs = w.sum()
    assert w_abs == pytest.approx(np.exp(-0.020 * 7874 / lam), rel=0.01)
    assert w_abs < np.exp(-0.020 * 7874 / lam)
    # decay probability over 78.3 m of flight at 50 GeV (βγcτ = 2796 m)
    assert w["mu_from_pi"] / w_abs == pytest.approx(-np.expm1(-78.3 / 2796.0), rel=0.05)
    assert not bool(out.set_index("identity").loc["pi", "muv3_hit"])


def test_electron_deep_in_iron_is_absorbed(transport):
    prods, inter = _one("e-", -1.0, 5.0, 100.3, x=0.08)  # inside the final collimator
    out = transport.transport(prods, inter)
    assert out.iloc[0]["status"] == "absorbed"


def test_backward_going_products_are_kept_with_a_status(transport):
    prods, inter = _one("e-", -1.0, 1.0, 150.0)
    prods.loc[0, "pz_gev"] = -0.5
    out = transport.transport(prods, inter)
    assert out.iloc[0]["status"] == "backward_going"


def test_products_below_the_transport_cut_cannot_make_a_track(transport):
    """The bound TRACK_P_MIN_GEV holds: muons of 0.5 GeV/c from the decay
    volume, aimed anywhere into the STRAW1 annulus, cross at most two
    chambers (MNP33 bends them out); at 2 GeV/c some cross three or more."""
    from backtrace.detector.candidates import chambers_crossed
    from backtrace.interactions.products import TRACK_P_MIN_GEV

    rng = np.random.default_rng(5)
    n = 300

    def crossed(p):
        r, phi = rng.uniform(0.15, 0.95, n), rng.uniform(0, 2 * np.pi, n)
        z0 = 150.0
        tx, ty = r * np.cos(phi) / (183.5 - z0), r * np.sin(phi) / (183.5 - z0)
        pz = p / np.sqrt(1 + tx ** 2 + ty ** 2)
        prods = pd.DataFrame({"interaction": np.arange(n), "particle": 1, "name": "mu+",
                              "charge": rng.choice([-1.0, 1.0], n), "e_gev": p,
                              "px_gev": pz * tx, "py_gev": pz * ty, "pz_gev": pz,
                              "scattered": False, "x_m": 0.0, "y_m": 0.0, "z_m": z0})
        inter = pd.DataFrame({"interaction": np.arange(n), "track_index": np.arange(n),
                              "sample_index": 0})
        out = transport.transport(prods, inter)
        return chambers_crossed(out, ("STRAW1", "STRAW2", "STRAW3", "STRAW4"))

    assert TRACK_P_MIN_GEV == 0.5
    assert crossed(TRACK_P_MIN_GEV).max() <= 2
    assert (crossed(2.0) >= 3).any()


def test_bethe_heitler_keeps_e_to_the_minus_t_on_average():
    """−ln z ~ Gamma(t/ln 2): ⟨z⟩ = 2^(−t/ln 2) = e^(−t) and ⟨z²⟩ = 3^(−t/ln 2)
    (the definition of the radiation length, and the second moment of the
    Bethe–Heitler distribution), for thin and thick layers."""
    from backtrace.interactions.electrons import bethe_heitler_log_loss

    u = (np.arange(200000) + 0.5) / 200000           # a quasi-random grid
    for t in (0.0092, 0.3, 1.138, 5.0):
        z = np.exp(-bethe_heitler_log_loss(np.full(len(u), t), u))
        assert z.mean() == pytest.approx(np.exp(-t), rel=2e-3)
        assert (z ** 2).mean() == pytest.approx(3.0 ** (-t / np.log(2)), rel=5e-3)
    assert bethe_heitler_log_loss(np.zeros(3), [0.1, 0.5, 0.9]).tolist() == [0, 0, 0]


def _electrons(n, p, z, x):
    prods = pd.DataFrame({"interaction": np.arange(n), "particle": 1, "name": "e-",
                          "charge": -1.0, "e_gev": p, "px_gev": 0.0, "py_gev": 0.0,
                          "pz_gev": p, "scattered": False, "x_m": x, "y_m": 0.0, "z_m": z})
    inter = pd.DataFrame({"interaction": np.arange(n), "track_index": np.arange(n),
                          "sample_index": 0})
    return prods, inter


def test_an_electron_through_the_tank_end_cap_keeps_e_to_the_minus_t(transport):
    """30 GeV electrons born at the upstream face of the 20 mm iron end cap
    (t = 20 mm × 7.874 g/cm³ / 13.84 g/cm² = 1.138 X0): their mean momentum
    at STRAW1 is 30 e^(−1.138) GeV (+ < 1 % ionisation), with the broad
    Bethe–Heitler spread."""
    prods, inter = _electrons(600, 30.0, 105.5751, 0.4)
    out = transport.transport(prods, inter)
    p1 = np.sqrt(out["STRAW1_px_gev"] ** 2 + out["STRAW1_py_gev"] ** 2
                 + out["STRAW1_pz_gev"] ** 2).fillna(0.0)
    z = p1 / 30.0
    assert z.mean() == pytest.approx(np.exp(-1.138), abs=4 * z.std() / np.sqrt(len(z)))
    assert 0.15 < (z < 0.1).mean() < 0.35 and (z > 0.9).mean() < 0.1


def test_an_electron_showers_in_the_lkr_with_e_over_p_one(beamline):
    """30 GeV electrons from the decay volume (vacuum) through the
    spectrometer: E/p at 1 within the LKr resolution (~1.2 %), inside the
    e+e− identification window; no MUV3 hit and no MUV3 crossing (they stop
    in the krypton), so the ee selection's MUV3 veto keeps them."""
    from backtrace.detector.response import Response
    from backtrace.regions import electron_ep_window, load_regions

    sel = load_regions(channel="ee").selection
    r = Response.from_geometry(beamline.geometry, sel, 1)
    out = ProductTransport(beamline, response=r).transport(*_electrons(300, 30.0, 150.0, 0.4))
    ep = out["e_over_p"].to_numpy()
    assert np.mean(ep) == pytest.approx(1.0, abs=0.005)
    assert np.std(ep) == pytest.approx(0.012, rel=0.3)
    lo, hi = electron_ep_window(30.0, sel)
    assert np.mean((ep > lo) & (ep < hi)) > 0.99
    assert not out["muv3_hit"].any() and (out["veto_log_survival"] == 0).all()
    assert (out["status"] == "reached_target").all()
