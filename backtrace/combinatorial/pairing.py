"""Combinatorial background: random in-time pairs of unrelated single tracks.

Two muons of different protons that cross the spectrometer within the
coincidence window look like a two-track event; a few of them make a vertex
in the decay volume that points back to the TAX. NA62 estimates this
background from random in-time pairs of single-track events and checks it
on same-sign pairs; this module does the same with a single-track sample
(data or ``simulate-tracks``), through the reconstruction and selection of
the prompt estimate (:mod:`backtrace.detector.candidates`,
:mod:`backtrace.regions`).

1. **Single tracks** (:class:`SingleTracks`, in batches over the workers):
   each track of the file, measured in the decay volume up to STRAW1 (at
   most :data:`STRAW1_TOLERANCE_M` downstream of its entry face; others get
   the status ``not_in_decay_volume``), is
   - transported forward with PUMAS from 1 cm upstream of STRAW1 (straight
     line in the vacuum) through the STRAW chambers, the LKr and MUV3
     (:class:`backtrace.interactions.products.ProductTransport`): the
     chambers it crosses, its MUV3 hit and LKr E/p give its muon
     identification probability and the veto crossings downstream;
   - transported backward from its position to the decay-volume entrance
     (:class:`backtrace.transport.Tracer`): the veto crossings upstream (a
     muon that crossed a LAV's lead glass fires it);
   - measured: its momentum at STRAW1 smeared once (the same in every pair).
   Its factor is w_i × Π ε (every veto crossing, each failing with the
   detector's inefficiency). Tracks that do not cross ``straw_chambers``
   chambers, or are certainly vetoed, are not paired (counted).
2. **Pairs** of tracks of different events (``event_id``; each track its
   own event without it) in fixed blocks of :data:`PAIR_BLOCK` tracks
   (:func:`pair_blocks`; blocks run in order over the workers, results are
   identical for any ``--jobs`` and batch size). Every pair when there are
   at most ``max_pairs``, else an unbiased Bernoulli subsample: each pair is
   kept with probability q = max_pairs / pairs and weighted 1/q (a binomial
   count per block, positions drawn without replacement from a generator
   keyed by (seed, block i, block j)). Sizes are in the output.
3. **Measurement and selection**: vertex, CDA, Z_TAX/CDA_TAX and mass of
   the pair (:func:`backtrace.detector.candidates.measure_pairs`), the cuts
   of the regions file (:func:`~backtrace.detector.candidates.passes_selection`),
   muon identification of both tracks
   (:func:`~backtrace.detector.candidates.identification_probability`),
   region. Opposite-sign pairs are the estimate (with ``opposite_charges``;
   all pairs without it); **same-sign pairs** go through the same chain as
   the validation sample.
4. **Weight** of a pair: h_ij = N_POT · N_spill / N_sample² · P₂ ·
   w_i w_j · Π ε · P_id · exp(−μ₃), the expected number of such accidental
   pairs in N_POT protons (:mod:`backtrace.combinatorial.spill`: derivation and P₂), μ₃ =
   n_reco · P₂ the mean number of further reconstructable tracks in the
   window (``exactly_two_tracks``; n_reco the reconstructable muons per
   spill; exact for a flat spill, first order otherwise).
5. **Uncertainties.** *Pairing statistics*: the estimate T = Σ_{i<j} h_ij
   is a second-order U-statistic of the track sample; for tracks of a
   Poisson process its variance is Σ_i g_i² − Σ_{i<j} h_ij² in expectation,
   g_i = Σ_j h_ij the summed weight of track i's pairs (the same formula
   holds with the 1/q weights of a subsample and then includes its
   sampling variance). *Spill model*: each parameter moved to the ends of
   its range, others fixed (shifts listed; the larger taken, combined in
   quadrature), and the POT normalisation (±20 %, as the prompt estimate).
   Empty cells get the 90 % CL upper limit 2.303 × w̄, w̄ the mean weight of
   the pairs of that sign in the STRAW acceptance before the momentum,
   vertex, CDA, muon-ID and region cuts.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from backtrace.beamline.geometry import load_geometry
from backtrace.beamline.line import BeamLine
from backtrace.combinatorial.spill import load_spill_model
from backtrace.detector.candidates import (
    Reconstruction,
    identification_probability,
    measure_pairs,
    measured_momenta,
    passes_selection,
    spectrometer_tracks,
)
from backtrace.detector.response import Response
from backtrace.executor import progress_bar, worker_map
from backtrace.interactions.products import ProductTransport
from backtrace.paths import crossing_runs
from backtrace.prompt.estimate import concat
from backtrace.prompt.systematics import POT_RELATIVE
from backtrace.regions import load_regions
from backtrace.rng import PRODUCT_SEED_OFFSET, SINGLE_TRACK_SEED_OFFSET
from backtrace.tracks import STATUSES
from backtrace.transport import TraceConfig, Tracer

__all__ = ["CombinatorialConfig", "CombinatorialResult", "SingleTracks", "PairWorker",
           "run_combinatorial", "pair_blocks", "pair_variance", "PAIR_BLOCK", "SIGNS",
           "PAIR_COLUMNS"]

#: Tracks per pairing block (fixed: results never depend on it or on --jobs).
PAIR_BLOCK = 1024
#: Pair samples: the estimate and the same-sign validation sample.
SIGNS = ("opposite", "same")
#: Columns of the selected pairs (combinatorial_pairs.parquet).
PAIR_COLUMNS = ["sign", "region", "weight", "track_a", "track_b", "z_tax_m", "cda_tax_m",
                "vertex_x_m", "vertex_y_m", "vertex_z_m", "cda_m", "mass_gev", "p1_gev",
                "p2_gev", "id_probability"]
#: Stages of the cut flow (cumulative).
STAGES = ("straw_acceptance", "momentum", "cda", "fiducial_volume", "muon_id")
#: A track may be given up to this far downstream of STRAW1's entry face [m]
#: (inside the chamber; it is extrapolated back in a straight line).
STRAW1_TOLERANCE_M = 0.05


@dataclass(frozen=True)
class CombinatorialConfig:
    """What one combinatorial estimate does (recorded in the outputs):
    geometry and selection, the spill-model file, the POT it is normalised
    to, the seed, momentum smearing and the pair budget."""

    geometry_file: str | None = None
    overrides: tuple[str, ...] = ()
    regions_file: str | None = None
    spill_file: str | None = None
    pot_target: float = 1.4e17
    seed: int = 1
    smearing: bool = True
    max_pairs: int = 20_000_000

    def to_dict(self) -> dict:
        d = asdict(self)
        d["overrides"] = list(self.overrides)
        return d


@dataclass
class CombinatorialResult:
    """The ``combinatorial`` block of the outputs and the selected pairs."""

    document: dict
    pairs: pd.DataFrame


# ---------------------------------------------------------------------------
# 1. Single tracks
# ---------------------------------------------------------------------------
class SingleTracks:
    """Per worker process: the detector response of single tracks (step 1)."""

    def __init__(self, config: CombinatorialConfig):
        seed = config.seed + SINGLE_TRACK_SEED_OFFSET
        self.config = config
        self.beamline = BeamLine.shared(config.geometry_file, tuple(config.overrides))
        self.regions = load_regions(config.regions_file)
        self.response = Response.from_geometry(self.beamline.geometry,
                                               self.regions.selection, seed)
        # ProductTransport adds PRODUCT_SEED_OFFSET to its seed: subtract it

        self.forward = ProductTransport(self.beamline, seed=seed - PRODUCT_SEED_OFFSET,
                                        response=self.response)
        self.entrance_z_m = self.beamline.geometry.decay_volume_z_m[0]
        self.backward = Tracer(TraceConfig(
            geometry_file=config.geometry_file, overrides=tuple(config.overrides),
            direction="backward", to_z_m=self.entrance_z_m, record=True, seed=seed),
            self.beamline)
        self.recon = Reconstruction.from_beamline(self.beamline, seed, config.smearing,
                                                  self.response)

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        """One row per input row: track_index, event, charge, weight, status,
        n_chambers, muon_id, log_survival, STRAW1 position and smeared
        momentum (NaN where not transported)."""
        out = pd.DataFrame({"track_index": df["track_index"].to_numpy(np.int64)})

        traced = self.backward.trace(df)
        status = pd.Series(traced.row_status, index=out.index).astype(object)
        # validation failures keep their status; traced rows are 'ok'
        status[~status.isin(STATUSES[1:]).to_numpy()] = "ok"
        good = df[(status == "ok").to_numpy()].copy()
        for c in ("x_m", "y_m", "z_m", "px_gev", "py_gev", "pz_gev", "charge", "weight"):
            if c in good:
                good[c] = pd.to_numeric(good[c])
        z1 = self.recon.straw1_z_m + STRAW1_TOLERANCE_M
        inside = ((good["z_m"] >= self.entrance_z_m) & (good["z_m"] <= z1)).to_numpy()
        status[out["track_index"].isin(good["track_index"][~inside]).to_numpy()] = \
            "not_in_decay_volume"
        good = good[inside]
        cols = {"event": out["track_index"].to_numpy(np.int64), "charge": np.nan,
                "weight": 0.0, "n_chambers": 0, "muon_id": 0.0, "log_survival": -np.inf,
                "x_m": np.nan, "y_m": np.nan, "px_gev": np.nan, "py_gev": np.nan,
                "pz_gev": np.nan}
        for k, v in cols.items():
            out[k] = v
        if "event_id" in df:
            ev = pd.to_numeric(df["event_id"], errors="coerce")
            ok_ev = ev.notna().to_numpy()
            out.loc[ok_ev, "event"] = ev[ok_ev].astype(np.int64).to_numpy()
        if len(good):
            det = self._forward(good)
            tracks = spectrometer_tracks(det, self._interactions(good), self.recon, 1)
            row = out.set_index("track_index").index
            pos = row.get_indexer(tracks["interaction"].to_numpy())
            up = self._upstream_log_survival(traced.states)
            p = measured_momenta(tracks, self.recon)
            out.loc[pos, "n_chambers"] = tracks["n_chambers"].to_numpy()
            out.loc[pos, "muon_id"] = tracks["muon_id"].to_numpy(float)
            out.loc[pos, "log_survival"] = (
                tracks["veto_log_survival"].to_numpy(float)
                + up.reindex(tracks["interaction"]).fillna(0.0).to_numpy())
            out.loc[pos, "x_m"] = tracks["STRAW1_x_m"].to_numpy(float)
            out.loc[pos, "y_m"] = tracks["STRAW1_y_m"].to_numpy(float)
            out.loc[pos, ["px_gev", "py_gev", "pz_gev"]] = p
            gpos = row.get_indexer(good["track_index"].to_numpy())
            out.loc[gpos, "charge"] = good["charge"].to_numpy(float)
            out.loc[gpos, "weight"] = good["weight"].to_numpy(float) if "weight" in good \
                else 1.0
        out["status"] = status.to_numpy()
        return out

    def _interactions(self, good: pd.DataFrame) -> pd.DataFrame:
        idx = good["track_index"].to_numpy(np.int64)
        return pd.DataFrame({"interaction": idx, "track_index": idx,
                             "sample_index": np.zeros(len(idx), np.int64)})

    def _forward(self, good: pd.DataFrame) -> pd.DataFrame:
        """Forward transport from 1 cm upstream of STRAW1 (straight line in
        the vacuum of the decay volume)."""
        z0 = self.recon.straw1_z_m - 0.01
        s = (z0 - good["z_m"].to_numpy()) / good["pz_gev"].to_numpy()
        start = pd.DataFrame({
            "interaction": good["track_index"].to_numpy(np.int64), "particle": 0,
            "name": np.where(good["charge"].to_numpy() > 0, "mu+", "mu-"),
            "charge": good["charge"].to_numpy(float),
            "x_m": good["x_m"].to_numpy() + s * good["px_gev"].to_numpy(),
            "y_m": good["y_m"].to_numpy() + s * good["py_gev"].to_numpy(),
            "z_m": np.full(len(good), z0), "px_gev": good["px_gev"].to_numpy(),
            "py_gev": good["py_gev"].to_numpy(), "pz_gev": good["pz_gev"].to_numpy()})
        return self.forward.transport(start, self._interactions(good))

    def _upstream_log_survival(self, states) -> pd.Series:
        """Σ log ε of the veto crossings upstream of the track (index: track)."""
        log_eff = self.response.log_inefficiency
        if not log_eff or states is None or states.empty:
            return pd.Series(dtype=float)
        runs = crossing_runs(states, log_eff)
        return runs["volume"].map(log_eff).astype(float).groupby(
            runs["track_index"].to_numpy()).sum()


# ---------------------------------------------------------------------------
# 2.–4. Pairs
# ---------------------------------------------------------------------------
def pair_blocks(n: int, block: int | None = None):
    """(i0, i1, j0, j1) of the blocks of the upper triangle of n × n, in order
    (``block`` tracks each, default :data:`PAIR_BLOCK`)."""
    block = block or PAIR_BLOCK
    starts = list(range(0, n, block))
    for bi, i0 in enumerate(starts):
        for j0 in starts[bi:]:
            yield i0, min(i0 + block, n), j0, min(j0 + block, n)


def _block_pairs(i0, i1, j0, j1):
    """Positions (a, b), a < b, of every pair of a block."""
    if i0 == j0:
        a, b = np.triu_indices(i1 - i0, k=1)
        return a + i0, b + i0
    a, b = np.meshgrid(np.arange(i0, i1), np.arange(j0, j1), indexing="ij")
    return a.ravel(), b.ravel()


class PairWorker:
    """Per worker process: pairs of the prepared single tracks (steps 2–4)."""

    def __init__(self, config: CombinatorialConfig, recon, tracks: pd.DataFrame,
                 scale: float, q: float, mu3: float):
        self.config = config
        self.regions = load_regions(config.regions_file)
        self.recon = recon
        self.tracks = tracks.reset_index(drop=True)
        self.x = np.column_stack([tracks["x_m"].to_numpy(float), tracks["y_m"].to_numpy(float),
                                  np.full(len(tracks), recon.straw1_z_m)])
        self.p = tracks[["px_gev", "py_gev", "pz_gev"]].to_numpy(float)
        self.factor = tracks["factor"].to_numpy(float)
        self.q, self.scale, self.mu3 = float(q), float(scale), float(mu3)

    def _subsample(self, a, b, key):
        if self.q >= 1.0:
            return a, b
        rng = np.random.default_rng([self.config.seed, *key, 0x5EED])
        k = rng.binomial(len(a), self.q)
        keep = np.sort(rng.choice(len(a), size=k, replace=False))
        return a[keep], b[keep]

    def process(self, i0, i1, j0, j1) -> dict:
        """The block's selected pairs, pre-cut weight sums and cut flow."""
        sel = self.regions.selection
        a, b = _block_pairs(i0, i1, j0, j1)
        ev = self.tracks["event"].to_numpy()
        n_same_event = int(np.sum(ev[a] == ev[b]))
        a, b = a[ev[a] != ev[b]], b[ev[a] != ev[b]]
        n_pairs = len(a)
        a, b = self._subsample(a, b, (i0, j0))
        q = self.tracks["charge"].to_numpy(float)
        sign = np.where(q[a] * q[b] < 0, "opposite", "same").astype(object)
        h = self.scale / self.q * self.factor[a] * self.factor[b] * np.exp(-self.mu3)
        flow = {s: {} for s in SIGNS}

        def count(stage, mask, w):
            for s in SIGNS:
                m = mask & (sign == s)
                flow[s][stage] = (int(m.sum()), float(w[m].sum()))
        count("straw_acceptance", np.ones(len(a), bool), h)
        m = measure_pairs(self.x, self.p, a, b, self.recon)
        p_min, p_max = sel["track_p_min_gev"], sel.get("track_p_max_gev", 1e9)
        ok = (p_min <= m["p1_gev"]) & (m["p1_gev"] <= p_max) \
            & (p_min <= m["p2_gev"]) & (m["p2_gev"] <= p_max)
        count("momentum", ok, h)
        ok &= ~(m["cda_m"] > sel["cda_max_m"])
        count("cda", ok, h)
        ok &= passes_selection(m, sel, self.recon)
        count("fiducial_volume", ok, h)
        pid = identification_probability(self.tracks, a, b, sel)
        ok &= pid > 0
        count("muon_id", ok, h * pid)
        pairs = pd.DataFrame({"sign": sign[ok], "weight": (h * pid)[ok],
                              "track_a": self.tracks["track_index"].to_numpy()[a[ok]],
                              "track_b": self.tracks["track_index"].to_numpy()[b[ok]],
                              "id_probability": pid[ok],
                              **{k: np.asarray(v)[ok] for k, v in m.items()}})
        pairs["region"] = self.regions.classify(pairs["z_tax_m"], pairs["cda_tax_m"])
        return {"pairs": pairs[PAIR_COLUMNS], "flow": flow, "n_pairs": n_pairs,
                "n_evaluated": len(a), "n_same_event": n_same_event}


