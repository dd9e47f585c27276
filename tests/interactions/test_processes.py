"""Secondary-interaction modules: reference rates, consistency with PUMAS's
stopping power, energy and charge conservation, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from backtrace.cli import main
from backtrace.interactions import PROCESSES, build_tables, decay, interaction_table
from backtrace.interactions.bremsstrahlung import gamma_to_mumu_cross_section_m2
from backtrace.pumas.dcs import dcs, dcs_range

M_MU = 0.1056583755
NA = 6.02214076e23


@pytest.fixture(scope="module")
def iron_tables(physics):
    return build_tables(physics, "iron", 1.0)


def _b_iron(process, k):
    lo, hi = dcs_range(process, 26, k, mass_gev=M_MU)
    q = np.geomspace(max(lo, 1e-6), hi, 6000)
    d = dcs(process, 26, 55.845, k, q, mass_gev=M_MU)
    return NA / 55.845 * np.trapezoid(q * d, q) / (k + M_MU) * 1e4  # cm^2/g


# b(E) in iron at 100 GeV [1e-6 cm^2/g] (docs/physics.md, "Energy loss":
# integrals of PUMAS's default DCS models evaluated independently with a
# PUMAS build from source; PDG quotes b ≈ 3-4e-6 for rock at 100 GeV)
B_IRON_100 = {"bremsstrahlung": 2.25, "pair_production": 3.13, "photonuclear": 0.36}


@pytest.mark.parametrize("process", sorted(B_IRON_100))
def test_energy_loss_coefficients_iron_100_gev(process):
    assert _b_iron(process, 100.0) / 1e-6 == pytest.approx(B_IRON_100[process], rel=0.10)


def test_b_plus_ionisation_reproduces_pumas_stopping_power(physics):
    """a(E) + b(E) E from the DCSs and PUMAS's electronic stopping power
    equals PUMAS's total CSDA stopping power (iron, 20–400 GeV, 2 %)."""
    ffi, lib = physics.ffi, physics.lib
    z, a, w = ffi.new("double[]", [26.0]), ffi.new("double[]", [55.845]), ffi.new("double[]", [1.0])
    for k in (20.0, 100.0, 400.0):
        b = sum(_b_iron(p, k) for p in B_IRON_100)  # cm^2/g
        s_el = lib.bt_pumas.pumas_electronic_stopping_power(
            1, z, a, w, 286.0e-9, 7874.0, M_MU, k) * 1e4  # I in GeV; -> MeV cm2/g
        total = physics.stopping_power("iron", k) * 1e4
        assert s_el + b * (k + M_MU) * 1e3 == pytest.approx(total, rel=0.02)


# Interaction probabilities per metre of iron for a secondary above 1 GeV
# (docs/physics.md; computed independently from the PUMAS DRSS/SSR DCSs of a
# PUMAS build from source and from the PDG δ-ray formula).
REFERENCE_PER_M = {
    "photonuclear": {10: 9.4e-4, 50: 2.3e-3, 100: 3.0e-3, 400: 4.7e-3},
    "pair_production": {10: 3.0e-4, 50: 1.3e-2, 100: 4.4e-2, 400: 0.26},
    "knock_on": {10: 0.027, 50: 0.050, 100: 0.053, 400: 0.055},
}


@pytest.mark.parametrize("process", sorted(REFERENCE_PER_M))
def test_rates_per_metre_of_iron(physics, process):
    ref = REFERENCE_PER_M[process]
    rows = interaction_table(physics, "iron", sorted(ref))
    got = {r["kinetic_energy_gev"]: r["probability_per_m"] for r in rows
           if r["process"] == process}
    for k, value in ref.items():
        assert got[k] == pytest.approx(value, rel=0.05)


