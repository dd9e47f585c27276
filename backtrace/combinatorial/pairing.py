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
from backtrace.combinatorial.bursts import (
    BLOCK_PAIRS,
    blocks_by_pairs,
    burst_codes,
    pairs_from_ends,
    read_burst_table,
    third_tracks,
    time_keys,
    window_ends,
)
from backtrace.combinatorial.sensitivity import (
    Inputs,
    loosest_cda_m,
    sensitivity_block,
    window_shifts,
)
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
           "BurstPairWorker", "run_combinatorial", "pair_blocks", "pair_variance",
           "pairing_mode", "PAIR_BLOCK", "SIGNS", "PAIR_COLUMNS", "PAIRING_MODES"]

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
#: How pairs are formed: 'auto' (measured times when the file has them),
#: 'spill-model' (every pair, the spill model's weight), 'bursts' (pairs in
#: time within a burst, :mod:`backtrace.combinatorial.bursts`).
PAIRING_MODES = ("auto", "spill-model", "bursts")
#: Track columns of the measured-times mode.
TIME_COLUMNS = ("burst_id", "t_ns")
#: A track may be given up to this far downstream of STRAW1's entry face [m]
#: (inside the chamber; it is extrapolated back in a straight line).
STRAW1_TOLERANCE_M = 0.05


@dataclass(frozen=True)
class CombinatorialConfig:
    """What one combinatorial estimate does (recorded in the outputs):
    geometry and selection, the spill-model file, the POT it is normalised
    to, the seed, momentum smearing, the pair budget, the pairing mode
    (:data:`PAIRING_MODES`) and the burst table of measured times."""

    geometry_file: str | None = None
    overrides: tuple[str, ...] = ()
    regions_file: str | None = None
    spill_file: str | None = None
    pot_target: float = 1.4e17
    seed: int = 1
    smearing: bool = True
    max_pairs: int = 20_000_000
    pairing_mode: str = "auto"
    bursts_file: str | None = None

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
        if "burst_id" in df:
            out["burst_id"] = df["burst_id"].to_numpy(object)
        if "t_ns" in df:
            out["t_ns"] = pd.to_numeric(df["t_ns"], errors="coerce").to_numpy(float)
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
    """Per worker process: pairs of the prepared single tracks (steps 2–4).
    With ``loose_cda_m``, also the pairs that pass every cut but with the CDA
    cut loosened to it (:mod:`backtrace.combinatorial.sensitivity`)."""

    def __init__(self, config: CombinatorialConfig, recon, tracks: pd.DataFrame,
                 scale: float, q: float, mu3: float, loose_cda_m: float | None = None):
        self.config = config
        self.regions = load_regions(config.regions_file)
        self.recon = recon
        self.tracks = tracks.reset_index(drop=True)
        self.x = np.column_stack([tracks["x_m"].to_numpy(float), tracks["y_m"].to_numpy(float),
                                  np.full(len(tracks), recon.straw1_z_m)])
        self.p = tracks[["px_gev", "py_gev", "pz_gev"]].to_numpy(float)
        self.factor = tracks["factor"].to_numpy(float)
        self.q, self.scale, self.mu3 = float(q), float(scale), float(mu3)
        self.loose_cda_m = loose_cda_m

    def _subsample(self, a, b, key):
        if self.q >= 1.0:
            return a, b
        rng = np.random.default_rng([self.config.seed, *key, 0x5EED])
        k = rng.binomial(len(a), self.q)
        keep = np.sort(rng.choice(len(a), size=k, replace=False))
        return a[keep], b[keep]

    def process(self, i0, i1, j0, j1) -> dict:
        """The block's selected pairs, pre-cut weight sums and cut flow."""
        a, b = _block_pairs(i0, i1, j0, j1)
        ev = self.tracks["event"].to_numpy()
        n_same_event = int(np.sum(ev[a] == ev[b]))
        a, b = a[ev[a] != ev[b]], b[ev[a] != ev[b]]
        n_pairs = len(a)
        a, b = self._subsample(a, b, (i0, j0))
        h = self.scale / self.q * self.factor[a] * self.factor[b] * np.exp(-self.mu3)
        return {**self._select(a, b, h, h), "n_pairs": n_pairs, "n_evaluated": len(a),
                "n_same_event": n_same_event}

    def _select(self, a, b, h, loose_h, event=None, extra=None) -> dict:
        """Measurement and selection of the pairs (a, b) of weight h: the
        selected pairs, the cut flow and the loose pairs (weight loose_h ×
        P_id, with the ``extra`` columns). ``event``: which pairs are events
        (measured times: in the window, no third track; default all)."""
        sel = self.regions.selection
        q = self.tracks["charge"].to_numpy(float)
        sign = np.where(q[a] * q[b] < 0, "opposite", "same").astype(object)
        event = np.ones(len(a), bool) if event is None else event
        flow = {s: {} for s in SIGNS}

        def count(stage, mask, w):
            for s in SIGNS:
                m = mask & event & (sign == s)
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
        ok &= event
        pairs = pd.DataFrame({"sign": sign[ok], "weight": (h * pid)[ok],
                              "track_a": self.tracks["track_index"].to_numpy()[a[ok]],
                              "track_b": self.tracks["track_index"].to_numpy()[b[ok]],
                              "id_probability": pid[ok],
                              **{k: np.asarray(v)[ok] for k, v in m.items()}})
        pairs["region"] = self.regions.classify(pairs["z_tax_m"], pairs["cda_tax_m"])
        return {"pairs": pairs[PAIR_COLUMNS], "flow": flow,
                "loose": self._loose(m, pid, sign, loose_h, extra or {})}

    def _loose(self, m: dict, pid, sign, loose_h, extra: dict) -> pd.DataFrame | None:
        """Pairs passing every cut with the CDA cut at ``loose_cda_m``."""
        if self.loose_cda_m is None:
            return None
        sel = {**self.regions.selection, "cda_max_m": self.loose_cda_m}
        keep = passes_selection(m, sel, self.recon) & (pid > 0)
        z, c = np.asarray(m["z_tax_m"])[keep], np.asarray(m["cda_tax_m"])[keep]
        return pd.DataFrame({"sign": sign[keep], "region": self.regions.classify(z, c),
                             "weight": (loose_h * pid)[keep],
                             "cda_m": np.asarray(m["cda_m"], float)[keep],
                             **{k: np.asarray(v)[keep] for k, v in extra.items()}})


