"""Closure of the two-track prompt yield: the forward prompt simulation
against ``backtrace run`` on the single-track sample of the same events.

From one set of MC source events:

(a) :func:`backtrace.forward.simulation.simulate_prompt` gives the forward
    yield per (region, category), split into the paths the backward method
    can see and those it cannot (``visible``: the incoming muon's path,
    continued as if it had not interacted, crosses STRAW1 inside the
    acceptance annulus, i.e. the muon is in the single-track sample);
(b) :func:`backtrace.prompt.pipeline.run_estimate` on those visible muons at STRAW1
    (the sample the forward simulation writes: one track per visible path,
    with its weight) estimates the visible part.

**Comparison.** On the visible part, per cell, R = A / B with A, B the
forward and backward yields. Both are sums over the same independent MC
events e (the backward tracks carry their event), so the error of R is the
delta-method error of a ratio of paired sums,
σ_R² = Σ_e (a_e − R b_e)² / B² — the event-to-event fluctuation that both
share cancels, what remains is the Monte Carlo noise of each method given
the events (the forward's single path per muon and its draws, the
backward's histories and draws) and any real disagreement. The missed
fraction per category is M / (A + M), M the forward yield of the paths the
backward method cannot see, with its error over events.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from backtrace.forward.simulation import simulate_prompt
from backtrace.prompt.pipeline import run_estimate
from backtrace.tracks import Tracks, write_tracks

__all__ = ["ratio_paired", "bootstrap_ratio_interval", "mean_event_ratio", "closure_table",
           "ratio_by_volume", "VOLUME_MIN_SHARE", "interaction_closure", "run_closure",
           "VISIBLE_DEFINITION"]

VISIBLE_DEFINITION = (
    "a forward path is visible to the backward method when the incoming muon's path, "
    "continued to STRAW1 as if it had not interacted, crosses the STRAW1 entry plane "
    "inside the acceptance annulus: the muon is then in the single-track sample that "
    "'backtrace run' takes")


def _per_event(cands: pd.DataFrame, event: np.ndarray, region: str | None, category: str
               ) -> pd.Series:
    """Summed weight per event of one cell (``region`` None: all regions)."""
    if not len(cands):
        return pd.Series(dtype=float)
    sel = (cands["category"] == category).to_numpy()
    if region is not None:
        sel = sel & (cands["region"] == region).to_numpy()
    return pd.Series(cands["weight"].to_numpy(float)[sel]).groupby(
        np.asarray(event)[sel]).sum()


def _n_eff(per_event: pd.Series) -> float:
    """Effective number of events, (Σw)²/Σw² of per-event sums."""
    w2 = float((per_event ** 2).sum())
    return float(per_event.sum() ** 2 / w2) if w2 > 0 else 0.0


def _aligned(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per-event values of both methods over the union of their events
    (an event one method lacks counts as zero there)."""
    idx = a.index.union(b.index)
    return a.reindex(idx, fill_value=0.0).to_numpy(), b.reindex(idx, fill_value=0.0).to_numpy()


#: Bootstrap replicas of :func:`ratio_paired`'s interval and their seed
#: (fixed: the interval of a given set of events is reproducible).
BOOTSTRAP_REPLICAS = 2000
BOOTSTRAP_SEED = 20261203


