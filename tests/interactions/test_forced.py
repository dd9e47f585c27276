"""Forced interactions along back-traced paths: normalisation, choice of the
point, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


from backtrace.interactions.forced import ForcedConfig, ForcedSampler, segments
from backtrace.tracks import Tracks
from backtrace.transport import TraceConfig, Tracer


@pytest.fixture(scope="module")
def traced(physics, sample_file):
    batch = next(Tracks.open(sample_file).iter_batches(120))
    return Tracer(TraceConfig(samples_per_track=2, seed=4)).trace(batch)


@pytest.fixture(scope="module")
def sampler(physics, beamline):
    return ForcedSampler(physics, ForcedConfig(z_max_m=beamline.first_tracker_z_m))


def test_probability_is_sum_of_sigma_dx(traced, sampler):
    cfg = sampler.config
    inter, _ = sampler.sample(traced.states, seed=1)
    seg = segments(traced.states)
    z = 0.5 * (seg["z_m_a"] + seg["z_m_b"])
    seg = seg[(z >= cfg.z_min_m) & (z <= cfg.z_max_m)
              & (seg["material"] != "vacuum")].reset_index(drop=True)
    p = sampler.segment_sigma(seg).sum(axis=1) * seg["dgrammage_kg_m2"]
    expected = p.groupby([seg["track_index"], seg["sample_index"]]).sum()
    got = inter.set_index(["track_index", "sample_index"])["probability"]
    assert np.allclose(got.sort_index(), expected[expected > 0].sort_index(), rtol=1e-12)
    assert (inter["z_m"] >= cfg.z_min_m).all() and (inter["z_m"] <= cfg.z_max_m).all()
    # expected numbers of interactions: positive, finite (can exceed 1)
    assert np.all(np.isfinite(inter["probability"])) and (inter["probability"] > 0).all()


def test_chosen_volumes_follow_their_probability(traced, sampler):
    """Repeating the forcing with many seeds, the frequency of each volume
    matches its share of the interaction probability (χ² test)."""
    seg = segments(traced.states)
    cfg = sampler.config
    z = 0.5 * (seg["z_m_a"] + seg["z_m_b"])
    seg = seg[(z >= cfg.z_min_m) & (z <= cfg.z_max_m)
              & (seg["material"] != "vacuum")].reset_index(drop=True)
    p = sampler.segment_sigma(seg).sum(axis=1) * seg["dgrammage_kg_m2"]
    share = (p / p.groupby([seg["track_index"], seg["sample_index"]]).transform("sum"))
    expected = share.groupby(seg["volume"]).sum()
    counts = pd.Series(0.0, index=expected.index)
    n_rep = 40
    for seed in range(n_rep):
        inter, _ = sampler.sample(traced.states, seed=seed + 100)
        counts = counts.add(inter["volume"].value_counts(), fill_value=0)
    expected = expected * n_rep
    big = expected > 20
    chi2 = ((counts[big] - expected[big]) ** 2 / expected[big]).sum()
    assert big.sum() >= 3
    assert chi2 < big.sum() + 5 * np.sqrt(2 * big.sum())


def test_weighted_rate_equals_analog_rate_in_thin_slab(physics):
    """Thin iron slab: the forced weight equals the analog interaction
    probability 1 − exp(−Σσ ρ L) to first order (< 1 % for 1 cm)."""
    from backtrace.interactions import interaction_table

    sampler = ForcedSampler(physics, ForcedConfig(z_min_m=0.0, z_max_m=10.0))
    n = 200
    states = pd.DataFrame({
        "track_index": np.repeat(np.arange(n), 2), "sample_index": 0,
        "state_index": np.tile([0, 1], n), "material": "iron", "volume": "slab",
        "x_m": 0.0, "y_m": 0.0, "z_m": np.tile([1.0, 1.01], n),
        "ux": 0.0, "uy": 0.0, "uz": 1.0, "kinetic_energy_gev": 50.0,
        "charge": 1.0, "grammage_kg_m2": np.tile([0.0, 78.74], n)})
    inter, prods = sampler.sample(states, seed=3)
    rows = [r for r in interaction_table(physics, "iron", [50.0])
            if r["process"] in sampler.config.processes]
    per_m = sum(r["probability_per_m"] for r in rows)
    analog = -np.expm1(-per_m * 0.01)
    assert inter["probability"].mean() == pytest.approx(analog, rel=0.01)
    # process shares follow the cross sections
    share = inter["process"].value_counts(normalize=True)
    for r in rows:
        if r["probability_per_m"] / per_m > 0.1:
            assert share[r["process"]] == pytest.approx(r["probability_per_m"] / per_m,
                                                       abs=0.1)


def test_deterministic_for_a_seed(traced, sampler):
    a, pa = sampler.sample(traced.states, seed=7)
    b, pb = sampler.sample(traced.states, seed=7)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pa, pb)
    # independent of how histories are split into batches
    half = traced.states[traced.states["track_index"] < traced.states["track_index"].median()]
    c, _ = sampler.sample(half, seed=7)
    merged = a.merge(c, on=["track_index", "sample_index"], suffixes=("", "_c"))
    assert len(merged) == len(c)
    assert np.allclose(merged["z_m"], merged["z_m_c"])
    assert (merged["process"] == merged["process_c"]).all()


def test_products_conserve_energy(traced, sampler):
    inter, prods = sampler.sample(traced.states, seed=2)
    e_in = inter.set_index("interaction")["kinetic_energy_gev"] + 0.1056583755
    e_out = prods.groupby("interaction")["e_gev"].sum()
    # photonuclear and knock-on remnants are not in the products
    visible = inter.set_index("interaction")["process"].isin(
        ["pair_production", "mumu_pair", "bremsstrahlung"])
    assert np.allclose(e_out[visible[visible].index], e_in[visible], rtol=1e-9)
    assert set(prods["name"]) <= {"mu", "mu+", "mu-", "e+", "e-", "pi"}


def test_unknown_process():
    with pytest.raises(KeyError, match="unknown process"):
        ForcedSampler(None, ForcedConfig(processes=("magic",)))


def test_prompt_and_upstream_prompt_split_at_the_decay_volume_entrance(traced, physics,
                                                                        beamline):
    """NA62's table separates interactions inside the decay volume (its end
    cap and walls included: prompt) from those upstream of it (final
    collimator, TRIM5, beam pipe, ANTI0: upstream-prompt). The default
    boundary is the geometry's decay-volume entrance, 105.095 m."""
    from backtrace.config import RunConfig

    boundary = RunConfig().prompt_boundary_m(beamline.geometry)
    assert boundary == pytest.approx(105.095)
    assert RunConfig(prompt_z_min_m=90.0).prompt_boundary_m(beamline.geometry) == 90.0
    sampler = ForcedSampler(physics, ForcedConfig(z_max_m=beamline.first_tracker_z_m,
                                                  prompt_z_min_m=boundary))
    inter = pd.concat([sampler.sample(traced.states, seed=s)[0] for s in range(1, 6)])
    prompt = inter["zone"] == "prompt"
    assert list(prompt) == list(inter["z_m"] >= boundary)
    assert prompt.any() and (~prompt).any()
    assert "final-collimator" in set(inter.loc[~prompt, "volume"])
    assert "tank-end-cap" in set(inter.loc[prompt, "volume"])


