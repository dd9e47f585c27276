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
