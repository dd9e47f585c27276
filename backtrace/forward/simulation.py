"""Forward prompt simulation: the two-track prompt yield from the dump
source model, transported forward — the reference the backward method
(``backtrace run``) is checked against (``docs/method.md``, "Forward prompt
simulation and closure").

Per batch of MC source events (:mod:`backtrace.source.model`):

1. every source muon is transported forward with PUMAS to the TAX exit (stage
   1, exactly as ``simulate-tracks``, :meth:`backtrace.source.forward.Simulator.to_tax_exit`),
   then from there to STRAW1's entry face with recorded states (stage 2):
   its *true* path, the counterpart of a back-traced history;
2. the recorded path is put into the layout of a backward trace
   (:func:`backward_layout`), and the run's own pieces take over
   (:meth:`backtrace.prompt.pipeline.Pipeline.forced`): the same forced
   interactions (processes, strata, energy bands, draw plan, transfer bias,
   veto-aware importance), products forward through the detector, the same
   response, vetoes, reconstruction, selection and regions;
3. every muon is one "track" with one history of weight
   w = (source weight per POT) × (PUMAS weights of the two stages), the
   candidates are scaled to the target POT, and the result is the same
   ``background.json`` document as ``run`` (no posterior: the path is known).

**Visible events.** A source muon is *visible* to the backward method when
its stage-2 path — the incoming muon's path, along which the interactions
are forced, continued to the end as if it had not interacted (which is what
the backward method assumes of an observed track) — crosses the STRAW1 entry
plane inside the acceptance annulus (``acceptance_r_m``): exactly the
condition under which ``simulate-tracks`` writes it into the single-track
sample (no momentum threshold besides reaching the plane). The visible
muons are written as a single-track sample (:attr:`ForwardResult.tracks`);
``backtrace run`` on it estimates the visible part of the forward yield. The
forward yield of the other muons (absorbed, swept out or outside the
annulus, while their interaction products reach the spectrometer) is what
the backward method cannot see.

**Allocation.** The source muons' weights span ten decades (the source
model's decay and production weights times PUMAS's), and few of the muons
that reach the forcing window carry the yield. With the ``auto``
allocation the forced draws are therefore made in two passes over the same
events: a pilot (:data:`PILOT_FRACTION` of the draws per path, the run's
pilot rule: every muon the same draws, equal per process) measures each
stratum's selected outcome on μ-μ outside SR/CR, then the stage-2 paths are
traced again — identical, their random streams depend on (seed, muon,
path) only — and the importance pass draws k per path on average with the
run's importance allocation (:func:`backtrace.prompt.allocation.importance_plan`:
draws ∝ muon weight × path importance × the stratum's outcome, 10 % kept on
the pilot rule), under new sample indices (new streams). The estimate is
the importance pass alone: every draw is weighted by what it represents, so
it is unbiased given any plan, and the pilot, made with another allocation,
would only add its own heavier tails. Cost: the stage-2 transport twice and
(1 + PILOT_FRACTION) × the draws.

**Random streams.** Stage 1 uses the ``simulate-tracks`` keys (source muon
key k = 4e + m, sample 0); stage 2, the forced interactions and their
products use the track index :data:`backtrace.rng.FORWARD_TRACK_OFFSET` + k,
which no track of a backward run (track index < 2³⁵) has, so a forward and
a backward estimate with the same seed share no interaction or product
stream. Results are identical for any ``--jobs`` and batch size.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from backtrace.executor import progress_bar, worker_pool
from backtrace.interactions.forced import DrawPlan
from backtrace.prompt.allocation import importance_plan
from backtrace.prompt.config import RunConfig
from backtrace.prompt.document import build_document
from backtrace.prompt.estimate import concat, total_prompt
from backtrace.prompt.passes import Pass, combine_passes, join_passes
from backtrace.prompt.pipeline import Pipeline
from backtrace.prompt.rounds import DEFAULT_TARGET_CELL, importance_inputs
from backtrace.rng import FORWARD_TRACK_OFFSET, MAX_SAMPLES_PER_TRACK, MUONS_PER_EVENT
from backtrace.source.forward import SimulationConfig, Simulator, _tracks_from
from backtrace.source.model import SourceConfig
from backtrace.tracks import momentum_gev
from backtrace.transport import TraceConfig, Tracer

__all__ = ["PromptSimConfig", "ForwardPrompt", "ForwardBatch", "ForwardResult",
           "backward_layout",
           "simulate_prompt", "FORWARD_TRACK_OFFSET", "event_of", "forward_importance_plan",
           "PILOT_FRACTION"]


@dataclass(frozen=True)
class PromptSimConfig:
    """What ``simulate-prompt`` does (recorded in its ``background.json``).

    ``run``: the estimate's configuration (geometry, selection, forcing, seed,
    target POT; the backward-only fields — histories, prior, density — are
    unused); ``n_events``: MC source events; ``pot_sample``: the POT the
    written single-track sample of the visible muons is normalised to
    (weights, as ``simulate-tracks --pot``); ``acceptance_r_m``: the STRAW1
    annulus of the visible muons; ``paths_per_muon``: stage-2 paths traced
    from each muon's TAX-exit state (splitting: each carries 1/N of the
    muon's weight; every visible path is one track of the sample);
    ``importance_round``: with ``run.allocation == 'auto'``, a pilot pass
    and an importance pass (module docstring, "Allocation");
    ``first_event``: the events simulated are first_event …
    first_event + n_events − 1 (their random streams are those of the same
    events in one larger run; the yield is normalised to n_events), so that
    runs over disjoint event ranges are independent and can be averaged."""

    run: RunConfig = field(default_factory=RunConfig)
    n_events: int = 20_000
    source: SourceConfig = field(default_factory=SourceConfig)
    acceptance_r_m: tuple[float, float] = (0.1, 1.0)
    pot_sample: float = 1e10
    paths_per_muon: int = 1
    importance_round: bool = True
    first_event: int = 0

    def __post_init__(self):
        if not 1 <= self.paths_per_muon <= MAX_SAMPLES_PER_TRACK:
            raise ValueError(f"paths per muon = {self.paths_per_muon}: the random-key "
                             f"layout holds 1 to {MAX_SAMPLES_PER_TRACK}")
        if self.n_events < 1:
            raise ValueError("n_events must be >= 1")
        if self.first_event < 0:
            raise ValueError("first_event must be >= 0")
        if (self.first_event + self.n_events) * 4 >= FORWARD_TRACK_OFFSET:
            raise ValueError(f"events up to {self.first_event + self.n_events}: the "
                             "random-key layout holds "
                             f"{FORWARD_TRACK_OFFSET // 4} (backtrace.rng)")
        if not self.pot_sample > 0:
            raise ValueError("pot_sample must be positive")
        lo, hi = self.acceptance_r_m
        if not 0 <= lo < hi:
            raise ValueError(f"acceptance radii {self.acceptance_r_m}: need 0 <= rmin < rmax")

    def simulation(self):
        """The ``simulate-tracks`` configuration of the same source muons."""
        r = self.run
        return SimulationConfig(geometry_file=r.geometry_file, overrides=tuple(r.overrides),
                                n_events=self.n_events, seed=r.seed, pot=self.pot_sample,
                                energy_loss=r.energy_loss, acceptance="straw1",
                                acceptance_r_m=tuple(self.acceptance_r_m),
                                source=self.source)

    def to_dict(self) -> dict:
        return {"run": self.run.to_dict(), "n_events": self.n_events,
                "source": asdict(self.source), "acceptance_r_m": list(self.acceptance_r_m),
                "pot_sample": self.pot_sample, "paths_per_muon": self.paths_per_muon,
                "importance_round": self.importance_round, "first_event": self.first_event}


#: Share of the draws per path that the pilot pass makes, relative to the
#: importance pass's k [est: 0.25, range 0.1–1: enough pilot draws to rank
#: the strata (a stratum with few draws falls back on its process's
#: outcome, backtrace.prompt.allocation.PSEUDO_DRAWS) for a quarter of the cost].
PILOT_FRACTION = 0.25


def pilot_draws_per_path(k: float) -> float:
    """The pilot pass's draws per path for ``k`` in the importance pass."""
    return max(1.0, round(PILOT_FRACTION * k))