# ---------------------------------------------------------------------------
# 5. Uncertainties
# ---------------------------------------------------------------------------
def pair_variance(track_a, track_b, weight) -> float:
    """Σ_i g_i² − Σ h² of pairs (i, j) with weights h (module docstring)."""
    h = np.asarray(weight, float)
    if not len(h):
        return 0.0
    g = pd.Series(np.r_[h, h]).groupby(np.r_[np.asarray(track_a), np.asarray(track_b)]).sum()
    return float(np.sum(g.to_numpy() ** 2) - np.sum(h * h))


def _cell(pairs: pd.DataFrame, per_entry: float, syst_rel: dict) -> dict:
    value = float(pairs["weight"].sum()) if len(pairs) else 0.0
    var = pair_variance(pairs["track_a"], pairs["track_b"], pairs["weight"])
    w2 = float(np.sum(pairs["weight"].to_numpy(float) ** 2)) if len(pairs) else 0.0
    breakdown = {k: value * r for k, r in syst_rel.items()}
    return {"value": value, "stat": float(np.sqrt(max(var, 0.0))),
            "syst": float(np.sqrt(sum(v * v for v in breakdown.values()))),
            "syst_breakdown": breakdown, "n_mc": int(len(pairs)),
            "n_eff": value * value / w2 if w2 > 0 else 0.0,
            "upper_limit_90": None if len(pairs) else 2.302585092994046 * per_entry}


