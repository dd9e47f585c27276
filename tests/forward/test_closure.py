"""The closure of the prompt yield: forward simulation against ``run`` on
the single-track sample of the same events (``backtrace/forward/closure.py``).

Set-up of the CI-sized closure (one forward run of 500 source events with 8
paths per muon, ~50 visible paths, and one backward run with 4 histories
per track; ~25 s on one core): the loose test selection (no vetoes: a veto
survival of 10⁻³ per LAV crossing makes one forward path per event a very
noisy estimate of its event's yield), the forcing window 175 m – STRAW1 (the
back-traced paths stay within millimetres of the true one there, so the
pairing by event cancels the event weights), the natural allocation
without transfer bias (each path's forced weight is then its σΔX sum
exactly, no draw noise). What is compared is the forced interactions'
summed weight on the visible paths at the target POT: it carries the POT
scaling, the source and posterior weights and the forcing normalisation of
each method, which multiply every candidate's weight. Measured:
forward/backward = 0.969 ± 0.010 (1.001 ± 0.011 with 32 histories per
track instead of 4: backward MC noise); the test asks |ratio − 1| < 0.10.

Verified by ``test_closure_fails_when_perturbed`` (slow; run with
``-m slow``), which changes each of these by 20 % in one method only and
checks that the closure check then fails: the backward posterior weights
(ω φ × track weight of each history against its normaliser), the forward
path weights against their normaliser (the forward's counterpart: no
posterior), the forced-interaction weights of either method
(ForcedSampler.draws) and the POT scaling of either method (the scale the
candidates and interactions get in Pipeline.forced). Each moves the
ratio by exactly × or ÷ 1.2 (common random numbers), i.e. to ≈ 1.16 or ≈
0.81, outside the tolerance.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtrace.forward.closure import (
    bootstrap_ratio_interval,
    closure_table,
    interaction_closure,
    mean_event_ratio,
    ratio_paired,
)
from backtrace.forward.simulation import PromptSimConfig, simulate_prompt
from backtrace.prompt.config import RunConfig

LOOSE = str(Path(__file__).resolve().parents[1] / "data" / "regions_loose.toml")
CONFIG = PromptSimConfig(
    run=RunConfig(seed=3, regions_file=LOOSE, forced_z_min_m=175.0, samples_per_track=4,
                  interactions_per_history=8, allocation="natural", transfer_bias=False),
    n_events=500, paths_per_muon=8)
TOLERANCE = 0.10


def _backward(forward, tmp_path, config=CONFIG):
    from backtrace.prompt.pipeline import run_estimate
    from backtrace.tracks import Tracks, write_tracks

    path = tmp_path / "tracks.parquet"
    write_tracks(path, forward.tracks, pot=config.pot_sample)
    return run_estimate(Tracks.open(path), replace(config.run, seed=config.run.seed + 100),
                        progress=False, systematics="none")


def _check_closes(forward, backward) -> dict:
    c = interaction_closure(forward, backward.interaction_weight, forward.tracks)
    assert c["events"] >= 20 and c["ratio_error"] < 0.05, c
    assert abs(c["ratio"] - 1.0) < TOLERANCE, c
    return c


@pytest.fixture(scope="module")
def forward():
    return simulate_prompt(CONFIG, batch_size=500, progress=False)


def test_prompt_closure_small(forward, tmp_path):
    backward = _backward(forward, tmp_path)
    c = _check_closes(forward, backward)
    assert 0.9 < c["ratio"] < 1.05 and c["ratio_error"] < 0.03
    # the cells: the same categories and regions in both, a ratio with an error
    table = closure_table(forward, backward.candidates, forward.tracks,
                          ["SR", "CR", "outside"], ["mu-mu", "mu-pi", "other"])
    cell = table["cells"]["outside"]["mu-mu"]
    assert set(cell) >= {"forward", "backward", "ratio", "ratio_error", "fraction"}
    # invisible paths carry part of the forward interaction weight
    assert 0.0 < c["missed_fraction"] < 1.0
    # every event alike (source weights cancel): 1.010 ± 0.027 on 25 events
    assert abs(c["mean_event_ratio"] - 1.0) < TOLERANCE and c["mean_event_ratio_error"] < 0.05


def test_ratio_paired_error():
    """R = Σa/Σb with the paired error: identical per-event values give
    R = 1 exactly with no error however different the events are; an
    independent 10 % scatter gives ~10 %/√n."""
    a = pd.Series([1.0, 100.0, 5.0, 0.5], index=[1, 2, 3, 4])
    r = ratio_paired(a, a.copy())
    assert r["ratio"] == 1.0 and r["ratio_error"] == 0.0
    assert r["forward_error"] == pytest.approx(np.sqrt((a ** 2).sum()))
    rng = np.random.default_rng(2)
    b = pd.Series(np.ones(400))
    r = ratio_paired(b * rng.normal(1.0, 0.1, 400), b)
    assert r["ratio"] == pytest.approx(1.0, abs=0.02)
    assert r["ratio_error"] == pytest.approx(0.1 / np.sqrt(400), rel=0.15)
    # with a Gaussian ratio the 68 % bootstrap interval is R ± its error
    lo, hi = r["ratio_interval_68"]
    assert lo < r["ratio"] < hi
    assert (hi - lo) / 2 == pytest.approx(r["ratio_error"], rel=0.15)
    assert ratio_paired(b * rng.normal(1.0, 0.1, 400), b)["ratio_interval_68"] != (lo, hi)
    # events present in one method only count as zero in the other
    r = ratio_paired(pd.Series([2.0], index=[7]), pd.Series([1.0, 1.0], index=[7, 8]))
    assert r["ratio"] == 1.0 and r["events"] == 2
    # one event: no interval
    assert ratio_paired(pd.Series([2.0]), pd.Series([1.0]))["ratio_interval_68"] is None


def test_mean_event_ratio_ignores_the_event_weights():
    """a_e / b_e cancels each event's source weight: weights from 1e-6 to
    1e6 on the same per-event ratios give the same mean, while Σa/Σb follows
    the heaviest event; events of one method only are counted apart."""
    q = np.array([0.8, 1.2, 0.9, 1.1])
    b = pd.Series([1.0, 1.0, 1.0, 1.0])
    heavy = pd.Series([1e-6, 1.0, 1.0, 1e6])
    plain = mean_event_ratio(b * q, b)
    weighted = mean_event_ratio(heavy * q, heavy)
    assert plain["mean_event_ratio"] == pytest.approx(1.0)
    assert weighted["mean_event_ratio"] == pytest.approx(1.0)
    assert weighted["mean_event_ratio_error"] == pytest.approx(np.std(q, ddof=1) / 2)
    assert ratio_paired(heavy * q, heavy)["ratio"] == pytest.approx(1.1, rel=1e-5)
    r = mean_event_ratio(pd.Series([1.0, 2.0, 3.0], index=[1, 2, 3]),
                         pd.Series([1.0, 2.0, 0.0, 5.0], index=[1, 2, 3, 4]))
    assert r["events_forward_only"] == 1 and r["events_backward_only"] == 1


def test_ratio_by_volume_and_category():
    """Per volume of the interaction: two events, the forward puts 1 in the
    collimator and 2 in the end cap, the backward 2 and 2: collimator 0.5,
    end cap 1; a volume under 5 % of both is pooled; over all volumes the
    category's visible ratio is 3/4."""
    from types import SimpleNamespace

    fwd = pd.DataFrame({"event": [1, 2, 2, 2], "visible": True, "region": "outside",
                        "category": "mu-mu", "weight": [1.0, 2.0, 0.01, 5.0],
                        "volume": ["coll", "cap", "air", "cap"]})
    fwd.loc[3, "visible"] = False  # a missed path: not in the ratios
    tracks = pd.DataFrame({"event_id": [1, 2]})
    bwd = pd.DataFrame({"track_index": [0, 1], "region": "outside", "category": "mu-mu",
                        "weight": [2.0, 2.0], "volume": ["coll", "cap"]})
    table = closure_table(SimpleNamespace(candidates=fwd), bwd, tracks, ["outside"],
                          ["mu-mu"])
    rows = table["by_volume"]["mu-mu"]
    assert set(rows) == {"coll", "cap", "other volumes"}
    assert rows["coll"]["ratio"] == pytest.approx(0.5)
    assert rows["cap"]["ratio"] == pytest.approx(1.0)
    assert rows["other volumes"]["forward"] == pytest.approx(0.01)
    vis = table["missed_by_category"]["mu-mu"]["visible_ratio"]
    assert vis["ratio"] == pytest.approx(3.01 / 4.0)