@dataclass(frozen=True)
class BurstSetup:
    """Measured times (:mod:`backtrace.combinatorial.bursts`): the window W
    [ns], the widest window the pairs are formed in [ns], the third-track
    rule, and the sorted keys and track indices of the reconstructable
    tracks."""

    window_ns: float
    formed_ns: float
    exactly_two: bool
    reco_key: np.ndarray
    reco_track: np.ndarray


class BurstPairWorker(PairWorker):
    """Per worker process: pairs in time within a burst (measured times).
    ``tracks`` sorted by (burst, time) with the columns ``burst``, ``t_ns``
    and ``end`` (:func:`~backtrace.combinatorial.bursts.window_ends` in the
    widest window)."""

    def __init__(self, config: CombinatorialConfig, recon, tracks: pd.DataFrame,
                 scale: float, q: float, setup: BurstSetup, loose_cda_m: float):
        super().__init__(config, recon, tracks, scale, q, 0.0, loose_cda_m)
        self.setup = setup
        self.t = self.tracks["t_ns"].to_numpy(float)
        self.code = self.tracks["burst"].to_numpy(np.int64)
        self.end = self.tracks["end"].to_numpy(np.int64)
        self.index = self.tracks["track_index"].to_numpy()

    def process(self, i0, i1) -> dict:
        """The pairs whose first track (in time) is in [i0, i1)."""
        a, b = pairs_from_ends(i0, i1, self.end)
        ev = self.tracks["event"].to_numpy()
        same = ev[a] == ev[b]
        a, b = a[~same], b[~same]
        n_pairs = len(a)
        a, b = self._subsample(a, b, (i0, i1))
        s = self.setup
        dt = self.t[b] - self.t[a]
        k3, d3 = third_tracks(s.reco_key, s.reco_track, self.code[a], self.t[a], self.t[b],
                              self.index[a], self.index[b], s.window_ns)
        in_window = dt < s.window_ns
        alone = d3 >= s.window_ns if s.exactly_two else np.ones(len(a), bool)
        h = self.scale / self.q * self.factor[a] * self.factor[b]
        out = self._select(a, b, h * alone, h, in_window & alone,
                           {"dt_ns": dt, "d3_ns": d3})
        return {**out, "n_pairs": n_pairs, "n_evaluated": len(a),
                "n_same_event": int(same.sum()), "n_in_window": int(in_window.sum()),
                "n_third_track": int((in_window & ~alone).sum()),
                "third_tracks": int(k3[in_window].sum())}


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