def forward_importance_plan(config: PromptSimConfig, pilot: Pass, paths: pd.DataFrame):
    """The importance pass's draw plan from the ``pilot`` pass
    (:func:`backtrace.prompt.passes.join_passes` of the pilot's batches) and its
    ``paths`` (:meth:`ForwardPrompt.process`): the run's importance
    allocation on μ-μ outside SR/CR with each muon's weight as its track
    weight and a budget of k draws per path with a forcing segment (the
    pilot's draws × k / its draws per path)."""
    est = combine_passes([pilot])
    r_s, g_mean = importance_inputs([pilot], est, DEFAULT_TARGET_CELL)
    muon_weight = paths.groupby("track_index")["weight"].mean()
    k = float(config.run.interactions_per_history)
    # the pilot drew k_pilot per path with a forcing segment
    budget = pilot.interactions * k / pilot_draws_per_path(k)
    return importance_plan(r_s, g_mean, muon_weight, pd.Series(1.0, index=muon_weight.index),
                           budget, config.run.forced_processes(), k)


def event_of(track_index) -> np.ndarray:
    """The MC event of a forward track index (FORWARD_TRACK_OFFSET + 4e + m)."""
    return (np.asarray(track_index, np.int64) - FORWARD_TRACK_OFFSET) // MUONS_PER_EVENT