def spill_systematics(model, pot_target: float, pot_sample: float) -> dict:
    """{parameter: (relative shift at range[0], at range[1])} of the
    estimate (the normalisation N_POT·N_spill/N_sample²·P₂), and 'pot'."""
    nominal = model.pairs_per_weight(pot_target, pot_sample)
    out = {}
    for p in model.used_parameters():
        lo, hi = model.ranges[p]
        out[p] = tuple(model.with_value(p, v).pairs_per_weight(pot_target, pot_sample)
                       / nominal - 1.0 for v in (lo, hi))
    out["pot"] = (-POT_RELATIVE, POT_RELATIVE)
    return out


# ---------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------
def _single_tracks(tracks, config, jobs, batch_size, progress, scheduler, local=None):
    results = worker_map(SingleTracks, (config,), SingleTracks.process,
                         ((df,) for df in tracks.iter_batches(batch_size)), jobs=jobs,
                         scheduler=scheduler, local=local)
    parts = []
    with progress_bar(tracks.n_rows, "single tracks", progress) as bar:
        task = bar.add_task("single", total=tracks.n_rows)
        for r in results:
            parts.append(r)
            bar.advance(task, len(r))
    return concat(parts, pd.DataFrame()).sort_values("track_index", kind="stable") \
        .reset_index(drop=True)


