"""Dump source model: cross sections, normalisation of each component."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.beamline.geometry import load_geometry
from backtrace.constants import pdg_mass_ctau
from backtrace.source.hadroproduction import (
    BR_MU_NU,
    inelastic_cross_section_mb,
    meson_density,
    target_constants,
)
from backtrace.source.model import CHARM, SIGMA_CC_PER_NUCLEON_MB, SourceConfig, sample_source_muons


@pytest.fixture(scope="module")
def geometry():
    return load_geometry()


def _sum_weights(geometry, component, n=40_000, **cfg):
    fractions = {c: (1.0 if c == component else 0.0) for c in
                 ("pion", "kaon", "charm", "eta", "rho", "omega", "phi", "jpsi")}
    config = SourceConfig(event_fractions=fractions, muon_e_min_gev=0.0, **cfg)
    df = sample_source_muons(geometry, config, 5, np.arange(n), n)
    return df, float(df["weight"].sum())


def test_charm_normalisation_matches_cross_section(geometry):
    df, total = _sum_weights(geometry, "charm")
    # expected muons per POT: forward charm hadrons × ⟨BR⟩, in Cu (most
    # protons interact in the 0.81 m of copper) or Fe
    frac_cu = 1 - np.exp(-0.81 / 0.1532)
    per_material = {m: 2 * SIGMA_CC_PER_NUCLEON_MB * target_constants(m)[0]
                    / inelastic_cross_section_mb(m) * 0.5 for m in ("copper", "iron")}
    mean_br = sum(f * br for f, br, _ in CHARM.values()) / sum(f for f, _, _ in CHARM.values())
    expected = (frac_cu * per_material["copper"] + (1 - frac_cu) * per_material["iron"]) * mean_br
    assert total == pytest.approx(expected, rel=0.02)
    assert set(df["charge"]) == {-1.0, 1.0}


def test_pion_muon_yield_matches_integral(geometry):
    """Σ weights of π → μ muons = ∫ dN/dp_z dp_T × P(decay before
    absorption) × BR, integrated numerically (copper target)."""
    _, total = _sum_weights(geometry, "pion", n=60_000,
                            meson_p_min_gev=5.0)
    mass, ctau = pdg_mass_ctau("pion")
    rng = np.random.default_rng(3)
    m = 400_000
    pz = 5.0 * (400.0 / 5.0) ** rng.random(m)
    pt = 3.0 * rng.random(m)
    p = np.hypot(pz, pt)
    lam_abs = 137.3 / 8.96 / 100 / 0.77
    p_dec = lambda p: (1 / (p / mass * ctau)) / (1 / (p / mass * ctau) + 1 / lam_abs)  # noqa: E731
    jac = pz * np.log(80.0) * 3.0
    expected = 0.0
    for q in (+1, -1):
        expected += np.mean(meson_density("pion", p, pt, q, "copper", mass, 400.0) * p_dec(p) * jac)
    expected *= BR_MU_NU["pion"]
    # iron interactions (a few %) have a slightly different yield: 5 %
    assert total == pytest.approx(expected, rel=0.05)
    assert 1e-4 < total < 1e-2  # ~1e-3 muons per POT from pion decays


def test_source_points_inside_the_dump(geometry):
    df = sample_source_muons(geometry, SourceConfig(), 2, np.arange(5000), 5000)
    assert df["z_m"].min() > 23.07 and df["z_m"].quantile(0.99) < 24.5
    assert np.all(df["weight"] > 0)
    assert set(df["component"]) >= {"pion", "kaon", "charm", "eta"}


def test_component_scale_knob(geometry):
    base = sample_source_muons(geometry, SourceConfig(), 3, np.arange(3000), 3000)
    scales = {c: 1.0 for c in ("pion", "kaon", "charm", "eta", "rho", "omega",
                               "phi", "jpsi")}
    scales["charm"] = 2.0
    doubled = sample_source_muons(geometry, SourceConfig(scales=scales), 3,
                                  np.arange(3000), 3000)
    a = base.groupby("component")["weight"].sum()
    b = doubled.groupby("component")["weight"].sum()
    assert b["charm"] == pytest.approx(2 * a["charm"])
    assert b["pion"] == pytest.approx(a["pion"])


def test_batch_independence(geometry):
    all_ = sample_source_muons(geometry, SourceConfig(), 4, np.arange(1000), 1000)
    part = sample_source_muons(geometry, SourceConfig(), 4, np.arange(500, 1000), 1000)
    tail = all_[all_["event"] >= 500].reset_index(drop=True)
    assert np.allclose(tail[["x_m", "pz_gev", "weight"]], part[["x_m", "pz_gev", "weight"]])
