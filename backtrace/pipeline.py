"""The whole estimate: tracks → backward paths → forced interactions →
products at the detector → two-track candidates → regions → yields.

Per batch of tracks (:meth:`Pipeline.process`; deterministic: every random
stream is keyed by track and sample indices, :mod:`backtrace.rng`):

1. backward transport to the TAX exit with records (:mod:`backtrace.transport`);
2. per-track posterior weights with the source prior at the TAX exit
   (:mod:`backtrace.posterior`, :mod:`backtrace.source_density`);
3. ``interactions_per_history`` independent forced interactions per history
   in z ∈ [``forced_z_min_m``, STRAW1], each weighted 1/K
   (:mod:`backtrace.interactions.forced`);
4. every charged product that could make a track transported to the
   STRAWs and MUV3 (:mod:`backtrace.interactions.products`);
5. two-track candidates, selection, Z_TAX / CDA_TAX, region
   (:mod:`backtrace.detector.candidates`).

:func:`run_estimate` runs passes over the track file (rounds of new
histories until a target MC uncertainty, :func:`next_round`), the
systematic re-runs (:mod:`backtrace.systematics`), combines them
(:mod:`backtrace.estimate`) and returns a :class:`RunResult` whose
``document`` is the ``background.json`` content (:mod:`backtrace.document`).
The method and the weights are described in ``docs/method.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .config import RunConfig, check_run
from .estimate import CATEGORIES, combine_passes, concat, empty_candidates
from .rng import MAX_SAMPLES_PER_TRACK
from .rounds import next_round

__all__ = ["RunConfig", "Pipeline", "RunResult", "run_estimate", "next_round",
           "CATEGORIES", "MAX_SAMPLES_PER_TRACK"]


class Pipeline:
    """Everything one worker process needs for :meth:`process`."""

    def __init__(self, config: RunConfig, beamline=None):
        from .beamline import BeamLine
        from .detector.candidates import Reconstruction
        from .detector.response import Response
        from .interactions.forced import ForcedConfig, ForcedSampler
        from .interactions.products import ProductTransport
        from .regions import load_regions
        from .source_density import density_for_run
        from .transport import TraceConfig, Tracer

        self.config = config
        self.beamline = BeamLine.for_config(config, beamline)
        self.geometry = self.beamline.geometry
        self.regions = load_regions(config.regions_file, config.channel)
        self.tracer = Tracer(TraceConfig(
            geometry_file=config.geometry_file, overrides=tuple(config.overrides),
            samples_per_track=config.samples_per_track, seed=config.seed,
            energy_loss=config.energy_loss, record=True,
            to_z_m=self.beamline.tax_exit_z_m), self.beamline)
        self.response = Response.from_geometry(self.geometry, self.regions.selection,
                                               config.seed)
        self.sampler = ForcedSampler(self.beamline.physics, ForcedConfig(
            processes=config.forced_processes(), allocation=config.forced_allocation(),
            slice_m=config.forcing_slice_m, defensive=config.forcing_defensive
            if config.allocation != "natural" else 0.0,
            q_min_gev=config.q_min_gev, z_min_m=config.forced_z_min_m,
            z_max_m=self.beamline.first_tracker_z_m,
            prompt_z_min_m=config.prompt_boundary_m(self.geometry)))
        self.products = ProductTransport(self.beamline, seed=config.seed,
                                         response=self.response)
        self.recon = Reconstruction.from_beamline(self.beamline, config.seed,
                                                  config.smearing, self.response)
        self.density = density_for_run(config, self.beamline)

    def process(self, tracks: pd.DataFrame, track_weight_scale: float,
                first_sample: int = 0, n_samples: int | None = None) -> dict:
        """One batch of tracks over the sample indices ``first_sample`` …
        ``first_sample + n_samples − 1``.

        Weights of candidates and interactions carry the *unnormalised*
        posterior weight ω·φ·(track weight); ``norm`` is the per-track sum of
        ω·φ over these histories. :func:`backtrace.estimate.combine_passes`
        divides by the sum of ``norm`` over all passes, so passes over
        disjoint sample ranges give exactly the estimate of one pass over
        their union."""
        from .detector.candidates import build_candidates, empty_pairs
        from .interactions.products import TRANSPORT_P_MIN_GEV
        from .posterior import posterior_weights
        from .tracks import numeric_columns

        result = self.tracer.trace(tracks, first_sample, n_samples)
        weights = numeric_columns(tracks)[0]["weight"].to_numpy() if "weight" in tracks \
            else np.ones(len(tracks))
        hist = posterior_weights(result.histories, self.density, prior=self.config.prior,
                                 track_weight=pd.Series(
                                     weights, index=tracks["track_index"].to_numpy()),
                                 normalise=False)
        out = {"row_status": pd.Series(result.row_status, index=result.track_index),
               "history_status": hist.groupby(["track_index", "status"]).size(),
               "norm": hist.groupby("track_index")["posterior_raw"].sum(),
               "norm2": (hist["posterior_raw"] ** 2).groupby(hist["track_index"]).sum(),
               "candidates": pd.DataFrame(), "pairs": empty_pairs(), "interactions": 0,
               "strata": pd.Series(dtype=np.int64),
               "interaction_weight": pd.Series(dtype=float)}
        if result.states is None or result.states.empty:
            return out
        hw = hist.set_index(["track_index", "sample_index"])["posterior_weight"]
        inter, prods, drawn = self._interactions(result.states, hw)
        p = np.linalg.norm(prods[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1) \
            if len(prods) else np.zeros(0)
        # every product that could make a track: the selected pair and the
        # extra activity that vetoes it, whatever their momentum
        prods = prods[p >= TRANSPORT_P_MIN_GEV]
        det = self.products.transport(prods, inter) if len(prods) else pd.DataFrame()
        cands, pairs = build_candidates(det, inter, track_weight_scale, self.regions,
                                        self.recon)
        raw = hist.set_index(["track_index", "sample_index"])["posterior_raw"]
        cands["history_raw"] = raw.reindex(pd.MultiIndex.from_arrays(
            [cands["track_index"], cands["sample_index"]])).to_numpy(float) \
            if len(cands) else np.zeros(0)
        out.update(candidates=cands, pairs=pairs, interactions=len(inter),
                   strata=drawn,
                   interaction_weight=inter.groupby("track_index")["weight"].sum()
                   * track_weight_scale)
        return out

    def _interactions(self, states, history_weight):
        """K independent forced interactions per history, each weighted 1/K;
        returns (interactions, products, draws per stratum)."""
        k_rep = max(int(self.config.interactions_per_history), 1)
        parts_i, parts_p, offset = [], [], 0
        for rep in range(k_rep):
            i_k, p_k = self.sampler.sample(states, seed=self.config.seed,
                                           history_weight=history_weight, repeat=rep)
            i_k = i_k.assign(interaction=i_k["interaction"] + offset,
                             weight=i_k["weight"] / k_rep)
            p_k = p_k.assign(interaction=p_k["interaction"] + offset)
            offset += len(i_k)
            parts_i.append(i_k)
            parts_p.append(p_k)
        inter = pd.concat(parts_i, ignore_index=True)
        prods = pd.concat(parts_p, ignore_index=True)
        drawn = inter.groupby("stratum").size()     # every draw, vetoed or not
        # the incoming muon fires the vetoes it crossed upstream of its interaction
        inter = self.response.with_incoming_vetoes(states, inter)
        inter = inter[inter["weight"] > 0]
        return inter, prods[prods["interaction"].isin(inter["interaction"])], drawn


@dataclass
class RunResult:
    """What :func:`run_estimate` returns: the ``background.json`` document
    and the selected candidates (one row each, with weights)."""

    document: dict
    candidates: pd.DataFrame


def _collect(tracks, config: RunConfig, groups, *, jobs, batch_size, progress, label,
             pipeline=None, scheduler=None) -> dict:
    """One pass over the track file, in one map over the workers: per group
    (first sample, n samples, track indices or None for all), the sample
    indices ``first`` … ``first + n − 1`` of those tracks (unnormalised
    weights)."""
    from .detector.candidates import empty_pairs
    from .executor import progress_bar, worker_map

    scale = config.pot_target / tracks.pot
    batches = ((df, scale, first, n) for first, n, subset in groups
               for df in _batches(tracks, batch_size, subset, jobs))
    results = worker_map(Pipeline, (config,), "process", batches, jobs=jobs,
                         scheduler=scheduler, local=pipeline)
    parts = []
    n_rows = sum(tracks.n_rows if subset is None else len(subset)
                 for _, _, subset in groups)
    with progress_bar(n_rows, label, progress) as bar:
        task = bar.add_task("run", total=n_rows)
        for r in results:
            parts.append(r)
            bar.advance(task, len(r["row_status"]))

    def joined(key, empty):
        return concat([r[key] for r in parts], empty)
    return {"row_status": joined("row_status", pd.Series(dtype=object)),
            "history_status": joined("history_status", pd.Series(dtype=np.int64)),
            "norm": joined("norm", pd.Series(dtype=float)),
            "norm2": joined("norm2", pd.Series(dtype=float)),
            "candidates": joined("candidates", empty_candidates()),
            "pairs": joined("pairs", empty_pairs()),
            "interactions": sum(r["interactions"] for r in parts),
            "strata": joined("strata", pd.Series(dtype=np.int64)).groupby(level=0).sum(),
            "interaction_weight": joined("interaction_weight", pd.Series(dtype=float))}


def _batches(tracks, batch_size, subset, jobs=1):
    """Batches of the track file, or of its rows ``subset`` (track indices)
    regrouped into batches of at most ``batch_size``, at least 2 × ``jobs``
    of them (a subset is a few heavy tracks with many histories each: small
    batches keep every worker busy; results do not depend on batching)."""
    if subset is None:
        yield from tracks.iter_batches(batch_size)
        return
    keep = set(subset)
    rows = pd.concat([df[df["track_index"].isin(keep)]
                      for df in tracks.iter_batches(max(batch_size, 10_000))])
    size = max(1, min(batch_size, -(-len(rows) // (2 * max(int(jobs), 1)))))
    for start in range(0, len(rows), size):
        yield rows.iloc[start:start + size]


def _track_weights(tracks) -> pd.Series:
    """The input weight of every track (Series over track_index; 1 without
    a weight column; non-numeric or negative: 0, such rows fail validation)."""
    parts = []
    for df in tracks.iter_batches(10_000):
        w = pd.to_numeric(df["weight"], errors="coerce") if "weight" in df \
            else pd.Series(1.0, index=df.index)
        parts.append(pd.Series(w.fillna(0.0).clip(lower=0.0).to_numpy(float),
                               index=df["track_index"].to_numpy()))
    return pd.concat(parts) if parts else pd.Series(dtype=float)


def _reruns(tracks, probe, systematics, plan, **run) -> dict:
    """{variation: {direction: (Variation, combined estimate)}} of the
    systematic re-runs with common random numbers: the passes of ``plan``
    ((groups, configuration) of each round) again, varied."""
    from .systematics import rerun_variations, varied_config

    reruns: dict = {}
    config = plan[0][1]
    for v in rerun_variations(probe.geometry, systematics, config.energy_loss):
        passes = []
        for groups, cfg in plan:
            vc = varied_config(cfg, v, cfg.samples_per_track)
            local = Pipeline(vc) if run["jobs"] <= 1 else None
            passes.append(_collect(tracks, vc, groups, pipeline=local,
                                   label=f"syst {v.name} {v.direction}", **run))
        reruns.setdefault(v.name, {})[v.direction] = (v, combine_passes(passes))
    return reruns


def run_estimate(tracks, config: RunConfig, *, jobs: int = 1, batch_size: int = 200,
                 progress: bool = True, systematics: str = "fast",
                 target_rel_unc: float | None = None,
                 max_samples_per_track: int = 256, max_time_s: float | None = None,
                 log=None, scheduler: str | None = None,
                 target_cell=("outside", "mu-mu")) -> RunResult:
    """Run the pipeline over a track file (a :class:`backtrace.tracks.Tracks`).

    ``target_rel_unc``: add rounds of histories (new sample indices: new,
    independent random streams) until the relative MC uncertainty of
    ``target_cell`` ((region, category); None: all categories and regions)
    is at most this, or ``max_samples_per_track`` / ``max_time_s`` is
    reached (:mod:`backtrace.rounds`; with the 'auto' allocation later
    rounds use the Neyman allocation of :mod:`backtrace.allocation`).
    ``systematics``: 'none', 'fast' or 'full' (:mod:`backtrace.systematics`).
    ``log``: optional callable receiving one line per round."""
    from .document import build_document, validate_document
    from .rounds import mc_summary, run_rounds

    check_run(tracks, config, systematics, target_rel_unc, max_samples_per_track)
    t0 = time.perf_counter()
    probe = Pipeline(config)
    run = dict(jobs=jobs, batch_size=batch_size, progress=progress, scheduler=scheduler)

    def collect(groups, label, round_config):
        local = probe if round_config.forced_allocation() == config.forced_allocation() \
            else Pipeline(round_config, beamline=probe.beamline)
        return _collect(tracks, round_config, groups, pipeline=local, label=label, **run)
    est, rounds, n_total, stopped_by, plan = run_rounds(
        collect, config, target_rel_unc, max_samples_per_track, max_time_s, log, t0,
        target_cell, strata=probe.sampler.strata(),
        track_weights=_track_weights(tracks) if config.track_allocation == "weight"
        else None)
    mc = mc_summary(rounds, n_total, stopped_by, target_rel_unc, max_samples_per_track,
                    max_time_s, time.perf_counter() - t0, target_cell)
    reruns = _reruns(tracks, probe, systematics, plan, **run)
    final = replace(config, samples_per_track=n_total)
    doc = build_document(tracks, final, probe.geometry, probe.regions, est, reruns,
                         systematics, mc, time.perf_counter() - t0, probe.response)
    return RunResult(validate_document(doc), est["candidates"])