def _exact_and_repeats(sampler, traced, seed, n=48):
    """P_p = Σ σ_p ΔX per process over the window, and ``n`` independent
    forced samples (repeats) of the traced histories."""
    seg = sampler._window(traced.states)
    p_exact = (sampler.segment_sigma(seg) * seg["dgrammage_kg_m2"].to_numpy()[:, None]
               ).sum(axis=0)
    return p_exact, [sampler.sample(traced.states, seed=seed, repeat=r)[0] for r in range(n)]


@pytest.mark.parametrize("allocation", [None, {"photonuclear": 0.1, "pair_production": 0.2,
                                               "mumu_pair": 0.4, "bremsstrahlung": 0.1,
                                               "knock_on": 0.2}])
def test_stratified_forcing_is_unbiased_per_process(traced, physics, beamline, allocation):
    """E[Σ weight of process p] = P_p = Σ σ_p ΔX exactly, whatever the
    allocation (the weight P_p / q_p carries it): the mean over 48 repeats
    agrees within 4σ for the processes without a final-state weight, and is
    precise enough that dropping the 1/q_p would fail by far. The shares of
    the drawn processes follow the allocation."""
    config = ForcedConfig(z_max_m=beamline.first_tracker_z_m, allocation=allocation)
    p_exact, runs = _exact_and_repeats(ForcedSampler(physics, config), traced, seed=3)
    for j, name in enumerate(config.processes):
        if name not in ("pair_production", "mumu_pair", "knock_on"):
            continue
        sums = np.array([r.loc[r["process"] == name, "weight"].sum() for r in runs])
        if allocation is None and name == "mumu_pair":
            continue          # ~1e-4 of the draws: not measurable unstratified
        mean, err = sums.mean(), sums.std(ddof=1) / np.sqrt(len(sums))
        assert abs(mean - p_exact[j]) < 4 * err, name
        assert err < 0.1 * p_exact[j], name
        if allocation is not None:
            assert abs(allocation[name] * mean - p_exact[j]) > 5 * err   # without 1/q
    if allocation is not None:
        drawn = pd.concat(runs)["process"].value_counts(normalize=True)
        for name, share in allocation.items():
            assert drawn.get(name, 0.0) == pytest.approx(share, abs=0.02), name