def bootstrap_ratio_interval(av: np.ndarray, bv: np.ndarray, level: float = 0.6827,
                             replicas: int = BOOTSTRAP_REPLICAS,
                             seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Central ``level`` percentile interval of Σa/Σb over events resampled
    with replacement (paired: an event keeps its a and b). It does not
    assume the ratio is Gaussian, which the delta-method error does: with
    a few heavy events the two differ, and the interval shows it. None if
    there are fewer than 2 events."""
    n = len(av)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    ratios = []
    for start in range(0, replicas, 250):  # bounded memory: 250 × n indices
        pick = rng.integers(0, n, size=(min(250, replicas - start), n))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios.append(av[pick].sum(axis=1) / bv[pick].sum(axis=1))
    r = np.concatenate(ratios)
    r = r[np.isfinite(r)]
    if not len(r):
        return None
    lo, hi = np.percentile(r, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def ratio_paired(a: pd.Series, b: pd.Series) -> dict:
    """R = Σa / Σb over events, with the paired delta-method error
    (module docstring), its 68 % bootstrap interval over events
    (:func:`bootstrap_ratio_interval`) and each sum's own error over events."""
    av, bv = _aligned(a, b)
    sa, sb = float(av.sum()), float(bv.sum())
    out = {"forward": sa, "forward_error": float(np.sqrt((av ** 2).sum())),
           "backward": sb, "backward_error": float(np.sqrt((bv ** 2).sum())),
           "ratio": None, "ratio_error": None, "ratio_interval_68": None,
           "events": int(len(av))}
    if sb > 0:
        r = sa / sb
        out["ratio"] = r
        out["ratio_error"] = float(np.sqrt(((av - r * bv) ** 2).sum()) / sb)
        out["ratio_interval_68"] = bootstrap_ratio_interval(av, bv)
    return out


def _fraction(missed: pd.Series, seen: pd.Series) -> dict:
    """M / (A + M) over events with its delta-method error."""
    m, a = _aligned(missed, seen)
    t = m + a
    total = float(t.sum())
    if not total > 0:
        return {"missed": float(m.sum()), "fraction": None, "fraction_error": None}
    f = float(m.sum()) / total
    return {"missed": float(m.sum()), "fraction": f,
            "fraction_error": float(np.sqrt(((m - f * t) ** 2).sum()) / total)}


def closure_table(forward, backward_candidates: pd.DataFrame, tracks: pd.DataFrame,
                  regions, categories) -> dict:
    """{region: {category: ratio_paired(...) + missed fraction}}, per
    category over all regions the missed fraction and the forward/backward
    ratio of the visible paths (``missed_by_category``, its
    ``visible_ratio``), and where both have a ``volume`` column the ratio
    per volume of the interaction (``by_volume``, :func:`ratio_by_volume`).
    ``forward``: a :class:`backtrace.forward.simulation.ForwardResult`;
    ``backward_candidates``: the candidates of ``run`` on ``tracks`` (its
    track_index is the row of ``tracks``, whose ``event_id`` is the MC event)."""
    fc = forward.candidates
    vis = fc["visible"].to_numpy(bool) if len(fc) else np.zeros(0, bool)
    seen, missed = fc[vis], fc[~vis]
    bc = backward_candidates
    b_event = tracks["event_id"].to_numpy(np.int64)[bc["track_index"].to_numpy(np.int64)] \
        if len(bc) else np.zeros(0, np.int64)
    seen_event = seen["event"].to_numpy() if len(seen) else np.zeros(0, np.int64)
    missed_event = missed["event"].to_numpy() if len(missed) else np.zeros(0, np.int64)
    cells = {}
    for region in regions:
        cells[region] = {}
        for cat in categories:
            a = _per_event(seen, seen_event, region, cat)
            m = _per_event(missed, missed_event, region, cat)
            cells[region][cat] = {**ratio_paired(a, _per_event(bc, b_event, region, cat)),
                                  **_fraction(m, a)}
    by_category = {}
    for cat in categories:
        a = _per_event(seen, seen_event, None, cat)
        m = _per_event(missed, missed_event, None, cat)
        by_category[cat] = {**_fraction(m, a),
                            "entries_visible": int((seen["category"] == cat).sum())
                            if len(seen) else 0,
                            "entries_missed": int((missed["category"] == cat).sum())
                            if len(missed) else 0,
                            "n_eff_visible": _n_eff(a), "n_eff_missed": _n_eff(m)}
        by_category[cat]["visible_ratio"] = ratio_paired(a, _per_event(bc, b_event, None, cat))
    out = {"cells": cells, "missed_by_category": by_category,
           "visible_definition": VISIBLE_DEFINITION}
    if len(bc) and "volume" in bc and "volume" in seen:
        out["by_volume"] = {cat: ratio_by_volume(seen, bc, b_event, cat)
                            for cat in categories}
    return out


#: Volumes holding less than this share of a category's yield in both
#: methods are pooled in :func:`ratio_by_volume` (a table row, not physics).
VOLUME_MIN_SHARE = 0.05


def ratio_by_volume(seen: pd.DataFrame, backward: pd.DataFrame, b_event: np.ndarray,
                    category: str) -> dict:
    """{volume of the interaction: ratio_paired(forward, backward)} of one
    category over all regions, on the visible paths: where along the path
    the two methods part. Volumes under :data:`VOLUME_MIN_SHARE` of the
    category in both are pooled as 'other volumes'."""
    f = seen[seen["category"] == category]
    sel = (backward["category"] == category).to_numpy()
    b = backward[sel]
    if not len(f) and not len(b):
        return {}
    share_f = f.groupby("volume")["weight"].sum() / max(float(f["weight"].sum()), 1e-300)
    share_b = b.groupby("volume")["weight"].sum() / max(float(b["weight"].sum()), 1e-300)
    share = pd.concat([share_f, share_b], axis=1).fillna(0.0).max(axis=1)
    main = set(share[share >= VOLUME_MIN_SHARE].index)

    def label(v):
        return v.where(v.isin(main), "other volumes")

    out = {}
    for vol in sorted(main) + ["other volumes"]:
        a = f[label(f["volume"]) == vol].groupby("event")["weight"].sum()
        bm = (label(b["volume"]) == vol).to_numpy()
        bb = pd.Series(b["weight"].to_numpy(float)[bm]).groupby(b_event[sel][bm]).sum()
        if len(a) or len(bb):
            out[vol] = ratio_paired(a, bb)
    return out


def mean_event_ratio(a: pd.Series, b: pd.Series) -> dict:
    """The unweighted mean over events of a_e / b_e, with its standard
    error, on the events where the backward has a value (b_e > 0); and how
    many events only one method has. An event's source weight multiplies
    both a_e and b_e and cancels in the ratio, so this mean does not carry
    the heavy tail of the source weights that dominates Σa/Σb: if the
    backward's posterior average over paths equals the forward's
    expectation given the track, it is 1 (a test of every event alike
    rather than of the heavy ones)."""
    av, bv = _aligned(a, b)
    both = bv > 0
    q = av[both] / bv[both]
    out = {"mean_event_ratio": None, "mean_event_ratio_error": None,
           "mean_event_ratio_events": int(len(q)),
           "events_forward_only": int(((av > 0) & ~both).sum()),
           "events_backward_only": int((both & (av <= 0)).sum())}
    if len(q) >= 2:
        out["mean_event_ratio"] = float(q.mean())
        out["mean_event_ratio_error"] = float(q.std(ddof=1) / np.sqrt(len(q)))
    return out


def interaction_closure(forward, backward_weight: pd.Series, tracks: pd.DataFrame) -> dict:
    """The forced interactions' summed weight (the expected number of
    forced-type interactions above q_min in the forcing window, times the
    incoming muon's veto survival, at the target POT) on the visible paths:
    forward against backward per event (:func:`ratio_paired`). It holds
    every normalisation of the yields (POT, source and posterior weights,
    forcing) with far more entries than the two-track cells. Also the
    unweighted mean of the per-event ratio (:func:`mean_event_ratio`)."""
    p = forward.paths
    vis = p[p["visible"]]
    a = vis.groupby("event")["interaction_weight"].sum()
    ev = tracks["event_id"].to_numpy(np.int64)
    w = backward_weight if backward_weight is not None else pd.Series(dtype=float)
    b = pd.Series(w.to_numpy(float), index=ev[w.index.to_numpy(np.int64)]).groupby(
        level=0).sum() if len(w) else pd.Series(dtype=float)
    out = {**ratio_paired(a, b), **mean_event_ratio(a, b)}
    total = float(p["interaction_weight"].sum())
    out["forward_all_paths"] = total
    out["missed_fraction"] = 1.0 - out["forward"] / total if total > 0 else None
    return out


def run_closure(config, workdir, *, priors=("energy",), backward_seed_offset: int = 100,
                jobs: int = 1, batch_size: int = 100, progress: bool = False,
                target_rel_unc: float | None = None, max_time_s: float | None = None,
                max_samples_per_track: int = 16384) -> dict:
    """(a) the forward prompt simulation of ``config`` (a
    :class:`backtrace.forward.simulation.PromptSimConfig`), (b) ``run`` (no
    systematic re-runs) on its visible single-track sample (written to
    ``workdir/tracks.parquet``) with seed + ``backward_seed_offset``,
    ``config.run``'s histories and forcing and each source prior of
    ``priors``, and the comparisons. Returns {forward, backward: {prior:
    RunResult}, tables: {prior: closure_table}, interactions: {prior:
    interaction_closure}, times: {forward_s, backward_s: {prior: s}}}."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fwd = simulate_prompt(config, jobs=jobs, batch_size=batch_size, progress=progress)
    t_forward = time.perf_counter() - t0
    path = workdir / "tracks.parquet"
    write_tracks(path, fwd.tracks, pot=config.pot_sample)
    tracks = Tracks.open(path)
    regions = list(fwd.document["regions"])
    categories = list(fwd.document["regions"][regions[0]])
    out = {"forward": fwd, "backward": {}, "tables": {}, "interactions": {},
           "times": {"forward_s": t_forward, "backward_s": {}}, "tracks": int(len(fwd.tracks))}
    for prior in priors:
        bcfg = replace(config.run, seed=config.run.seed + backward_seed_offset, prior=prior)
        t1 = time.perf_counter()
        bwd = run_estimate(tracks, bcfg, jobs=jobs, progress=progress, systematics="none",
                           target_rel_unc=target_rel_unc, max_time_s=max_time_s,
                           max_samples_per_track=max_samples_per_track)
        out["times"]["backward_s"][prior] = time.perf_counter() - t1
        out["backward"][prior] = bwd
        out["tables"][prior] = closure_table(fwd, bwd.candidates, fwd.tracks, regions,
                                             categories)
        out["interactions"][prior] = interaction_closure(fwd, bwd.interaction_weight,
                                                         fwd.tracks)
    return out