def _reconstruction(config: CombinatorialConfig):
    """The reconstruction of the single tracks (geometry only: no physics)."""
    geometry = load_geometry(config.geometry_file, tuple(config.overrides))
    return Reconstruction.from_beamline(
        SimpleNamespace(geometry=geometry, first_tracker_z_m=geometry.first_tracker_z_m),
        config.seed + SINGLE_TRACK_SEED_OFFSET, config.smearing)


def _pairable(single: pd.DataFrame, selection: dict) -> pd.DataFrame:
    """Tracks that enter the pairing (step 1), with their factor w × Π ε;
    ``single`` gets its final status."""
    ok = single["status"] == "ok"
    full = single["n_chambers"] >= selection["straw_chambers"]
    factor = single["weight"].to_numpy(float) * np.exp(single["log_survival"].to_numpy(float))
    single.loc[ok & ~full, "status"] = "straw_chambers"
    single.loc[ok & full & ~(factor > 0), "status"] = "vetoed"
    keep = (ok & full & (factor > 0)).to_numpy()
    single.loc[keep, "status"] = "paired"
    return single[keep].assign(factor=factor[keep]).reset_index(drop=True)


def _regions_block(pairs, regions, per_entry, syst_rel, estimate_sign) -> dict:
    out = {}
    for sign in SIGNS + (("all",) if estimate_sign == "all" else ()):
        mine = pairs if sign == "all" else pairs[pairs["sign"] == sign]
        out[sign] = {r: _cell(mine[mine["region"] == r], per_entry[sign], syst_rel)
                     for r in regions.names}
    return out


