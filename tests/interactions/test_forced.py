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
    from backtrace.prompt.config import RunConfig

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


def _stratum_p(sampler, states) -> pd.Series:
    """P_s = Σ σ_p ΔX per stratum 'process@volume@band' over the window."""
    seg = sampler._window(states)
    sigma_dx = sampler.segment_sigma(seg) * seg["dgrammage_kg_m2"].to_numpy()[:, None]
    k_mid = 0.5 * (seg["kinetic_energy_gev_a"] + seg["kinetic_energy_gev_b"]).to_numpy()
    band = np.asarray(sampler.band_labels(), dtype=object)[
        np.searchsorted(sampler.config.energy_bands_gev, k_mid, side="right")]
    place = seg["volume"].astype(str).to_numpy(object) + "@" + band
    parts = [pd.Series(sigma_dx[:, j]).groupby(name + "@" + place).sum()
             for j, name in enumerate(sampler.config.processes)]
    return pd.concat(parts)


def test_volume_energy_strata_are_unbiased_per_stratum(traced, physics, beamline):
    """Strata process × volume × muon-energy band, equal shares per process:
    E[Σ weight of stratum s] = P_s for every stratum of the processes
    without a final-state weight, within 4σ over 48 repeats; without the
    weight G_s / m_s the sum would be off by far. Labels name the drawn
    volume and band."""
    config = ForcedConfig(z_min_m=100.0, z_max_m=beamline.first_tracker_z_m,
                          allocation="uniform")
    sampler = ForcedSampler(physics, config)
    assert sampler.band_labels() == ["0-30GeV", "30-100GeV", "100+GeV"]
    p_exact = _stratum_p(sampler, traced.states)
    runs = pd.concat([sampler.sample(traced.states, seed=3, repeat=r)[0] for r in range(48)])
    assert set(runs["stratum"]) <= set(p_exact.index)
    parts = runs["stratum"].str.split("@")
    assert (parts.str[0] == runs["process"]).all() and (parts.str[1] == runs["volume"]).all()
    k = runs["kinetic_energy_gev"].to_numpy()
    assert ((parts.str[2] != "100+GeV") | (k > 90)).all()
    tested = checked = 0
    for stratum, p in p_exact.items():
        if stratum.partition("@")[0] not in ("pair_production", "mumu_pair", "knock_on"):
            continue
        w = runs.loc[runs["stratum"] == stratum]
        if len(w) < 30:       # rarely drawn: the 48-repeat mean is not Gaussian
            continue
        sums = w.groupby("repeat")["weight"].sum().reindex(range(48), fill_value=0.0)
        mean, err = sums.mean(), sums.std(ddof=1) / np.sqrt(48)
        assert abs(mean - p) < 4 * err + 1e-12 * p, stratum
        tested += 1
        if err < 0.1 * p:
            checked += 1
            assert abs(mean / len(config.processes) - p) > 5 * err   # without G/m
    assert tested >= 10 and checked >= 5


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


def _lav_map(beamline, inefficiency=0.2):
    """((LAVn/lead_glass, log ε), ...) with a large ε so that its effect is
    visible in a few repeats."""
    return tuple((f"LAV{i}/lead_glass", float(np.log(inefficiency))) for i in range(1, 13))


def _process_sums(runs, name, n):
    sums = np.array([r.loc[r["process"] == name, "weight"].sum() for r in runs])
    return sums.mean(), sums.std(ddof=1) / np.sqrt(n)