def backward_layout(states: pd.DataFrame) -> pd.DataFrame:
    """Forward-recorded states in the layout of a backward trace, which the
    forced sampler and the veto runs assume (:func:`backtrace.interactions.
    forced.segments`): per history, states from downstream to upstream
    (``state_index`` 0 the most downstream), grammage and distance counted
    from the downstream end, and each state labelled with the volume and
    material of the segment *upstream* of it (a forward record holds the
    one downstream of it; the most upstream state gets 'outside', as the end
    state of a backward trace). Positions, directions (of motion) and
    energies are unchanged."""
    if states is None or states.empty:
        return states
    s = states.sort_values(["track_index", "sample_index", "state_index"],
                           kind="stable", ascending=[True, True, False]).reset_index(drop=True)
    track = s["track_index"].to_numpy()
    sample = s["sample_index"].to_numpy()
    first = np.r_[True, (track[1:] != track[:-1]) | (sample[1:] != sample[:-1])]
    start = np.flatnonzero(first)
    length = np.diff(np.r_[start, len(s)])
    head = np.repeat(start, length)
    # the first row of each reversed history is the forward path's last state
    out = s.assign(
        state_index=(np.arange(len(s)) - head).astype(s["state_index"].dtype),
        grammage_kg_m2=s["grammage_kg_m2"].to_numpy()[head] - s["grammage_kg_m2"].to_numpy(),
        distance_m=s["distance_m"].to_numpy()[head] - s["distance_m"].to_numpy())
    last = np.r_[first[1:], True]
    nxt = np.minimum(np.arange(len(s)) + 1, len(s) - 1)
    for col in ("volume", "material"):
        values = s[col].to_numpy(object)
        shifted = np.where(last, "outside", values[nxt])
        out[col] = pd.array(shifted, dtype=s[col].dtype)
    return out