def test_bootstrap_interval_shows_a_heavy_event():
    """Nine events agree (a = b) and one heavy event has a = 0: the
    delta-method error is symmetric, the bootstrap interval is not — it
    reaches R = 1 (the resamples without the heavy event) on one side only."""
    a = pd.Series([1.0] * 9 + [0.0])
    b = pd.Series([1.0] * 9 + [9.0])
    r = ratio_paired(a, b)
    assert r["ratio"] == pytest.approx(0.5)
    lo, hi = r["ratio_interval_68"]
    assert hi - r["ratio"] > 2 * (r["ratio"] - lo)
    assert bootstrap_ratio_interval(a.to_numpy(), b.to_numpy()) == (lo, hi)  # seeded


def _scaled_posterior(monkeypatch):
    import backtrace.prompt.pipeline as pipeline

    original = pipeline.posterior_weights

    def scaled(*args, **kwargs):
        h = original(*args, **kwargs)
        return h.assign(posterior_weight=1.2 * h["posterior_weight"])
    monkeypatch.setattr(pipeline, "posterior_weights", scaled)


def _scaled_forward_paths(monkeypatch):
    import backtrace.forward.simulation as fp

    original = fp._path_batch

    def scaled(forced, paths, n, tracks):
        out = original(forced, paths, n, tracks)
        return replace(out, batch=replace(out.batch, norm=out.batch.norm * 1.2,
                                          norm2=out.batch.norm2 * 1.2))
    monkeypatch.setattr(fp, "_path_batch", scaled)