def _pair_all(paired, config, recon, scale, q, mu3, *, jobs, scheduler, progress):
    """Steps 2–4 over every block: (selected pairs, cut flow {sign: {stage:
    [pairs, weight]}}, counts [different-event pairs, evaluated, same-event])."""
    blocks = list(pair_blocks(len(paired)))
    results = worker_map(PairWorker, (config, recon, paired, scale, q, mu3), PairWorker.process, blocks,
                         jobs=jobs, scheduler=scheduler)
    parts, flow, counts = [], {s: {st: [0, 0.0] for st in STAGES} for s in SIGNS}, [0, 0, 0]
    with progress_bar(len(blocks), "pairs", progress, unit="blocks") as bar:
        task = bar.add_task("pairs", total=len(blocks))
        for r in results:            # in block order: sums identical for any --jobs
            parts.append(r["pairs"])
            for s in SIGNS:
                for st, (k, w) in r["flow"][s].items():
                    flow[s][st][0] += k
                    flow[s][st][1] += w
            for i, key in enumerate(("n_pairs", "n_evaluated", "n_same_event")):
                counts[i] += r[key]
            bar.advance(task, 1)
    return concat(parts, pd.DataFrame(columns=PAIR_COLUMNS)).reset_index(drop=True), flow, \
        counts