class ForwardPrompt:
    """One worker: source sampling, the two forward stages and the run's
    forced interactions and detector (:meth:`process`)."""

    def __init__(self, config: PromptSimConfig, beamline=None):
        self.config = config
        self.chain = Pipeline(config.run, beamline, backward=False)
        self.beamline = self.chain.beamline
        self.simulator = Simulator(config.simulation(), self.beamline)
        self.plane_z_m = self.beamline.first_tracker_z_m
        r = config.run
        self.tracer = Tracer(TraceConfig(
            geometry_file=r.geometry_file, overrides=tuple(r.overrides),
            direction="forward", to_z_m=self.plane_z_m, energy_loss=r.energy_loss,
            record=True, seed=r.seed, samples_per_track=config.paths_per_muon),
            self.beamline)

    def process(self, events: np.ndarray, plan=None, sample_offset: int = 0) -> ForwardBatch:
        """The MC ``events`` (indices of the configured range) as a
        :class:`ForwardBatch`: a pass of the estimate (each source muon a
        track, each of its stage-2 paths a history of unit posterior), its
        paths and the visible tracks.

        ``plan``: the forced draws' :class:`backtrace.interactions.forced.
        DrawPlan` (default the configuration's first plan);
        ``sample_offset``: added to the paths' sample indices before the
        forced draws, so that a second pass over the same (identically
        re-traced) paths draws from new random streams."""
        cfg = self.config
        n = cfg.paths_per_muon
        src, key, h1 = self.simulator.to_tax_exit(cfg.run.seed, np.asarray(events, np.int64),
                                                  cfg.n_events)
        track = FORWARD_TRACK_OFFSET + key
        ok1 = (h1["status"] == "reached_target").to_numpy() if len(src) else np.zeros(0, bool)
        # muons that do not reach the TAX exit: one path each, their stage-1 status
        lost = pd.DataFrame({"track_index": track[~ok1], "sample_index": sample_offset,
                             "status": h1["status"].to_numpy(object)[~ok1] if len(src)
                             else np.zeros(0, object), "weight": 0.0, "visible": False})
        if not ok1.any():
            return _path_batch(Pass(), lost, n, pd.DataFrame())
        muon_w = pd.Series(src["weight"].to_numpy(float)[ok1] * h1["weight"].to_numpy(float)[ok1],
                           index=track[ok1])
        res = self.tracer.trace(_tracks_from(h1[ok1], track[ok1]))
        h2 = res.histories
        r = np.hypot(h2["x_m"], h2["y_m"]).to_numpy()
        lo, hi = cfg.acceptance_r_m
        visible = (h2["status"] == "reached_target").to_numpy() & (r > lo) & (r < hi)
        weight = muon_w.reindex(h2["track_index"]).to_numpy() * h2["weight"].to_numpy(float)
        paths = pd.DataFrame({"track_index": h2["track_index"].to_numpy(np.int64),
                              "sample_index": h2["sample_index"].to_numpy(np.int64)
                              + sample_offset,
                              "status": h2["status"].to_numpy(object), "weight": weight,
                              "visible": visible})
        all_paths = pd.concat([paths, lost], ignore_index=True)
        event = pd.Series(src["event"].to_numpy(np.int64), index=track)
        tracks = self._tracks(h2[visible], weight[visible] / n,
                              event.reindex(h2["track_index"][visible]).to_numpy())
        if res.states is None or res.states.empty:
            return _path_batch(Pass(), all_paths, n, tracks)
        forced = self._forced(res.states, paths, weight, plan, sample_offset)
        return _path_batch(forced, all_paths, n, tracks)

    def _forced(self, states, paths, weight, plan, sample_offset) -> Pass:
        """The run's forced interactions and detector along the recorded
        stage-2 ``states`` of the ``paths`` (each a history of weight
        ``weight`` and share 1/n)."""
        n = self.config.paths_per_muon
        states = backward_layout(states)
        if sample_offset:
            states = states.assign(sample_index=states["sample_index"] + sample_offset)
        idx = pd.MultiIndex.from_arrays([paths["track_index"], paths["sample_index"]],
                                        names=["track_index", "sample_index"])
        histories = pd.DataFrame({"weight": weight, "share": 1.0 / n,
                                  "importance": weight / n}, index=idx)
        hist = paths[["track_index", "sample_index"]].assign(posterior_raw=1.0)
        return self.chain.forced(states, histories, hist, self.config.run.pot_target, plan)

    def _tracks(self, h2, weight, event) -> pd.DataFrame:
        """Visible paths at STRAW1 in the track schema (``simulate-tracks``
        columns), weights normalised to the sample POT."""
        p = momentum_gev(h2["kinetic_energy_gev"].to_numpy())
        u = h2[["ux", "uy", "uz"]].to_numpy()
        return pd.DataFrame({
            "x_m": h2["x_m"].to_numpy(), "y_m": h2["y_m"].to_numpy(),
            "z_m": np.full(len(h2), self.plane_z_m),
            "px_gev": p * u[:, 0], "py_gev": p * u[:, 1], "pz_gev": p * u[:, 2],
            "charge": h2["charge"].to_numpy(), "weight": weight * self.config.pot_sample,
            "event_id": np.asarray(event, np.int64),
            "true_forward_track": h2["track_index"].to_numpy(np.int64),
            "true_forward_sample": h2["sample_index"].to_numpy(np.int64)})


@dataclass
class ForwardBatch:
    """What :meth:`ForwardPrompt.process` returns: ``batch``, a pass of the
    estimate (:class:`backtrace.prompt.passes.Pass`); ``paths`` (per path:
    track_index, sample_index, event, weight per POT of the muon, status,
    visible; the driver adds its forced interactions' weight); ``tracks``
    (the visible paths at STRAW1 in the track schema)."""

    batch: Pass
    paths: pd.DataFrame
    tracks: pd.DataFrame


def _path_batch(forced: Pass, paths: pd.DataFrame, n: int,
                tracks: pd.DataFrame) -> ForwardBatch:
    """The batch of the source muons: each a 'track' whose ``n`` paths are
    histories of unit posterior (norm = n: each path carries 1/n of the
    muon's weight), with the ``forced`` part of the pass."""
    track = paths["track_index"].to_numpy(np.int64)
    status = paths["status"].to_numpy(object)
    first = paths.drop_duplicates("track_index")
    norm = pd.Series(float(n), index=first["track_index"].to_numpy(np.int64))
    batch = replace(
        forced, row_status=pd.Series(first["status"].to_numpy(object), index=norm.index,
                                     dtype=object),
        history_status=pd.Series(np.ones(len(track), np.int64),
                                 index=pd.MultiIndex.from_arrays([track, status])),
        norm=norm, norm2=norm)
    return ForwardBatch(batch, paths.assign(event=event_of(track)), tracks)