def test_veto_aware_forcing_is_unbiased_for_the_vetoed_integral(traced, physics, beamline):
    """With the LAVs as vetoes (ε = 0.2 here) the draws follow σ ΔX S_in
    (δ + (1 − δ) S_out): E[Σ w_p] = Σ σ_p ΔX S_in, S_in the incoming
    muon's survival at the point (computed independently with
    Response.incoming_log_survival), within 4σ over 40 seeds; without the
    S_in/V factor the sum is off by far. Fewer draws land behind a veto."""
    from backtrace.detector.response import Response
    from backtrace.regions import load_regions

    lavs = _lav_map(beamline)
    config = ForcedConfig(z_max_m=beamline.first_tracker_z_m, allocation="uniform",
                          veto_log_inefficiency=lavs)
    sampler = ForcedSampler(physics, config)
    seg = sampler._window(traced.states)
    response = Response.from_geometry(beamline.geometry, load_regions(None).selection, 1)
    response = Response(**{**response.__dict__, "vetoes": tuple(
        type(v)(v.name, v.volume, 0.2, v.estimated, v.source) for v in response.vetoes)})
    mids = pd.DataFrame({"track_index": seg["track_index"], "sample_index": seg["sample_index"],
                         "z_m": 0.5 * (seg["z_m_a"] + seg["z_m_b"])})
    s_in = np.exp(response.incoming_log_survival(traced.states, mids))
    assert (s_in < 1).any() and (s_in == 1).any()
    sigma_dx = sampler.segment_sigma(seg) * seg["dgrammage_kg_m2"].to_numpy()[:, None]
    runs = [sampler.draws(traced.states, seed, plan=sampler.default_plan(1.0))[0]
            for seed in range(40)]
    for j, name in enumerate(config.processes):
        if name not in ("pair_production", "knock_on"):
            continue
        exact = float((sigma_dx[:, j] * s_in).sum())
        mean, err = _process_sums(runs, name, 40)
        assert abs(mean - exact) < 4 * err, name
        assert err < 0.05 * exact
        no_veto = np.mean([r.loc[r["process"] == name, "draw_weight"].sum() for r in runs])
        assert abs(no_veto - exact) > 5 * err, name          # without S_in / V
    # the draws avoid what the vetoes remove: their mean S_in is higher
    plain = ForcedSampler(physics, ForcedConfig(z_max_m=beamline.first_tracker_z_m,
                                                allocation="uniform"))

    def mean_s_in(draws):
        return np.exp(response.incoming_log_survival(traced.states, draws)).mean()
    aware = np.mean([mean_s_in(r) for r in runs[:5]])
    blind = np.mean([mean_s_in(plain.draws(traced.states, seed,
                                           plan=plain.default_plan(1.0))[0])
                     for seed in range(5)])
    assert aware > blind + 0.02


def _histories(traced, seed=0):
    """Per history: a weight spread over four decades (as the tracks of the
    shipped sample), a posterior share, and an importance proportional to
    the weight up to a factor 3 either way (the pipeline's: track weight ×
    share × pass fraction)."""
    h = traced.histories.set_index(["track_index", "sample_index"])
    rng = np.random.default_rng(seed)
    share = rng.uniform(0.2, 1.0, len(h))
    weight = 10 ** rng.uniform(-2, 2, len(h))
    return pd.DataFrame({"weight": weight, "share": share,
                         "importance": weight * 3 ** rng.uniform(-1, 1, len(h))},
                        index=h.index)


@pytest.mark.parametrize("mode", ["track", "global"])
def test_importance_plans_are_unbiased_per_process(traced, physics, beamline, mode):
    """The pilot ('track': equal draws per process within a track, spread
    ∝ π_h G) and the importance plan ('global': m = W G ρ with rates per
    stratum, a fallback per process, stochastic rounding): E[Σ w_p] =
    Σ_h h_w P_{h,p} within 4σ over 40 seeds, although the draws per history
    range from 0 to many; without the allocation weight G m_h / (E[n] m)
    the sum is off by far."""
    from backtrace.interactions.forced import DrawPlan

    config = ForcedConfig(z_max_m=beamline.first_tracker_z_m)
    sampler = ForcedSampler(physics, config)
    hist = _histories(traced)
    plan = DrawPlan("track", 2.0) if mode == "track" else DrawPlan(
        "global", 2.0, rates=(("mumu_pair@fill:air@100+GeV", 5.0),),
        process_rates=tuple((p, r) for p, r in zip(config.processes,
                                                   (5.0, 0.25, 500.0, 2.5, 0.6))))
    seg = sampler._window(traced.states)
    sigma_dx = sampler.segment_sigma(seg) * seg["dgrammage_kg_m2"].to_numpy()[:, None]
    hw = hist["weight"].reindex(pd.MultiIndex.from_arrays(
        [seg["track_index"], seg["sample_index"]])).to_numpy()
    runs = [sampler.draws(traced.states, seed, hist["weight"], plan, hist)
            for seed in range(40)]
    per_hist = runs[0][0].groupby(["track_index", "sample_index"]).size()
    assert per_hist.max() >= 4 and per_hist.min() >= 1
    checked, off = 0, 0
    for j, name in enumerate(config.processes):
        if name not in ("pair_production", "mumu_pair", "knock_on"):
            continue
        exact = float((sigma_dx[:, j] * hw).sum())
        mean, err = _process_sums([r[0] for r in runs], name, 40)
        assert abs(mean - exact) < 4 * err, name
        if err < 0.2 * exact:
            checked += 1
            # the draws' history weights alone, without G m_h / (E[n] m)
            naive = np.mean([hist["weight"].reindex(pd.MultiIndex.from_frame(
                r[0].loc[r[0]["process"] == name, ["track_index", "sample_index"]])).sum()
                for r in runs])
            off += abs(naive - exact) > 5 * err
    assert checked >= 2 and off >= 1