def _pair_all(factory, args: tuple, blocks: list, *, jobs, scheduler, progress):
    """Steps 2–4 over every block with ``factory(*args).process``: (selected
    pairs, cut flow {sign: {stage: [pairs, weight]}}, summed counts
    {n_pairs, n_evaluated, n_same_event, …}, loose pairs or None)."""
    results = worker_map(factory, args, factory.process, blocks, jobs=jobs,
                         scheduler=scheduler)
    parts, loose, counts = [], [], {}
    flow = {s: {st: [0, 0.0] for st in STAGES} for s in SIGNS}
    with progress_bar(len(blocks), "pairs", progress, unit="blocks") as bar:
        task = bar.add_task("pairs", total=len(blocks))
        for r in results:            # in block order: sums identical for any --jobs
            parts.append(r["pairs"])
            if r["loose"] is not None:
                loose.append(r["loose"])
            for s in SIGNS:
                for st, (k, w) in r["flow"][s].items():
                    flow[s][st][0] += k
                    flow[s][st][1] += w
            for key, v in r.items():
                if key.startswith("n_") or key == "third_tracks":
                    counts[key] = counts.get(key, 0) + v
            bar.advance(task, 1)
    pairs = concat(parts, pd.DataFrame(columns=PAIR_COLUMNS)).reset_index(drop=True)
    return pairs, flow, counts, concat(loose, pd.DataFrame(columns=_LOOSE_COLUMNS)) \
        .reset_index(drop=True)


#: Columns of the loose pairs (measured times add dt_ns and d3_ns).
_LOOSE_COLUMNS = ["sign", "region", "weight", "cda_m", "dt_ns", "d3_ns"]


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


def _sampling(config, single, paired, pairing: "_Pairing") -> dict:
    c, q = pairing.counts, pairing.q
    out = {"tracks": int(len(single)), "tracks_paired": int(len(paired)),
           "pairs_all": int(pairing.pairs_all), "pairs_different_events": c["n_pairs"],
           "pairs_same_event_excluded": c["n_same_event"], "pairs_evaluated": c["n_evaluated"],
           "fraction": q, "subsampled": q < 1.0, "max_pairs": config.max_pairs,
           "block_tracks": PAIR_BLOCK,
           "method": "all pairs" if q >= 1 else
           "Bernoulli subsample: each pair kept with probability q, weight 1/q "
           "(binomial count per block, positions without replacement; "
           "generator keyed by seed and block)"}
    if pairing.mode == "bursts":
        out.update(block_tracks=None, block_pairs=BLOCK_PAIRS,
                   window_formed_ns=pairing.extra["formed_ns"],
                   pairs_in_window=c["n_in_window"],
                   pairs_third_track_excluded=c["n_third_track"],
                   method=("pairs within a burst with |dt| < the widest window of the "
                           "range (formed once, the window and third-track rule applied "
                           "after), " + out["method"]))
    return out


def pairing_mode(tracks, config: CombinatorialConfig) -> str:
    """'bursts' (measured times) or 'spill_model' for ``config.pairing_mode``
    ('auto': bursts when the file has burst_id and t_ns)."""
    have = [c for c in TIME_COLUMNS if c in tracks.columns]
    if config.pairing_mode not in PAIRING_MODES:
        raise ValueError(f"pairing mode {config.pairing_mode!r}: expected one of "
                         f"{', '.join(PAIRING_MODES)}")
    if config.pairing_mode == "bursts" and len(have) < len(TIME_COLUMNS):
        missing = [c for c in TIME_COLUMNS if c not in have]
        raise ValueError(f"{tracks.path}: pairing mode 'bursts' needs the column(s) "
                         f"{', '.join(missing)} (map names with --columns NAME=BRANCH)")
    bursts = config.pairing_mode == "bursts" or (config.pairing_mode == "auto"
                                                 and len(have) == len(TIME_COLUMNS))
    return "bursts" if bursts else "spill_model"


