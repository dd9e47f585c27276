"""Forward prompt simulation: the state layout, the key space, the
document, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from backtrace.forward.simulation import (
    FORWARD_TRACK_OFFSET,
    PromptSimConfig,
    backward_layout,
    event_of,
    simulate_prompt,
)
from backtrace.interactions.forced import ForcedConfig, ForcedSampler, segments
from backtrace.prompt.config import RunConfig
from backtrace.transport import TraceConfig, Tracer


def _straight_pair(beamline):
    """One muon traced forward from z = 95 m to STRAW1 and back from its end
    state to z = 95 m (CSDA, no scattering, no decay: the same path both
    ways), through the final collimator's iron, TRIM5 and ANTI0."""
    z1 = beamline.first_tracker_z_m
    common = dict(energy_loss="csda", scattering=False, decay=False, record=True, seed=1)
    fwd = Tracer(TraceConfig(direction="forward", to_z_m=z1, **common), beamline)
    bwd = Tracer(TraceConfig(direction="backward", to_z_m=95.0, **common), beamline)
    start = pd.DataFrame({"track_index": [0], "x_m": [0.15], "y_m": [0.05], "z_m": [95.0],
                          "px_gev": [0.3], "py_gev": [0.0], "pz_gev": [60.0],
                          "charge": [1.0]})
    f = fwd.trace(start)
    h = f.histories.iloc[0]
    assert h["status"] == "reached_target"
    p = np.sqrt(h["kinetic_energy_gev"] ** 2 + 2 * h["kinetic_energy_gev"] * 0.1056584)
    end = pd.DataFrame({"track_index": [0], "x_m": [h["x_m"]], "y_m": [h["y_m"]],
                        "z_m": [h["z_m"]], "px_gev": [p * h["ux"]], "py_gev": [p * h["uy"]],
                        "pz_gev": [p * h["uz"]], "charge": [h["charge"]]})
    b = bwd.trace(end)
    assert b.histories.iloc[0]["status"] == "reached_target"
    return f.states, b.states


def test_forward_path_in_backward_layout_gives_the_same_forcing(beamline):
    """The forced-interaction probability P = Σ σ ΔX, the grammage per volume
    and the grammage left to each volume's downstream exit of a forward path
    put into the backward layout equal those of the backward trace of the
    same path; without the reordering the volumes' exits are wrong."""
    fwd_states, bwd_states = _straight_pair(beamline)
    lay = backward_layout(fwd_states)
    # downstream first, grammage from the downstream end, upstream segment's volume
    assert lay["z_m"].iloc[0] == pytest.approx(fwd_states["z_m"].max())
    assert lay["grammage_kg_m2"].iloc[0] == 0.0
    assert np.all(np.diff(lay["z_m"].to_numpy()) <= 0)
    assert lay["volume"].iloc[-1] == "outside"
    sampler = ForcedSampler(beamline.physics, ForcedConfig(
        z_min_m=100.0, z_max_m=beamline.first_tracker_z_m))

    def probability_and_exits(states):
        seg = sampler._window(states)
        p = float((sampler.segment_sigma(seg) * seg["dgrammage_kg_m2"].to_numpy()[:, None]).sum())
        by_volume = seg.groupby("volume")["dgrammage_kg_m2"].sum()
        exits = seg.groupby("volume")["grammage_exit_kg_m2"].min()
        return p, by_volume, exits
    p_f, vol_f, exit_f = probability_and_exits(lay)
    p_b, vol_b, exit_b = probability_and_exits(bwd_states)
    assert p_f > 1e-3                       # the path crosses metres of iron-equivalent
    assert p_f == pytest.approx(p_b, rel=1e-6)
    assert vol_f["TRIM5"] == pytest.approx(vol_b["TRIM5"], rel=1e-6)
    assert vol_f["TRIM5"] > 3000            # 40 cm of iron
    # the exit of TRIM5 (its downstream face) is where the matter left ends
    assert exit_f["TRIM5"] == pytest.approx(exit_b["TRIM5"], abs=1e-3)
    raw = segments(fwd_states)              # forward order as it comes: exits upstream
    assert raw.groupby("volume")["grammage_exit_kg_m2"].min()["TRIM5"] != \
        pytest.approx(exit_b["TRIM5"], abs=1.0)


def test_config_checks():
    with pytest.raises(ValueError, match="paths per muon"):
        PromptSimConfig(paths_per_muon=0)
    with pytest.raises(ValueError, match="acceptance"):
        PromptSimConfig(acceptance_r_m=(1.0, 0.5))
    with pytest.raises(ValueError, match="random-key layout"):
        PromptSimConfig(n_events=FORWARD_TRACK_OFFSET)


@pytest.fixture(scope="module")
def small_run():
    cfg = PromptSimConfig(run=RunConfig(seed=7, interactions_per_history=2), n_events=600,
                          paths_per_muon=2)
    return cfg, simulate_prompt(cfg, batch_size=600, progress=False)