def test_splitting_shares_the_point_between_final_states(traced, physics, beamline):
    """Two final states per drawn point: draws 2i and 2i + 1 of a history
    share the point and its weight, their final states differ."""
    config = ForcedConfig(z_max_m=beamline.first_tracker_z_m, allocation="uniform",
                          final_states_per_point=2)
    sampler = ForcedSampler(physics, config)
    inter, prods, _ = sampler.draws(traced.states, 3, plan=sampler.default_plan(4.0))
    inter = inter.sort_values(["track_index", "sample_index", "repeat"])
    g = inter.groupby(["track_index", "sample_index", inter["repeat"] // 2])
    assert (g["z_m"].nunique() == 1).all() and (g["draw_weight"].nunique() == 1).all()
    assert (g["stratum"].nunique() == 1).all()
    mu = prods[prods["scattered"]].set_index("interaction")["e_gev"]
    pairs = inter.groupby(["track_index", "sample_index", inter["repeat"] // 2])[
        "interaction"].apply(list)
    differ = [mu[a] != mu[b] for a, b in pairs if len(set(inter.loc[inter["interaction"]
                                                                    .isin([a, b]),
                                                                    "process"])) == 1]
    assert np.mean(differ) > 0.9


@pytest.mark.parametrize("process", ["mumu_pair", "pair_production", "knock_on"])
def test_transfer_bias_keeps_the_spectrum_and_favours_selectable_transfers(physics, process):
    """Transfers biased towards q ≥ 9 GeV (10 % natural): the weighted
    spectrum equals the natural one bin by bin (χ² over 10 bins), at least
    90 % of the draws lie above 9 GeV (the natural share is far lower), no
    weight exceeds 1/0.1; without the weights the soft bins are off."""
    from backtrace.interactions import PROCESSES
    from backtrace.interactions._common import sample_transfer
    from backtrace.interactions.forced import biased_transfer_uniform

    tab = PROCESSES[process].table(physics, "iron", 1.0)
    n = 200_000
    rng = np.random.default_rng(3)
    k = np.full(n, 80.0)
    q_nat = sample_transfer(tab, k, rng.random(n))
    u, w = biased_transfer_uniform(tab, k, rng.random(n), 9.0, 0.1)
    q_b = sample_transfer(tab, k, u)
    assert (q_b >= 9.0 * (1 - 1e-6)).mean() > 0.9 > 1.5 * (q_nat >= 9.0).mean()
    assert w.max() <= 10.0 * (1 + 1e-9)
    edges = np.r_[1.0, np.geomspace(2.0, 60.0, 9), 80.0]
    a = np.histogram(q_nat, edges)[0]
    b, _ = np.histogram(q_b, edges, weights=w)
    b2, _ = np.histogram(q_b, edges, weights=w * w)
    chi2 = np.sum((b - a) ** 2 / (a + b2))
    assert chi2 < 10 + 5 * np.sqrt(20), (process, chi2)
    unweighted = np.histogram(q_b, edges)[0]
    assert unweighted[0] < 0.5 * a[0]