def _check_inputs(tracks, config: CombinatorialConfig, mode: str) -> None:
    """Refuse a sample of unknown POT, an empty pair budget and a burst table
    without measured times."""
    if tracks.pot is None and not (mode == "bursts" and config.bursts_file):
        raise ValueError(f"{tracks.path}: the POT the sample represents is unknown: give --pot"
                         + (" or a burst table (--bursts)" if mode == "bursts" else ""))
    if config.max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1 (got {config.max_pairs})")
    if config.bursts_file and mode != "bursts":
        raise ValueError(f"--bursts {config.bursts_file}: a burst table needs measured times "
                         "(columns burst_id and t_ns, pairing mode 'bursts' or 'auto')")


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
    """What steps 2–4 gave: the selected pairs, the cut flow, the summed
    counts of the blocks, the pairs of all paired tracks, the subsample
    fraction q, n_reco per spill, μ₃, the mode, the loose pairs (the
    sensitivity table), the normalisation block and mode-specific values."""

    pairs: pd.DataFrame
    flow: dict
    counts: dict
    pairs_all: int
    q: float
    n_reco_spill: float
    mu3: float
    mode: str
    loose: pd.DataFrame
    normalisation: dict
    extra: dict


def _pair_with_spill_model(tracks, config, model, regions, single, recon, log, run) -> tuple:
    """(paired tracks, :class:`_Pairing`): every pair, the spill model's weight."""
    paired = _pairable(single, regions.selection)
    pairs_all = len(paired) * (len(paired) - 1) // 2
    q = 1.0 if pairs_all <= config.max_pairs else config.max_pairs / pairs_all
    n_reco_spill, mu3 = _third_tracks(single, regions.selection, model, tracks.pot)
    if log:
        log(f"combinatorial: {len(paired)} of {len(single)} tracks paired, {pairs_all} pairs"
            + (f", subsample q = {q:.3g}" if q < 1 else ""))
    scale = model.pairs_per_weight(config.pot_target, tracks.pot)
    args = (config, recon, paired, scale, q, mu3, loosest_cda_m(model, regions.selection))
    pairs, flow, counts, loose = _pair_all(PairWorker, args, list(pair_blocks(len(paired))),
                                           **run)
    norm = _normalisation(config, tracks, model, single, paired, n_reco_spill, mu3)
    return paired, _Pairing(pairs, flow, counts, pairs_all, q, n_reco_spill, mu3,
                            "spill_model", loose, norm, {})


def _timed_tracks(single: pd.DataFrame, table) -> np.ndarray:
    """Burst codes of the single tracks (−1: no burst or no finite time; such
    tracks get the status ``no_time`` if they would be paired) and the
    number of counted bursts (those of the burst table, else of the file)."""
    ok = single["burst_id"].notna().to_numpy() & np.isfinite(single["t_ns"].to_numpy(float))
    codes = np.full(len(single), -1, np.int64)
    known = None if table is None else table["burst_id"].to_numpy(object)
    codes[ok], labels = burst_codes(single["burst_id"].to_numpy(object)[ok], known)
    if not len(labels):
        raise ValueError("measured times: no track has a burst_id and a finite t_ns")
    return codes, len(labels)