def test_gamma_to_mumu_bkk_cross_section():
    # BKK formula (Burkhardt, Kelner, Kokoulin, CERN-SL-2002-016) evaluated
    # independently for iron: 3.7, 39, 98, 136 μb (docs/physics.md)
    sigma_ub = gamma_to_mumu_cross_section_m2(np.array([1.0, 10.0, 100.0, 400.0]),
                                              26, 55.845) / 1e-34
    assert sigma_ub == pytest.approx([3.7, 39, 98, 136], rel=0.03)
    # ratio to e+e- conversion ~ (m_e/m_mu)^2 asymptotically (2.3e-5)
    sigma_ee_b = 7 / 9 * 55.845 / (NA * 13.84) * 1e24
    assert 1e-5 < sigma_ub[-1] * 1e-6 / sigma_ee_b < 4e-5


def test_pion_absorption_survival_10cm_iron():
    lam = decay.absorption_length_g_cm2("iron", "pion")
    assert lam == pytest.approx(132.1 / 0.77)
    grammage = 10 * 7.874
    assert decay.survival_probability("iron", grammage) == pytest.approx(
        np.exp(-grammage / lam), rel=1e-12)
    assert decay.survival_probability("iron", grammage) == pytest.approx(0.632, abs=0.01)


def test_pion_decay_probability():
    # 10 GeV pion: βγcτ = 10/0.13957 × 7.8045 m = 559 m
    assert decay.decay_length_m(10.0) == pytest.approx(559.2, rel=2e-3)
    assert decay.decay_probability(10.0, 1.0) == pytest.approx(1 / 559.2, rel=3e-3)


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_conservation_in_every_final_state(iron_tables, process, rng):
    module = PROCESSES[process]
    n = 3000
    k = 10 ** rng.uniform(0.7, 2.6, n)
    direction = rng.normal(size=(n, 3)) * [0.01, 0.01, 0] + [0, 0, 1]
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    charge = rng.choice([-1.0, 1.0], n)
    fs = module.sample(iron_tables[process], k, direction, charge,
                       rng.random((n, 8)))
    e_in = k + M_MU
    e_out = fs.muon[:, 0] + sum(p4[:, 0] for _, _, p4 in fs.particles)
    assert np.allclose(e_out, e_in, rtol=1e-9, atol=0)
    q_out = fs.muon_charge + sum(q for _, q, _ in fs.particles)
    assert np.array_equal(q_out, charge)
    assert np.all(fs.muon[:, 0] >= M_MU)
    for name, _, p4 in fs.particles:
        if name != "remnant":
            assert np.all(p4[:, 0] > 0) and np.all(np.isfinite(p4))
    if fs.weight is not None:
        assert np.all((fs.weight >= 0) & (fs.weight <= 1))


def test_sampled_transfers_follow_the_dcs(iron_tables, rng):
    """Mean pair energy from sampling equals the DCS-weighted mean."""
    tab = iron_tables["pair_production"]
    k = np.full(20000, 100.0)
    fs = PROCESSES["pair_production"].sample(tab, k, np.tile([0, 0, 1.0], (20000, 1)),
                                             np.ones(20000), rng.random((20000, 8)))
    q_sampled = fs.particles[0][2][:, 0] + fs.particles[1][2][:, 0]
    lo, hi = 1.0, dcs_range("pair_production", 26, 100.0, mass_gev=M_MU)[1]
    q = np.geomspace(lo, hi, 4000)
    d = dcs("pair_production", 26, 55.845, 100.0, q, mass_gev=M_MU)
    expected = np.trapezoid(q * d, q) / np.trapezoid(d, q)
    assert q_sampled.mean() == pytest.approx(expected, rel=0.03)