@dataclass
class ForwardResult:
    """What :func:`simulate_prompt` returns: the ``background.json``
    document, the selected candidates (with ``event`` and ``visible``), the
    stage-2 paths (:meth:`ForwardPrompt.process`) and the single-track
    sample of the visible ones."""

    document: dict
    candidates: pd.DataFrame
    paths: pd.DataFrame
    tracks: pd.DataFrame


class _SourceSample:
    """The source-model stand-in of a track file for the document: its POT
    (the sample's), a name and a digest of the configuration."""

    def __init__(self, config: PromptSimConfig):
        import hashlib
        import json

        self.pot = config.pot_sample
        first = f" from event {config.first_event}" if config.first_event else ""
        self.path = f"source model: {config.n_events} MC events{first}, seed {config.run.seed}"
        self._digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True,
                                                 default=str).encode()).hexdigest()

    def digest(self) -> str:
        return self._digest


def simulate_prompt(config: PromptSimConfig, *, jobs: int = 1, batch_size: int = 100,
                    progress: bool = True, scheduler: str | None = None) -> ForwardResult:
    """The forward prompt simulation of ``config.n_events`` source events
    (module docstring). Deterministic for a seed whatever ``jobs``,
    ``batch_size`` or ``scheduler``."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    t0 = time.perf_counter()
    probe = ForwardPrompt(config)
    end = config.first_event + config.n_events
    chunks = [np.arange(i, min(i + batch_size, end), dtype=np.int64)
              for i in range(config.first_event, end, batch_size)]
    with worker_pool(ForwardPrompt, (config,), jobs=jobs, scheduler=scheduler,
                     local=probe) as run:
        parts, joined, rounds = _passes(run, config, chunks, progress, t0)
    est = combine_passes([joined])
    paths = pd.concat([p.paths for p in parts], ignore_index=True)
    hiw = joined.history_interaction_weight
    # the forced interactions' weight of each path, normalised like the
    # candidates (by its muon's norm: 1/N each)
    paths["interaction_weight"] = hiw.reindex(pd.MultiIndex.from_arrays(
        [paths["track_index"], paths["sample_index"]]), fill_value=0.0).to_numpy(float) \
        / est.norm.reindex(paths["track_index"]).to_numpy(float) if len(hiw) else 0.0
    tracks = concat([p.tracks for p in parts], pd.DataFrame()).reset_index(drop=True)
    cands = with_visibility(est.candidates, paths)
    est.candidates = cands
    elapsed = time.perf_counter() - t0
    total, stat, mc = total_prompt(est, config.run.interactions_per_history)
    mc_block = {"samples_per_track": 1, "total_prompt": total, "total_prompt_stat": stat,
                "total_prompt_mc": mc, "rel_unc": _target_rel_unc(cands),
                "target_cell": "outside/mu-mu",
                "rounds": [{**r, "histories": int(len(paths))} for r in rounds],
                "stopped_by": None, "elapsed_s": elapsed,
                "definition": "forward simulation: one history per path of each source "
                              "muon (its true path); with the auto allocation a pilot pass "
                              "sets the importance plan and the estimate is the second "
                              "pass alone; rel_unc = per-event sum-w2 error / value of "
                              "outside/mu-mu"}
    run_cfg = replace(config.run, samples_per_track=1)
    doc = build_document(_SourceSample(config), run_cfg, probe.chain.geometry,
                         probe.chain.regions, est, {}, "none", mc_block, elapsed,
                         probe.chain.response)
    doc["forward_prompt"] = _forward_block(config, paths, cands, probe.chain.regions,
                                           elapsed)
    return ForwardResult(doc, cands, paths, tracks)


def _passes(run, config: PromptSimConfig, chunks: list, progress: bool, t0: float):
    """The passes of :meth:`ForwardPrompt.process` over the event
    ``chunks`` with ``run`` (:func:`backtrace.executor.worker_pool`): one
    with the configuration's first plan, or, with the auto allocation and
    ``importance_round``, the pilot and the importance pass (module
    docstring). Returns (the last pass's batch results, the last pass
    joined, a record per pass)."""
    rounds = []

    def one_pass(label, plan=None, offset=0):
        parts = []
        with progress_bar(config.n_events, label, progress, unit="events") as bar:
            task = bar.add_task(label, total=config.n_events)
            for chunk, r in zip(chunks, run(ForwardPrompt.process, ((c, plan, offset) for c in chunks))):
                parts.append(r)
                bar.advance(task, len(chunk))
        joined = join_passes([p.batch for p in parts])
        rounds.append({"label": label, "interactions": int(joined.interactions),
                       "allocation": (plan or config.run.first_plan()).describe(),
                       "elapsed_s": time.perf_counter() - t0})
        return parts, joined
    if not (config.importance_round and config.run.allocation == "auto"):
        return (*one_pass("forward prompt"), rounds)
    k = float(config.run.interactions_per_history)
    pilot_parts, pilot = one_pass("forward prompt, pilot",
                                  DrawPlan("track", pilot_draws_per_path(k)))
    plan = forward_importance_plan(
        config, pilot, pd.concat([p.paths for p in pilot_parts], ignore_index=True))
    return (*one_pass("forward prompt, importance", plan, config.paths_per_muon), rounds)


def with_visibility(cands: pd.DataFrame, paths: pd.DataFrame) -> pd.DataFrame:
    """Candidates with their MC ``event`` and whether their path is
    ``visible`` (module docstring)."""
    vis = pd.Series(paths["visible"].to_numpy(bool), index=pd.MultiIndex.from_arrays(
        [paths["track_index"], paths["sample_index"]]))
    key = pd.MultiIndex.from_arrays([cands["track_index"].to_numpy(np.int64),
                                     cands["sample_index"].to_numpy(np.int64)])
    return cands.assign(event=event_of(cands["track_index"]),
                        visible=vis.reindex(key).to_numpy(bool) if len(cands)
                        else np.zeros(0, bool))


def cell_yields(cands: pd.DataFrame, group: str, regions, categories) -> dict:
    """{region: {category: (Σw, σ)}} with σ² = Σ over ``group`` (e.g. the
    MC event) of (Σw of the group)²: the error of a sum over independent
    groups."""
    out = {}
    for region in regions:
        out[region] = {}
        for cat in categories:
            sel = cands[(cands["region"] == region) & (cands["category"] == cat)] \
                if len(cands) else cands
            per = sel["weight"].groupby(sel[group].to_numpy()).sum() if len(sel) \
                else pd.Series(dtype=float)
            out[region][cat] = (float(per.sum()), float(np.sqrt((per ** 2).sum())))
    return out


def _target_rel_unc(cands: pd.DataFrame):
    sel = cands[(cands["region"] == "outside") & (cands["category"] == "mu-mu")] \
        if len(cands) else cands
    if not len(sel):
        return None
    per = sel["weight"].groupby(sel["event"].to_numpy()).sum()
    total = float(per.sum())
    return float(np.sqrt((per ** 2).sum()) / total) if total > 0 else None


def _forward_block(config, paths, cands, regions, elapsed) -> dict:
    """The forward-specific block of the document: events, paths, the
    visible sample, and the yields of all / visible / missed paths per cell
    (errors over MC events)."""
    names, cats = list(regions.names), list(regions.categories)

    def yields(sel):
        return {r: {c: {"value": v, "error": e} for c, (v, e) in row.items()}
                for r, row in cell_yields(sel, "event", names, cats).items()}
    vis = cands["visible"].to_numpy(bool) if len(cands) else np.zeros(0, bool)
    status = paths["status"].value_counts().to_dict()
    n = config.paths_per_muon
    return {
        "config": config.to_dict(), "n_events": config.n_events,
        "source_muons": int(paths["track_index"].nunique()), "paths_per_muon": n,
        "status": {str(k): int(v) for k, v in sorted(status.items())},
        "visible_paths": int(paths["visible"].sum()),
        "visible_muons_per_pot": float(paths.loc[paths["visible"], "weight"].sum() / n),
        "visible_definition": "the incoming muon's stage-2 path, continued as if it had "
                              "not interacted, crosses the STRAW1 entry plane inside the "
                              f"annulus {list(config.acceptance_r_m)} m (it is in the "
                              "single-track sample)",
        "yields_all": yields(cands), "yields_visible": yields(cands[vis]),
        "yields_missed": yields(cands[~vis]), "elapsed_s": elapsed,
    }