def _pair_in_bursts(tracks, config, model, regions, single, recon, log, run) -> tuple:
    """(paired tracks, :class:`_Pairing`): pairs in time within a burst."""
    sel = regions.selection
    table = read_burst_table(config.bursts_file) if config.bursts_file else None
    single["burst"], n_bursts = _timed_tracks(single, table)
    paired = _pairable(single, sel)
    timed = (paired["burst"] >= 0).to_numpy()
    single.loc[single["track_index"].isin(paired["track_index"][~timed]).to_numpy(),
               "status"] = "no_time"
    paired = paired[timed]
    paired = paired.iloc[np.lexsort((paired["track_index"], paired["t_ns"],
                                     paired["burst"]))].reset_index(drop=True)
    w = model.values["window_ns"]
    formed = max(w, model.ranges["window_ns"][1])
    paired["end"] = window_ends(paired["burst"], paired["t_ns"], formed)
    pairs_all = int(np.sum(paired["end"].to_numpy() - np.arange(len(paired)) - 1))
    q = 1.0 if pairs_all <= config.max_pairs else config.max_pairs / pairs_all
    reco = single[(single["n_chambers"] >= sel["reconstructable_min_chambers"])
                  & (single["burst"] >= 0)]
    reco = reco.iloc[np.lexsort((reco["track_index"], reco["t_ns"], reco["burst"]))]
    setup = BurstSetup(w, formed, bool(sel.get("exactly_two_tracks", True)),
                       time_keys(reco["burst"], reco["t_ns"]),
                       reco["track_index"].to_numpy())
    pot = float(table["pot"].sum()) if table is not None else float(tracks.pot)
    if log:
        log(f"combinatorial: {len(paired)} of {len(single)} tracks paired in {n_bursts} "
            f"bursts, {pairs_all} pairs within {formed:g} ns"
            + (f", subsample q = {q:.3g}" if q < 1 else ""))
    args = (config, recon, paired, config.pot_target / pot, q, setup,
            loosest_cda_m(model, sel))
    pairs, flow, counts, loose = _pair_all(BurstPairWorker, args,
                                           blocks_by_pairs(paired["end"].to_numpy()), **run)
    mu3 = counts.get("third_tracks", 0) / max(counts.get("n_in_window", 0), 1)
    n_reco = float(reco["weight"].sum()) / n_bursts
    norm = _burst_normalisation(config, pot, n_bursts, single, paired, n_reco, mu3, w)
    return paired, _Pairing(pairs, flow, counts, pairs_all, q, n_reco, mu3, "bursts", loose,
                            norm, {"formed_ns": formed})


def _burst_normalisation(config, pot, n_bursts, single, paired, n_reco, mu3, window_ns):
    """The normalisation block with measured times: N_POT / N_POT(counted
    bursts), and what the bursts measure (tracks per burst, the fraction of
    pairs in time P₂, T_eff = 2W/P₂, the rate)."""
    per_burst = paired.groupby("burst").size().to_numpy(float)
    possible = float(np.sum(per_burst * (per_burst - 1) / 2))
    ends = window_ends(paired["burst"], paired["t_ns"], window_ns)
    in_time = float(np.sum(ends - np.arange(len(paired)) - 1))
    p2 = in_time / possible if possible > 0 else None
    t_eff = 2 * window_ns * 1e-9 / p2 if p2 else None
    muons = float(single.loc[single["burst"] >= 0, "weight"].sum()) / n_bursts
    return {"pot_target": config.pot_target, "pot_sample": pot, "bursts": n_bursts,
            "pot_per_burst": pot / n_bursts,
            "pairs_per_unit_weight": config.pot_target / pot,
            "pairing_probability": p2, "effective_spill_length_s": t_eff,
            "pairs_in_window_all": int(in_time), "muons_per_spill": muons,
            "paired_muons_per_spill": float(paired["factor"].sum()) / n_bursts,
            "reconstructable_muons_per_spill": n_reco, "third_track_mean": mu3,
            "muon_rate_mhz": muons / t_eff * 1e-6 if t_eff else None,
            "per_spill_means": "per counted burst (measured times)"}


def _systematics(pairing: _Pairing, model, config, tracks, inputs: Inputs) -> dict:
    """{source: (relative shift at range[0], at range[1])}: the spill model's
    parameters, or with measured times the window (pairs re-selected); and
    the POT normalisation."""
    if pairing.mode == "spill_model":
        return spill_systematics(model, config.pot_target, tracks.pot)
    return {"window_ns": window_shifts(inputs), "pot": (-POT_RELATIVE, POT_RELATIVE)}


_METHODS = {
    "spill_model": "random in-time pairs of single tracks of different events through "
                   "the prompt estimate's reconstruction and selection; weight "
                   "N_POT*N_spill/N_sample^2*P2*w_i*w_j*(veto survival)*P_id*exp(-mu3) "
                   "(backtrace.combinatorial.pairing, backtrace.combinatorial.spill)",
    "bursts": "pairs of single tracks of different events in the same burst with measured "
              "|t1-t2| < W and no further reconstructable track within W of their mean "
              "time, through the prompt estimate's reconstruction and selection; weight "
              "N_POT/N_POT(counted bursts)*w_i*w_j*(veto survival)*P_id "
              "(backtrace.combinatorial.bursts, backtrace.combinatorial.pairing)"}