def _weight_per_entry(flow) -> dict:
    """Mean pair weight per sample before the momentum/vertex/CDA/muon-ID/
    region cuts (the prompt estimate's convention for empty cells)."""
    first = {s: flow[s]["straw_acceptance"] for s in SIGNS}
    out = {s: w / max(k, 1) for s, (k, w) in first.items()}
    out["all"] = sum(w for _, w in first.values()) / max(sum(k for k, _ in first.values()), 1)
    return out


def _normalisation(config, tracks, model, single, paired, n_reco_spill, mu3) -> dict:
    n_spill = model.values["pot_per_spill"] / tracks.pot
    muons = float(single["weight"].sum()) * n_spill
    return {"pot_target": config.pot_target, "pot_sample": tracks.pot,
            "pairs_per_unit_weight": model.pairs_per_weight(config.pot_target, tracks.pot),
            "pairing_probability": model.pairing_probability(), "muons_per_spill": muons,
            "paired_muons_per_spill": float(paired["factor"].sum()) * n_spill,
            "reconstructable_muons_per_spill": n_reco_spill, "third_track_mean": mu3,
            "muon_rate_mhz": muons / model.effective_length_s * 1e-6}


def _sampling(config, single, paired, pairs_all, counts, q) -> dict:
    return {"tracks": int(len(single)), "tracks_paired": int(len(paired)),
            "pairs_all": int(pairs_all), "pairs_different_events": counts[0],
            "pairs_same_event_excluded": counts[2], "pairs_evaluated": counts[1],
            "fraction": q, "subsampled": q < 1.0, "max_pairs": config.max_pairs,
            "block_tracks": PAIR_BLOCK,
            "method": "all pairs" if q >= 1 else
            "Bernoulli subsample: each pair kept with probability q, weight 1/q "
            "(binomial count per block, positions without replacement; "
            "generator keyed by seed and block)"}


def _check_inputs(tracks, config: CombinatorialConfig) -> None:
    """Refuse a sample of unknown POT and an empty pair budget."""
    if tracks.pot is None:
        raise ValueError(f"{tracks.path}: the POT the sample represents is unknown: give --pot")
    if config.max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1 (got {config.max_pairs})")


def _third_tracks(single: pd.DataFrame, selection: dict, model, pot_sample: float):
    """(reconstructable muons per spill n_reco, μ₃ = n_reco · P₂ the mean
    number of further reconstructable tracks in the window; 0 without
    ``exactly_two_tracks``)."""
    reco = single["n_chambers"] >= selection["reconstructable_min_chambers"]
    n_reco_spill = float(single.loc[reco, "weight"].sum()) * model.values["pot_per_spill"] \
        / pot_sample
    mu3 = n_reco_spill * model.pairing_probability() \
        if selection.get("exactly_two_tracks", True) else 0.0
    return n_reco_spill, mu3