def test_simulate_prompt_document_and_keys(small_run):
    cfg, r = small_run
    doc = r.document
    assert set(doc["regions"]) == {"SR", "CR", "outside"}
    assert doc["pot"] == cfg.run.pot_target and doc["pot_sample"] == cfg.pot_sample
    fwd = doc["forward_prompt"]
    paths = r.paths
    # every source muon that reached the TAX exit has paths_per_muon paths
    assert fwd["source_muons"] == paths["track_index"].nunique() > 500
    assert (paths["track_index"] >= FORWARD_TRACK_OFFSET).all()
    assert (event_of(paths["track_index"]) < cfg.n_events).all()
    assert doc["interactions"] > 300          # 2 draws per path reaching the window
    # the written sample is the visible paths, each with 1/N of its muon's weight
    assert len(r.tracks) == int(paths["visible"].sum()) == fwd["visible_paths"] > 0
    vis = paths[paths["visible"]]
    assert r.tracks["weight"].sum() == pytest.approx(
        vis["weight"].sum() / cfg.paths_per_muon * cfg.pot_sample, rel=1e-12)
    radius = np.hypot(r.tracks["x_m"], r.tracks["y_m"])
    assert ((radius > 0.1) & (radius < 1.0)).all()
    assert np.allclose(r.tracks["z_m"], 183.508)


def test_simulate_prompt_independent_of_batching(small_run):
    cfg, r = small_run
    again = simulate_prompt(cfg, batch_size=170, progress=False)
    assert again.document["interactions"] == r.document["interactions"]
    assert again.document["interaction_weight"] == pytest.approx(
        r.document["interaction_weight"], rel=1e-12)
    pd.testing.assert_frame_equal(again.tracks, r.tracks)
    cols = ["track_index", "sample_index", "weight"]
    pd.testing.assert_frame_equal(again.candidates[cols].reset_index(drop=True),
                                  r.candidates[cols].reset_index(drop=True))


def test_importance_pass_plan_and_budget(small_run):
    """With the auto allocation the estimate is a second pass over the same
    paths with the importance plan: a pilot of PILOT_FRACTION × k draws per
    path (the 'track' rule), then k per path on average ('global')."""
    from backtrace.forward.simulation import PILOT_FRACTION

    cfg, r = small_run
    pilot, importance = r.document["mc"]["rounds"]
    k = cfg.run.interactions_per_history
    assert pilot["allocation"] == {"mode": "track",
                                   "per_history": max(1.0, round(PILOT_FRACTION * k))}
    assert importance["allocation"]["mode"] == "global"
    # the pilot draws one per forcing path, the importance pass k = 2 on average
    assert importance["interactions"] / pilot["interactions"] == pytest.approx(2.0, rel=0.1)
    assert r.document["interactions"] == importance["interactions"]
    # the estimate's paths carry the importance pass's sample indices
    assert (r.paths["sample_index"] >= cfg.paths_per_muon).all()
    assert (r.tracks["true_forward_sample"] < cfg.paths_per_muon).all()


def test_importance_pass_is_unbiased():
    """The trident's forced-interaction weight of each path (its expected
    number of interactions × the incoming muon's veto survival × its
    weight) is the same whichever plan drew it: the importance pass and a
    single pass with the pilot rule agree, paired over the same paths,
    within 4 sigma of their difference, which is itself small. (The trident
    alone and no transfer bias: with every process, the importance plan
    gives the processes without selected outcomes few draws, and with the
    bias the soft transfers that dominate the summed weight are drawn
    rarely; either makes the sum too noisy to test.)"""
    cfg = PromptSimConfig(run=RunConfig(seed=5, interactions_per_history=8,
                                        processes=("mumu_pair",), transfer_bias=False),
                          n_events=300)
    imp = simulate_prompt(cfg, batch_size=300, progress=False)
    plain = simulate_prompt(replace(cfg, importance_round=False), batch_size=300,
                            progress=False)
    assert [r["allocation"]["mode"] for r in imp.document["mc"]["rounds"]] == \
        ["track", "global"]
    assert len(plain.document["mc"]["rounds"]) == 1
    key = ["track_index", "sample_index"]
    a = imp.paths.assign(sample_index=imp.paths["sample_index"] - cfg.paths_per_muon)
    both = a[key + ["interaction_weight"]].merge(
        plain.paths[key + ["interaction_weight"]], on=key, suffixes=("_imp", "_plain"))
    assert len(both) == len(a) == len(plain.paths)
    d = both["interaction_weight_imp"] - both["interaction_weight_plain"]
    total = both["interaction_weight_plain"].sum()
    sigma = float(np.sqrt((d ** 2).sum()))
    assert total > 0 and sigma < 0.03 * total
    assert abs(d.sum()) < 4 * sigma


def test_disjoint_event_ranges_average_to_the_whole_run():
    """Runs over events 0–99 and 100–199 (``first_event``), each normalised
    to its own 100 events, average to the run over 0–199: the same paths
    with the same weights and the same forced interactions (single pass:
    the plan does not depend on the events)."""
    cfg = PromptSimConfig(run=RunConfig(seed=9, interactions_per_history=4), n_events=200,
                          importance_round=False)
    whole = simulate_prompt(cfg, progress=False)
    halves = [simulate_prompt(replace(cfg, n_events=100, first_event=f), progress=False)
              for f in (0, 100)]
    assert set(halves[1].paths["event"]) == set(range(100, 200)) & set(whole.paths["event"])
    key = ["track_index", "sample_index"]
    pooled = pd.concat([h.paths for h in halves]).sort_values(key)
    full = whole.paths.sort_values(key)
    assert len(full) == len(pooled) > 150
    np.testing.assert_array_equal(pooled[key].to_numpy(), full[key].to_numpy())
    for col in ("weight", "interaction_weight"):
        np.testing.assert_allclose(pooled[col].to_numpy() / 2, full[col].to_numpy(),
                                   rtol=1e-12)
    assert full["interaction_weight"].sum() > 0
    with pytest.raises(ValueError, match="first_event"):
        PromptSimConfig(first_event=-1)