_SYST_METHODS = {
    "spill_model": "each spill-model parameter at the ends of its range, others fixed; the "
                   "larger relative shift, combined in quadrature with the POT "
                   "normalisation (±20 %)",
    "bursts": "the window at the ends of its range (pairs re-selected, all regions); the "
              "larger relative shift, combined in quadrature with the POT normalisation "
              "(±20 %)"}


def _inputs(config, tracks, model, regions, pairing: _Pairing, estimate_sign) -> Inputs:
    sel = regions.selection
    loose = pairing.loose if estimate_sign == "all" \
        else pairing.loose[pairing.loose["sign"] == estimate_sign]
    return Inputs(pairing.mode, loose, regions.names, float(sel["cda_max_m"]),
                  bool(sel.get("exactly_two_tracks", True)), model, config.pot_target,
                  pairing.normalisation["pot_sample"], pairing.n_reco_spill, pairing.mu3,
                  estimate_sign)


def _spill_config(model, mode: str) -> dict:
    out = model.config()
    if mode == "bursts":
        for name, entry in out["parameters"].items():
            entry["used"] = name == "window_ns"
    return out


def _document(config: CombinatorialConfig, tracks, model, regions, single: pd.DataFrame,
              paired: pd.DataFrame, pairing: _Pairing) -> dict:
    """The ``combinatorial`` block of the outputs (without ``elapsed_s``)."""
    sel = regions.selection
    estimate_sign = "opposite" if sel.get("opposite_charges", True) else "all"
    inputs = _inputs(config, tracks, model, regions, pairing, estimate_sign)
    syst = _systematics(pairing, model, config, tracks, inputs)
    syst_rel = {k: max(abs(lo), abs(hi)) for k, (lo, hi) in syst.items()}
    flow = pairing.flow
    per_entry = _weight_per_entry(flow)
    return {
        "method": _METHODS[pairing.mode],
        "pairing_mode": pairing.mode,
        "estimate_sign": estimate_sign,
        "regions": _regions_block(pairing.pairs, regions, per_entry, syst_rel, estimate_sign),
        "spill_model": _spill_config(model, pairing.mode),
        "normalisation": pairing.normalisation,
        "sampling": _sampling(config, single, paired, pairing),
        "track_status": {k: int(v) for k, v in single["status"].value_counts()
                         .sort_index().items()},
        "cutflow": {s: {st: {"pairs": flow[s][st][0], "weight": flow[s][st][1]}
                        for st in STAGES} for s in SIGNS},
        "systematics": {"relative": {k: list(v) for k, v in syst.items()},
                        "method": _SYST_METHODS[pairing.mode]},
        "sensitivity": sensitivity_block(inputs),
        "upper_limit_weight_per_entry": per_entry,
        "upper_limit_method": "90% CL upper limit of an empty cell: 2.303 x w, w the "
                              "mean weight of the pairs of that sign in the STRAW "
                              "acceptance before the momentum/vertex/CDA/muon-ID/region cuts",
        "config": {**config.to_dict(), "regions": regions.config()},
    }


def run_combinatorial(tracks, config: CombinatorialConfig, *, jobs: int = 1,
                      batch_size: int = 2000, progress: bool = True,
                      scheduler: str | None = None, log=None) -> CombinatorialResult:
    """The combinatorial estimate of a track file (module docstring): with
    the spill model, or from measured times within bursts
    (:func:`pairing_mode`)."""
    mode = pairing_mode(tracks, config)
    _check_inputs(tracks, config, mode)
    t0 = time.perf_counter()
    model = load_spill_model(config.spill_file)
    regions = load_regions(config.regions_file)
    recon = _reconstruction(config)
    local = SingleTracks(config) if jobs <= 1 and scheduler is None else None
    single = _single_tracks(tracks, config, jobs, batch_size, progress, scheduler, local)
    pair = _pair_in_bursts if mode == "bursts" else _pair_with_spill_model
    paired, pairing = pair(tracks, config, model, regions, single, recon, log,
                           {"jobs": jobs, "scheduler": scheduler, "progress": progress})
    doc = _document(config, tracks, model, regions, single, paired, pairing)
    doc["elapsed_s"] = time.perf_counter() - t0
    return CombinatorialResult(doc, pairs=pairing.pairs)