def test_slice_strata_are_unbiased_per_stratum(traced, physics, beamline):
    """Strata process × 5 m slice, equal shares: E[Σ weight of stratum s]
    = P_s (σ_p ΔX summed over the segments with their mid point in the
    slice) for every stratum of the processes without a final-state
    weight, within 4σ over 48 repeats; without the weight P_s / q_s (q_s
    the per-history share) the sum would be off by far. Interactions in solid
    matter stay inside their slice (within a 25 cm step)."""
    config = ForcedConfig(z_min_m=100.0, z_max_m=beamline.first_tracker_z_m,
                          allocation="uniform", slice_m=5.0)
    sampler = ForcedSampler(physics, config)
    names = sampler.strata()
    assert names[0] == "photonuclear@100-105" and names[-1].endswith(
        f"-{beamline.first_tracker_z_m:.6g}")
    seg = sampler._window(traced.states)
    sigma_dx = sampler.segment_sigma(seg) * seg["dgrammage_kg_m2"].to_numpy()[:, None]
    slices = sampler._segment_slices(seg)
    n_slice = len(sampler.slice_edges_m()) - 1
    runs = pd.concat([sampler.sample(traced.states, seed=3, repeat=r)[0] for r in range(48)])
    edges = sampler.slice_edges_m()
    lo = runs["stratum"].str.split("@").str[1].str.split("-").str[0].astype(float)
    solid = (runs["material"] != "air").to_numpy()   # air: segments metres long
    inside = (runs["z_m"] >= lo - 0.5) & (runs["z_m"] < lo + 5.5)
    assert inside[solid].all()
    checked = tested = 0
    for j, name in enumerate(config.processes):
        if name not in ("pair_production", "mumu_pair", "knock_on"):
            continue
        for s in range(n_slice):
            p_exact = sigma_dx[slices == s, j].sum()
            stratum = f"{name}@{edges[s]:.6g}-{edges[s + 1]:.6g}"
            w = runs.loc[runs["stratum"] == stratum]
            if p_exact == 0:
                assert w.empty
                continue
            if len(w) < 30:       # rarely drawn: the 48-repeat mean is not Gaussian
                continue
            sums = w.groupby("repeat")["weight"].sum().reindex(range(48), fill_value=0.0)
            mean, err = sums.mean(), sums.std(ddof=1) / np.sqrt(48)
            assert abs(mean - p_exact) < 4 * err + 1e-12 * p_exact, stratum
            tested += 1
            if err < 0.1 * p_exact:
                checked += 1
                assert abs(mean / len(names) - p_exact) > 5 * err   # without 1/q
    assert tested >= 20 and checked >= 5


def test_defensive_mixture_keeps_every_process_and_bounds_the_weights(traced, physics,
                                                                     beamline):
    """All shares to the trident, 20 % of the draws natural: the other
    processes are still forced, each unbiased (E[Σw] = P_p within 4σ over
    48 repeats), and no forcing weight exceeds P / 0.2 of its history."""
    config = ForcedConfig(z_max_m=beamline.first_tracker_z_m,
                          allocation={"mumu_pair": 1.0}, defensive=0.2)
    p_exact, runs = _exact_and_repeats(ForcedSampler(physics, config), traced, seed=5)
    for j, name in enumerate(config.processes):
        if name not in ("pair_production", "knock_on"):
            continue
        sums = np.array([r.loc[r["process"] == name, "weight"].sum() for r in runs])
        mean, err = sums.mean(), sums.std(ddof=1) / np.sqrt(len(sums))
        assert sums.min() > 0 and abs(mean - p_exact[j]) < 4 * err, name
    every = pd.concat(runs)
    assert (every["process"] == "mumu_pair").mean() > 0.75
    assert (every["weight"] <= every["probability"] / 0.2 * (1 + 1e-9)).all()
