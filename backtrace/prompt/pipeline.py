"""The whole estimate: tracks → backward paths → forced interactions →
products at the detector → two-track candidates → regions → yields.

Per batch of tracks (:meth:`Pipeline.process`; deterministic: every random
stream is keyed by track and sample indices, :mod:`backtrace.rng`):

1. backward transport to the TAX exit with records (:mod:`backtrace.transport`);
2. per-track posterior weights with the source prior at the TAX exit
   (:mod:`backtrace.prompt.posterior`, :mod:`backtrace.source.density`);
3. forced interactions in z ∈ [``forced_z_min_m``, STRAW1] drawn along the
   histories by the pass's draw plan (on average ``interactions_per_history``
   per history; :mod:`backtrace.interactions.forced`,
   :mod:`backtrace.prompt.allocation`);
4. every charged product that could make a track transported to the
   STRAWs and MUV3 (:mod:`backtrace.interactions.products`);
5. two-track candidates, selection, Z_TAX / CDA_TAX, region
   (:mod:`backtrace.detector.candidates`).

:func:`run_estimate` runs passes over the track file (rounds of new
histories until a target MC uncertainty, :func:`next_round`), the
systematic re-runs (:mod:`backtrace.prompt.systematics`), combines them
(:mod:`backtrace.prompt.estimate`) and returns a :class:`RunResult` whose
``document`` is the ``background.json`` content (:mod:`backtrace.prompt.document`).
The method and the weights are described in ``docs/method.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from backtrace.beamline.line import BeamLine
from backtrace.detector.candidates import (
    Reconstruction,
    build_candidates,
    kinematic_precheck,
)
from backtrace.detector.response import Response
from backtrace.executor import progress_bar, worker_pool
from backtrace.interactions.forced import ForcedConfig, ForcedSampler
from backtrace.interactions.products import TRANSPORT_P_MIN_GEV, ProductTransport
from backtrace.prompt.config import (
    TRANSFER_BIAS_DEFENSIVE,
    TRANSFER_BIAS_MARGIN,
    RunConfig,
    check_run,
)
from backtrace.prompt.document import build_document
from backtrace.prompt.estimate import CATEGORIES, concat
from backtrace.prompt.passes import (
    Combined,
    Pass,
    combine_passes,
    empty_candidates,
    empty_g_sums,
    join_passes,
)
from backtrace.prompt.posterior import posterior_weights
from backtrace.prompt.rounds import (
    RoundLimits,
    Rounds,
    mc_summary,
    next_round,
    run_rounds,
    stratum_table,
)
from backtrace.prompt.systematics import rerun_variations, varied_config
from backtrace.regions import load_regions
from backtrace.rng import MAX_SAMPLES_PER_TRACK
from backtrace.source.density import density_for_run
from backtrace.tracks import numeric_columns
from backtrace.transport import TraceConfig, Tracer

__all__ = ["RunConfig", "Pipeline", "RunResult", "run_estimate", "next_round",
           "CATEGORIES", "MAX_SAMPLES_PER_TRACK", "RoundLimits"]


class Pipeline:
    """Everything one worker process needs for :meth:`process`."""

    def __init__(self, config: RunConfig, beamline=None, *, backward: bool = True):
        """``backward=False``: only the forced interactions and the detector
        (no backward tracer, no source density), for the forward prompt
        simulation (:mod:`backtrace.forward.simulation`)."""
        self.config = config
        self.beamline = BeamLine.for_config(config, beamline)
        self.geometry = self.beamline.geometry
        self.regions = load_regions(config.regions_file, config.channel)
        self.tracer = Tracer(TraceConfig(
            geometry_file=config.geometry_file, overrides=tuple(config.overrides),
            samples_per_track=config.samples_per_track, seed=config.seed,
            energy_loss=config.energy_loss, record=True,
            to_z_m=self.beamline.tax_exit_z_m), self.beamline) if backward else None
        self.response = Response.from_geometry(self.geometry, self.regions.selection,
                                               config.seed)
        self.sampler = ForcedSampler(self.beamline.physics, ForcedConfig(
            processes=config.forced_processes(), allocation=config.forced_allocation(),
            defensive=config.forcing_defensive if config.allocation != "natural" else 0.0,
            q_min_gev=config.q_min_gev, z_min_m=config.forced_z_min_m,
            z_max_m=self.beamline.first_tracker_z_m,
            prompt_z_min_m=config.prompt_boundary_m(self.geometry),
            veto_log_inefficiency=tuple(sorted(self.response.log_inefficiency.items())),
            veto_floor=config.veto_floor,
            transfer_bias=_transfer_bias(config, self.regions.selection),
            final_states_per_point=config.final_states_per_point))
        self.products = ProductTransport(self.beamline, seed=config.seed,
                                         response=self.response)
        self.recon = Reconstruction.from_beamline(self.beamline, config.seed,
                                                  config.smearing, self.response,
                                                  config.resolution_scale)
        self.density = density_for_run(config, self.beamline) if backward else None

    def process(self, tracks: pd.DataFrame, track_weight_scale: float,
                first_sample: int = 0, n_samples: int | None = None, plan=None) -> Pass:
        """One batch of tracks over the sample indices ``first_sample`` …
        ``first_sample + n_samples − 1``, forced with the draw ``plan``
        (default: the configuration's first plan).

        Weights of candidates and interactions carry the *unnormalised*
        posterior weight ω·φ·(track weight); ``norm`` is the per-track sum of
        ω·φ over these histories. :func:`backtrace.prompt.estimate.combine_passes`
        divides by the sum of ``norm`` over all passes, so passes over
        disjoint sample ranges give exactly the estimate of one pass over
        their union."""
        n = self.config.samples_per_track if n_samples is None else n_samples
        result = self.tracer.trace(tracks, first_sample, n)
        weights = numeric_columns(tracks)[0]["weight"].to_numpy() if "weight" in tracks \
            else np.ones(len(tracks))
        track_weight = pd.Series(weights, index=tracks["track_index"].to_numpy())
        hist = posterior_weights(result.histories, self.density, prior=self.config.prior,
                                 track_weight=track_weight, normalise=False)
        forced = Pass()
        if result.states is not None and not result.states.empty:
            histories = _history_table(hist, track_weight, n, first_sample + n)
            forced = self.forced(result.states, histories, hist, track_weight_scale, plan)
        return replace(
            forced, row_status=pd.Series(result.row_status, index=result.track_index),
            history_status=hist.groupby(["track_index", "status"]).size(),
            norm=hist.groupby("track_index")["posterior_raw"].sum(),
            norm2=(hist["posterior_raw"] ** 2).groupby(hist["track_index"]).sum())

    def forced(self, states: pd.DataFrame, histories: pd.DataFrame, hist: pd.DataFrame,
               track_weight_scale: float, plan=None) -> Pass:
        """Steps 3–5 for recorded paths ``states`` (the layout of backward
        traces, :func:`backtrace.interactions.forced.segments`): forced
        draws with the history weights and shares of ``histories``
        (:func:`_history_table`), products through the detector, candidates.
        ``hist``: per history ``posterior_raw`` (ω φ). Returns the forced
        part of a :class:`~backtrace.prompt.passes.Pass` (candidates, pairs,
        interactions, strata, g_sums and the interaction weights).

        Memory grows with the draws held at once, so the tracks are taken in
        groups of about :data:`MAX_DRAWS_PER_GROUP` expected draws; every
        random stream and every plan quantity is per track or history, so
        the result does not depend on the grouping."""
        plan = plan or self.config.first_plan()
        tracks = pd.unique(states["track_index"].to_numpy())
        n_groups = int(np.ceil(len(histories) * float(plan.per_history)
                               / MAX_DRAWS_PER_GROUP))
        if n_groups <= 1:
            return self._forced_group(states, histories, hist, track_weight_scale, plan)
        parts = []
        for group in np.array_split(tracks, min(n_groups, len(tracks))):
            def of(frame, by_level=False):
                keys = frame.index.get_level_values(0) if by_level else frame["track_index"]
                return frame[np.isin(keys, group)]
            parts.append(self._forced_group(of(states), of(histories, by_level=True),
                                            of(hist), track_weight_scale, plan))
        return join_passes(parts)

    def _forced_group(self, states, histories, hist, track_weight_scale, plan) -> Pass:
        """:meth:`forced` on one group of tracks."""
        inter, prods, info = self.sampler.draws(
            states, self.config.seed, histories["weight"],
            plan or self.config.first_plan(), histories)
        # the η share of the incoming muon's veto survival and its hits on
        # the upstream-activity surfaces (its survival is in the weight)
        inter = self.response.incoming_columns(states, inter[inter["weight"] > 0])
        prods = prods[prods["interaction"].isin(inter["interaction"])]
        p = np.linalg.norm(prods[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1) \
            if len(prods) else np.zeros(0)
        # every product that could make a track: the selected pair and the
        # extra activity that vetoes it, whatever their momentum
        prods = prods[p >= TRANSPORT_P_MIN_GEV]
        det = self.products.transport(prods, inter, precheck=lambda readout: kinematic_precheck(
            readout, inter, self.recon, self.regions.selection)) if len(prods) \
            else pd.DataFrame()
        cands, pairs = build_candidates(det, inter, track_weight_scale, self.regions,
                                        self.recon)
        cands = _with_draw_columns(cands, inter, hist, track_weight_scale)
        return Pass(candidates=cands, pairs=pairs, interactions=len(inter),
                    strata=info["drawn"], g_sums=_g_sums(info["keys"], hist),
                    process_weight=inter.groupby(["track_index", "process"])["weight"].sum()
                    * track_weight_scale,
                    interaction_weight=inter.groupby("track_index")["weight"].sum()
                    * track_weight_scale,
                    history_interaction_weight=inter.groupby(
                        ["track_index", "sample_index"])["weight"].sum() * track_weight_scale)


#: Expected forced draws held in memory at once by :meth:`Pipeline.forced`
#: [est: 20 000, range 5 000–100 000: ~40 kB per draw with its products and
#: detector hits was measured at k = 256 (8.5 GB for 2 × 10⁵ draws), so
#: ~1 GB; groups much smaller than this only add per-call overhead].
#: Measured: 200 example tracks × 4 histories × k = 256 (2.0 × 10⁵ draws),
#: one worker: peak RSS 1.26 GB grouped vs 9.92 GB in one group, same
#: estimate to the last digit, 79 s vs 99 s.
MAX_DRAWS_PER_GROUP = 20_000


def _transfer_bias(config: RunConfig, selection: dict):
    """(q_c, δ_q) of the energy-transfer bias, or None (off, or no momentum cut)."""
    p_min = float(selection.get("track_p_min_gev", 0.0) or 0.0)
    if not config.transfer_bias or config.allocation == "natural" \
            or not p_min * TRANSFER_BIAS_MARGIN > config.q_min_gev:
        return None
    return (TRANSFER_BIAS_MARGIN * p_min, TRANSFER_BIAS_DEFENSIVE)


def _history_table(hist: pd.DataFrame, track_weight: pd.Series, n_pass: int,
                   n_total: int) -> pd.DataFrame:
    """Per history of the pass: ``weight`` (ω φ × track weight, carried by
    its draws), ``share`` (its posterior share among the track's histories
    of the pass) and ``importance`` W_h = track weight × share × n_pass /
    n_total (the allocation's weight of the history)."""
    h = hist.set_index(["track_index", "sample_index"])
    raw = h["posterior_raw"].to_numpy(float)
    norm = h["posterior_raw"].groupby(level=0).transform("sum").to_numpy(float)
    share = np.divide(raw, norm, out=np.zeros_like(raw), where=norm > 0)
    tw = track_weight.reindex(h.index.get_level_values(0)).to_numpy(float)
    return pd.DataFrame({"weight": h["posterior_weight"].to_numpy(float), "share": share,
                         "importance": tw * share * n_pass / max(n_total, 1)},
                        index=h.index)


def _with_draw_columns(cands, inter, hist, scale) -> pd.DataFrame:
    """Candidates with ``history_raw`` (ω φ of their history), ``outcome``
    (weight over the draw's allocation weight: the selected outcome f that
    the importance allocation models) and ``history_draws``."""
    if not len(cands):
        return cands.assign(history_raw=np.zeros(0), outcome=np.zeros(0),
                            history_draws=np.zeros(0, np.int64))
    raw = hist.set_index(["track_index", "sample_index"])["posterior_raw"]
    i = inter.set_index("interaction").loc[cands["interaction"]]
    return cands.assign(
        history_raw=raw.reindex(pd.MultiIndex.from_arrays(
            [cands["track_index"], cands["sample_index"]])).to_numpy(float),
        outcome=cands["weight"].to_numpy(float)
        / (i["draw_weight"].to_numpy(float) * scale),
        history_draws=i["history_draws"].to_numpy(np.int64))


def _g_sums(keys: pd.DataFrame, hist: pd.DataFrame) -> pd.DataFrame:
    """Σ_h ω_h φ_h G_{h,s} per (track, stratum) of a pass: divided by the
    track's Σ ω φ over all passes it is the posterior mean of G."""
    if not len(keys):
        return empty_g_sums()
    raw = hist.set_index(["track_index", "sample_index"])["posterior_raw"]
    k = keys.assign(g=keys["g"].to_numpy(float) * raw.reindex(pd.MultiIndex.from_arrays(
        [keys["track_index"], keys["sample_index"]])).to_numpy(float))
    return k.groupby(["track_index", "stratum"], sort=True)["g"].sum().reset_index()


@dataclass
class RunResult:
    """What :func:`run_estimate` returns: the ``background.json`` document
    (not yet schema-checked: it is checked once, when written), the
    selected candidates (one row each, with weights) and, per track, the
    forced interactions' weight (normalised like the candidates; the
    forward prompt closure compares it per event)."""

    document: dict
    candidates: pd.DataFrame
    interaction_weight: pd.Series | None = None
    #: the combined estimate (per-track norms for MC errors of any subset)
    estimate: Combined | None = None


@dataclass(frozen=True)
class Execution:
    """Where and how the batches run (none of it changes the results):
    worker processes ``jobs``, tracks per ``batch_size``, a progress bar,
    a Dask ``scheduler`` (:func:`backtrace.executor.worker_pool`)."""

    jobs: int = 1
    batch_size: int = 200
    progress: bool = True
    scheduler: str | None = None


def _collect(tracks, config: RunConfig, groups, plan, *, mapper, run: Execution,
             label) -> Pass:
    """One pass over the track file, in one map over the workers
    (``mapper``: :func:`backtrace.executor.worker_pool`): per group (first
    sample, n samples, track indices or None for all), the sample indices
    ``first`` … ``first + n − 1`` of those tracks, forced with the draw
    ``plan`` (unnormalised weights)."""
    scale = config.pot_target / tracks.pot
    # the groups with the most histories per track first (the longest tasks
    # start first: less idle time at the end of the map); results do not
    # depend on the order
    ordered = sorted(groups, key=lambda g: -g[1])
    batches = ((df, scale, first, n, plan) for first, n, subset in ordered
               for df in _batches(tracks, run.batch_size, subset, run.jobs))
    results = mapper(Pipeline.process, batches)
    parts = []
    n_rows = sum(tracks.n_rows if subset is None else len(subset)
                 for _, _, subset in groups)
    with progress_bar(n_rows, label, run.progress) as bar:
        task = bar.add_task("run", total=n_rows)
        for r in results:
            parts.append(r)
            bar.advance(task, len(r.row_status))
    return join_passes(parts)


def _batches(tracks, batch_size, subset, jobs=1):
    """Batches of the track file, or of its rows ``subset`` (track indices)
    regrouped into batches of at most ``batch_size``, at least 4 × ``jobs``
    of them (a subset is a few heavy tracks with many histories each: small
    batches keep every worker busy; results do not depend on batching)."""
    if subset is None:
        yield from tracks.iter_batches(batch_size)
        return
    keep = set(subset)
    rows = pd.concat([df[df["track_index"].isin(keep)]
                      for df in tracks.iter_batches(max(batch_size, 10_000))])
    size = max(1, min(batch_size, -(-len(rows) // (4 * max(int(jobs), 1)))))
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


#: Share of the nominal histories that each systematic re-run may replay
#: when the estimate took several rounds [est: 0.1, range 0.05–0.3]: a
#: re-run replays the leading rounds within it, and the shift is measured on
#: them against the nominal estimate of the same rounds (common random
#: numbers); its paired Monte Carlo spread is reported with it. Counted in
#: histories, not seconds, so that the replay does not depend on the
#: machine's speed.
SYSTEMATICS_REPLAY_SHARE = 0.1


def replayed_rounds(records: list[dict], share: float = SYSTEMATICS_REPLAY_SHARE) -> int:
    """How many leading rounds a re-run replays: those whose cumulative
    histories are within ``share`` of the whole (at least one)."""
    total = records[-1]["histories"] if records else 0
    k = sum(1 for r in records if r["histories"] <= share * total)
    return max(k, 1)


def _reruns(tracks, probe, systematics, rounds: Rounds, n_replay, run: Execution) -> dict:
    """{variation: {direction: (Variation, estimate)}} of the systematic
    re-runs with common random numbers: the first ``n_replay`` rounds
    (their :class:`~backtrace.prompt.rounds.RoundSpec`) again, varied. When
    they are not all the rounds, the estimate returned is the nominal one
    shifted by (varied − nominal) over the replayed rounds: its candidates
    are the nominal ones plus the replayed varied ones plus the replayed
    nominal ones with negated weights, so that every sum and per-track
    difference the systematics take is that shift."""
    reruns: dict = {}
    config = probe.config
    partial = n_replay < len(rounds.specs)
    nominal_part = combine_passes(rounds.passes[:n_replay]) if partial else None
    for v in rerun_variations(probe.geometry, systematics, config.energy_loss):
        vc = varied_config(config, v, config.samples_per_track)
        with worker_pool(Pipeline, (vc,), jobs=run.jobs, scheduler=run.scheduler) as mapper:
            varied = [_collect(tracks, vc, spec.groups, spec.draw_plan, mapper=mapper,
                               run=run, label=f"syst {v.name} {v.direction}")
                      for spec in rounds.specs[:n_replay]]
        est = combine_passes(varied)
        if partial:
            est = _shifted(rounds.estimate, est, nominal_part)
        reruns.setdefault(v.name, {})[v.direction] = (v, est)
    return reruns


def _shifted(full: Combined, varied: Combined, nominal: Combined) -> Combined:
    """``full`` shifted by ``varied`` − ``nominal`` (see :func:`_reruns`)."""
    c = [full.candidates, varied.candidates,
         nominal.candidates.assign(weight=-nominal.candidates["weight"])]
    return replace(full, candidates=concat([x for x in c if len(x)], empty_candidates()),
                   interaction_weight=full.interaction_weight + varied.interaction_weight
                   - nominal.interaction_weight)


def _replay_note(records: list[dict], n_replay: int) -> dict:
    """The ``mc.systematics_replay`` block: which rounds the re-runs replay."""
    return {"rounds": n_replay, "of_rounds": len(records),
            "histories": records[n_replay - 1]["histories"],
            "share_limit": SYSTEMATICS_REPLAY_SHARE,
            "note": "each re-run replays the leading rounds within the share of the "
                    "nominal histories; its shift is measured against the nominal "
                    "estimate of the same rounds (common random numbers)"}


def run_estimate(tracks, config: RunConfig, *, jobs: int = 1, batch_size: int = 200,
                 progress: bool = True, systematics: str = "fast",
                 target_rel_unc: float | None = None,
                 max_samples_per_track: int = 16384, max_time_s: float | None = None,
                 max_rounds: int | None = None, replay: tuple[int, str] | None = None,
                 log=None, scheduler: str | None = None,
                 target_cell=("outside", "mu-mu"), clock=time.perf_counter) -> RunResult:
    """Run the pipeline over a track file (a :class:`backtrace.tracks.Tracks`).

    ``target_rel_unc``: add rounds of histories (new sample indices: new,
    independent random streams) until the relative MC uncertainty of
    ``target_cell`` ((region, category); None: all categories and regions)
    is at most this, or a limit stops them: ``max_samples_per_track``,
    ``max_rounds``, ``max_time_s`` (:mod:`backtrace.prompt.rounds`: the
    clock only decides whether another round starts; with the 'auto'
    allocation later rounds use the importance allocation of
    :mod:`backtrace.prompt.allocation`). ``systematics``: 'none', 'fast' or
    'full' (:mod:`backtrace.prompt.systematics`). ``replay``: (rounds, stop
    reason) of a recorded run to reproduce (:class:`~backtrace.prompt.rounds.RoundLimits`). ``log``: optional
    callable receiving one line per round; ``clock``: seconds (a test can
    slow it down)."""
    check_run(tracks, config, systematics, target_rel_unc, max_samples_per_track)
    limits = RoundLimits(target_rel_unc, max_samples_per_track, max_rounds, max_time_s, replay)
    run = Execution(jobs, batch_size, progress, scheduler)
    t0 = clock()
    probe = Pipeline(config)
    with worker_pool(Pipeline, (config,), jobs=jobs, scheduler=scheduler,
                     local=probe) as mapper:
        def collect(groups, label, draw_plan):
            return _collect(tracks, config, groups, draw_plan, mapper=mapper, run=run,
                            label=label)
        rounds = run_rounds(collect, config, limits, target_cell=target_cell,
                            track_weights=_track_weights(tracks), log=log, clock=clock)
    mc = mc_summary(rounds, limits, clock() - t0, target_cell)
    mc["forcing"] = stratum_table(rounds.estimate, target_cell)
    n_replay = replayed_rounds(rounds.records)
    if systematics != "none":
        mc["systematics_replay"] = _replay_note(rounds.records, n_replay)
    reruns = _reruns(tracks, probe, systematics, rounds, n_replay, run)
    final = replace(config, samples_per_track=rounds.samples_per_track)
    est = rounds.estimate
    doc = build_document(tracks, final, probe.geometry, probe.regions, est, reruns,
                         systematics, mc, clock() - t0, probe.response)
    return RunResult(doc, est.candidates, est.interaction_weight_by_track, est)