def test_interactions_table_cli(physics):
    r = CliRunner().invoke(main, ["interactions", "table", "--material", "iron",
                                  "--kinetic-energy", "10", "50", "100", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {row["process"] for row in rows} == set(PROCESSES)
    assert len(rows) == 3 * len(PROCESSES)
    for row in rows:
        assert row["probability_per_m"] == pytest.approx(
            row["probability_per_g_cm2"] * 787.4, rel=1e-9)
    bad = CliRunner().invoke(main, ["interactions", "table", "-m", "unobtainium",
                                    "-k", "10"])
    assert bad.exit_code == 1 and "unknown material" in bad.output


def test_gamma_to_mumu_conversion_is_the_mumu_share_of_all_conversions(physics):
    """A bremsstrahlung photon in a thick iron volume converts (to e⁺e⁻)
    within ~9/7 X0: P(μμ) = σ(γ→μμ)/σ(γ→all) = 98 μb (BKK, iron, 100 GeV)
    / 5.21 b ((7/9) A/(N_A X0), X0 = 13.84 g/cm², PDG) = 1.88e-5; a fixed
    0.5 m path (the former model) gave 22 times more."""
    from backtrace.interactions import bremsstrahlung as brems

    tab = brems.table(physics, "iron", 1.0)
    thick = brems.conversion_probability(tab, np.array([100.0]), np.array([1e4]))[0]
    assert thick == pytest.approx(98e-30 / 5.21e-24, rel=0.15)
    # a thin layer: P ≈ μ_μμ X (no competition); 1 mm of iron = 7.874 kg/m²
    x = 7.874 * 1e-3 * 1e3 / 1e3
    thin = brems.conversion_probability(tab, np.array([100.0]), np.array([x]))[0]
    assert thin == pytest.approx(brems.mumu_attenuation_m2_kg(tab, 100.0) * x, rel=0.05)
    # more matter ahead, more conversions, up to the μμ share
    xs = np.array([0.0, 10.0, 100.0, 1000.0])
    p = brems.conversion_probability(tab, np.full(4, 100.0), xs)
    assert p[0] == 0 and np.all(np.diff(p) > 0) and p[-1] < thick * 1.0001


def test_forced_bremsstrahlung_sees_the_matter_left_in_its_volume(physics):
    """The sampler passes the grammage from the interaction point to the
    volume's downstream exit: a history that enters a 0.5 m iron block from
    downstream (backward) gets weights between 0 and the thick limit, and
    the mean over uniform points equals the analytic average."""
    import pandas as pd

    from backtrace.interactions.forced import ForcedConfig, ForcedSampler, segments

    n = 400
    rows = []
    for h in range(n):
        for i, (z, g, vol, mat) in enumerate([(150.5, 0.0, "block", "iron"),
                                              (150.0, 3937.0, "fill", "vacuum"),
                                              (140.0, 3937.0, "fill", "vacuum")]):
            rows.append({"track_index": h, "sample_index": 0, "state_index": i,
                         "x_m": 0.3, "y_m": 0.0, "z_m": z, "ux": 0.0, "uy": 0.0, "uz": 1.0,
                         "kinetic_energy_gev": 100.0, "charge": 1.0, "volume": vol,
                         "material": mat, "grammage_kg_m2": g})
    states = pd.DataFrame(rows)
    seg = segments(states)
    assert list(seg["grammage_exit_kg_m2"]) == [0.0] * n   # the exit is at z = 150.5 m
    sampler = ForcedSampler(physics, ForcedConfig(processes=("bremsstrahlung",),
                                                  z_min_m=100.0, z_max_m=183.5))
    inter, prods = sampler.sample(states, seed=3)
    w = (inter["weight"] / inter["probability"]).to_numpy()
    from backtrace.interactions import bremsstrahlung as brems

    tab = brems.table(physics, "iron", 1.0)
    # the photon energy is the pair's; the iron ahead is (150.5 m − z) ρ
    pair = prods[~prods["scattered"]].groupby("interaction")["e_gev"].sum()
    q = pair.reindex(inter["interaction"]).to_numpy()
    x_left = (150.5 - inter["z_m"].to_numpy()) * 7874.0
    expected = brems.conversion_probability(tab, q, x_left)
    np.testing.assert_allclose(w, expected, rtol=1e-9)
    assert (x_left < 50).sum() > 0 and (w[x_left < 50] < brems.conversion_probability(
        tab, q[x_left < 50], np.full((x_left < 50).sum(), 1e6))).all()