@dataclass
class _Pairing:
    """What steps 2–4 gave: the selected pairs, the cut flow, the counts
    [different-event pairs, evaluated, same-event], the pairs of all paired
    tracks, the subsample fraction q, n_reco per spill and μ₃."""

    pairs: pd.DataFrame
    flow: dict
    counts: list
    pairs_all: int
    q: float
    n_reco_spill: float
    mu3: float


def _document(config: CombinatorialConfig, tracks, model, regions, single: pd.DataFrame,
              paired: pd.DataFrame, pairing: _Pairing) -> dict:
    """The ``combinatorial`` block of the outputs (without ``elapsed_s``)."""
    sel = regions.selection
    estimate_sign = "opposite" if sel.get("opposite_charges", True) else "all"
    syst = spill_systematics(model, config.pot_target, tracks.pot)
    syst_rel = {k: max(abs(lo), abs(hi)) for k, (lo, hi) in syst.items()}
    flow = pairing.flow
    per_entry = _weight_per_entry(flow)
    return {
        "method": "random in-time pairs of single tracks of different events through "
                  "the prompt estimate's reconstruction and selection; weight "
                  "N_POT*N_spill/N_sample^2*P2*w_i*w_j*(veto survival)*P_id*exp(-mu3) "
                  "(backtrace.combinatorial.pairing, backtrace.combinatorial.spill)",
        "estimate_sign": estimate_sign,
        "regions": _regions_block(pairing.pairs, regions, per_entry, syst_rel, estimate_sign),
        "spill_model": model.config(),
        "normalisation": _normalisation(config, tracks, model, single, paired,
                                        pairing.n_reco_spill, pairing.mu3),
        "sampling": _sampling(config, single, paired, pairing.pairs_all, pairing.counts,
                              pairing.q),
        "track_status": {k: int(v) for k, v in single["status"].value_counts()
                         .sort_index().items()},
        "cutflow": {s: {st: {"pairs": flow[s][st][0], "weight": flow[s][st][1]}
                        for st in STAGES} for s in SIGNS},
        "systematics": {"relative": {k: list(v) for k, v in syst.items()},
                        "method": "each spill-model parameter at the ends of its range, "
                                  "others fixed; the larger relative shift, combined in "
                                  "quadrature with the POT normalisation (±20 %)"},
        "upper_limit_weight_per_entry": per_entry,
        "upper_limit_method": "90% CL upper limit of an empty cell: 2.303 x w, w the "
                              "mean weight of the pairs of that sign in the STRAW "
                              "acceptance before the momentum/vertex/CDA/muon-ID/region cuts",
        "config": {**config.to_dict(), "regions": regions.config()},
    }


def run_combinatorial(tracks, config: CombinatorialConfig, *, jobs: int = 1,
                      batch_size: int = 2000, progress: bool = True,
                      scheduler: str | None = None, log=None) -> CombinatorialResult:
    """The combinatorial estimate of a track file (module docstring)."""
    _check_inputs(tracks, config)
    t0 = time.perf_counter()
    model = load_spill_model(config.spill_file)
    regions = load_regions(config.regions_file)
    recon = _reconstruction(config)
    local = SingleTracks(config) if jobs <= 1 and scheduler is None else None
    single = _single_tracks(tracks, config, jobs, batch_size, progress, scheduler, local)
    paired = _pairable(single, regions.selection)
    pairs_all = len(paired) * (len(paired) - 1) // 2
    q = 1.0 if pairs_all <= config.max_pairs else config.max_pairs / pairs_all
    n_reco_spill, mu3 = _third_tracks(single, regions.selection, model, tracks.pot)
    if log:
        log(f"combinatorial: {len(paired)} of {len(single)} tracks paired, {pairs_all} pairs"
            + (f", subsample q = {q:.3g}" if q < 1 else ""))
    pairs, flow, counts = _pair_all(
        paired, config, recon, model.pairs_per_weight(config.pot_target, tracks.pot), q, mu3,
        jobs=jobs, scheduler=scheduler, progress=progress)
    doc = _document(config, tracks, model, regions, single, paired,
                    _Pairing(pairs, flow, counts, pairs_all, q, n_reco_spill, mu3))
    doc["elapsed_s"] = time.perf_counter() - t0
    return CombinatorialResult(doc, pairs)