def _scaled_forcing(monkeypatch):
    from backtrace.interactions.forced import ForcedSampler

    original = ForcedSampler.draws

    def scaled(self, *args, **kwargs):
        inter, prods, info = original(self, *args, **kwargs)
        return inter.assign(weight=1.2 * inter["weight"],
                            draw_weight=1.2 * inter["draw_weight"]), prods, info
    monkeypatch.setattr(ForcedSampler, "draws", scaled)


def _scaled_pot(monkeypatch):
    from backtrace.prompt.pipeline import Pipeline

    original = Pipeline.forced

    def scaled(self, states, histories, hist, track_weight_scale, plan=None):
        return original(self, states, histories, hist, 1.2 * track_weight_scale, plan)
    monkeypatch.setattr(Pipeline, "forced", scaled)


PERTURBATIONS = {"posterior": _scaled_posterior, "paths": _scaled_forward_paths,
                 "forcing": _scaled_forcing, "pot": _scaled_pot}


@pytest.mark.slow
@pytest.mark.parametrize("method,what", [
    ("backward", "posterior"), ("forward", "paths"), ("backward", "forcing"),
    ("forward", "forcing"), ("backward", "pot"), ("forward", "pot")])
def test_closure_fails_when_perturbed(method, what, forward, tmp_path):
    """Each normalisation of one method changed by 20 % breaks the closure."""
    with pytest.MonkeyPatch.context() as mp:
        if method == "forward":
            PERTURBATIONS[what](mp)
            fwd = simulate_prompt(CONFIG, batch_size=500, progress=False)
        else:
            fwd = forward
    with pytest.MonkeyPatch.context() as mp:
        if method == "backward":
            PERTURBATIONS[what](mp)
        backward = _backward(fwd, tmp_path)
    c = interaction_closure(fwd, backward.interaction_weight, fwd.tracks)
    nominal = interaction_closure(forward, _backward(forward, tmp_path).interaction_weight,
                                  forward.tracks)
    factor = c["ratio"] / nominal["ratio"]
    assert factor == pytest.approx(1.2 if method == "forward" else 1 / 1.2, rel=1e-6) \
        or factor == pytest.approx(1 / 1.2 if method == "forward" else 1.2, rel=1e-6)
    with pytest.raises(AssertionError):
        _check_closes(fwd, backward)
