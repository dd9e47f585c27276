"""Backward (and forward) transport of batches of tracks through a geometry.

Each valid track is replicated into ``samples_per_track`` histories and
transported with PUMAS (default: backward, straggled energy loss, multiple
scattering, magnetic fields, decay weighting) until it leaves the world:
through the target plane (default the dump front face, status
``reached_target``), sideways (``left_world``), or it hits the energy limit
(``energy_limit``: backward above the beam energy it cannot come from the
dump). States are recorded at every volume boundary, every
``record_step_m`` in dense matter and at optional reference planes.

Weights. A history's ``weight`` is PUMAS's backward weight ω (Jacobian of
the backward steps, times the survival probability) times the input track
weight. ``track_weight`` is the prior-free per-track normalisation
w·ω_i / Σ_j ω_j over the histories of the track that reached the target (0
for the others), so that each observed track counts once. The source-
weighted normalisation ω·φ_src(s_TAX) / Σ ω·φ_src (``docs/method.md``) needs the
source model and is applied downstream.

Track status (``status_counts``): the validation status of a bad row, else
``reached_target`` when at least one history reached the target, else the
most frequent history status. Counts always sum to the input rows; history
statuses are counted separately.

Randomness: every history draws from a counter-based stream keyed by
(seed, track index, sample index), so outputs are identical whatever the
batch size or number of worker processes.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backtrace._version import __version__
from backtrace.beamline.line import BeamLine
from backtrace.executor import progress_bar, worker_map
from backtrace.io import atomic_path
from backtrace.pumas import Context, TransportOptions, pumas_version
from backtrace.pumas.context import EVENTS
from backtrace.tracks import Tracks, kinetic_energy_gev, numeric_columns, validate

__all__ = ["TraceConfig", "Tracer", "BatchResult", "trace_file",
           "HISTORY_STATUSES", "grammage_by_volume"]

#: History statuses (C enum bt_status, see pumas/_shim.h) for backward
#: transport; forward transport swaps the meaning of the two z planes.
_BACKWARD_NAMES = ("reached_target", "left_downstream", "left_world",
                   "energy_limit", "stopped", "decayed", "weight_zero",
                   "outside_world", "pumas_error", "record_overflow")
_FORWARD_NAMES = ("left_upstream", "reached_target") + _BACKWARD_NAMES[2:]
HISTORY_STATUSES = tuple(dict.fromkeys(_BACKWARD_NAMES + _FORWARD_NAMES))
_EVENT_NAMES = ("start", "boundary", "step", "energy_limit", "end", "other")


@dataclass(frozen=True)
class TraceConfig:
    """What a trace run does (recorded in every output).

    to_z_m: end plane (default: the geometry's ``beam.target_z_m`` backward,
    the world's end forward); samples_per_track: histories per track;
    energy_loss: 'straggled', 'mixed' (alias 'hybrid') or 'csda';
    energy_limit_gev: backward maximum / forward minimum kinetic energy
    (default: the beam momentum backward, none forward); planes_m: extra
    reference planes where states are recorded.
    """

    geometry_file: str | None = None
    overrides: tuple[str, ...] = ()
    direction: str = "backward"
    to_z_m: float | None = None
    samples_per_track: int = 1
    seed: int = 1
    energy_loss: str = "straggled"
    scattering: bool = True
    decay: bool = True
    energy_limit_gev: float | None = None
    record: bool = True
    planes_m: tuple[float, ...] = ()
    accuracy: float = 1e-2

    def __post_init__(self):
        if self.samples_per_track < 1:
            raise ValueError("samples_per_track must be >= 1")
        if self.direction not in ("backward", "forward"):
            raise ValueError(f"direction={self.direction!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["overrides"] = list(self.overrides)
        d["planes_m"] = list(self.planes_m)
        return d


@dataclass
class BatchResult:
    """Output of one batch: per-input-row status, per-history finals, states."""

    track_index: np.ndarray
    row_status: np.ndarray          # per input row (object strings)
    histories: pd.DataFrame         # one row per history
    states: pd.DataFrame | None     # one row per recorded state

    def status_counts(self) -> Counter:
        return Counter(self.row_status.tolist())

    def history_status_counts(self) -> Counter:
        return Counter(self.histories["status"].tolist())


class Tracer:
    """Physics, compiled geometry and a PUMAS context for one process."""

    def __init__(self, config: TraceConfig, beamline=None):
        self.config = config
        self.beamline = BeamLine.for_config(config, beamline)
        self.physics = self.beamline.physics
        self.geometry = self.beamline.geometry
        world = self.geometry.world
        if config.direction == "backward":
            z_lo = config.to_z_m if config.to_z_m is not None else \
                self.geometry.target_z_m
            z_range = (z_lo, world["z_max_m"])
            limit = config.energy_limit_gev if config.energy_limit_gev is not None \
                else self.geometry.beam_momentum_gev
        else:
            z_hi = config.to_z_m if config.to_z_m is not None else world["z_max_m"]
            z_range = (world["z_min_m"], z_hi)
            limit = config.energy_limit_gev
        if not world["z_min_m"] <= z_range[0] < z_range[1] <= world["z_max_m"]:
            raise ValueError(
                f"end plane z = {config.to_z_m} m is outside the world "
                f"[{world['z_min_m']}, {world['z_max_m']}] m")
        self.z_range = z_range
        self.compiled = self.beamline.compiled(z_range, config.planes_m)
        self.context = Context(self.physics, self.compiled.navigator)
        self.options = TransportOptions(
            energy_loss=config.energy_loss, scattering=config.scattering,
            decay=config.decay, direction=config.direction,
            accuracy=config.accuracy, energy_limit_gev=limit)
        self.energy_limit_gev = limit
        self.world_box = (world["half_x_m"], world["half_y_m"], *z_range)
        nav = self.compiled.navigator
        dense = sum(s.z1 - s.z0 for s in self.compiled.slabs
                    if any(r.record_step > 0 for r in s.regions))
        step = float(world["record_step_m"])
        self.max_records = int(3 * len(self.compiled.slabs) + 2 * dense / step + 32)
        self._names = _BACKWARD_NAMES if config.direction == "backward" \
            else _FORWARD_NAMES
        #: rank in HISTORY_STATUSES (the tie-break order) of each status code
        self._rank = np.array([HISTORY_STATUSES.index(s) for s in self._names])
        volumes = self.compiled.volumes
        self._region_volume = self.compiled.region_volume
        self._volume_names = np.array([v.name for v in volumes] + ["outside"],
                                      dtype=object)
        mats = self.compiled.material_names
        self._region_material = np.array(
            [mats[r.material] for _, r in nav.region_info] + ["outside"],
            dtype=object)

    # ------------------------------------------------------------------
    def initial_states(self, df: pd.DataFrame, n_samples: int) -> dict:
        """PUMAS states for ``n_samples`` copies of each row of ``df``."""
        rep = lambda a: np.repeat(np.asarray(a, float), n_samples)  # noqa: E731
        p = np.column_stack([df[c].to_numpy(float)
                             for c in ("px_gev", "py_gev", "pz_gev")])
        with np.errstate(over="ignore"):
            norm = np.linalg.norm(p, axis=1)
        huge = ~np.isfinite(norm)       # |p| beyond ~1e154 GeV: p² overflows
        norm[huge] = np.hypot(np.hypot(p[huge, 0], p[huge, 1]), p[huge, 2])
        weight = df["weight"].to_numpy(float) if "weight" in df else np.ones(len(df))
        return {
            "charge": rep(df["charge"]),
            "energy": rep(kinetic_energy_gev(norm)),
            "weight": rep(weight),
            "position": np.repeat(df[["x_m", "y_m", "z_m"]].to_numpy(float),
                                  n_samples, axis=0),
            "direction": np.repeat(p / norm[:, None], n_samples, axis=0),
        }

    def trace(self, df: pd.DataFrame, first_sample: int = 0,
              n_samples: int | None = None) -> BatchResult:
        """Validate and transport one batch (with a ``track_index`` column).

        Histories get sample indices ``first_sample … first_sample + n − 1``
        (n: ``n_samples``, default ``samples_per_track``); the random stream
        of a history depends only on (seed, track, sample), so histories
        traced in several calls with disjoint sample ranges are exactly those
        of one call over the union (the weights normalised per track here,
        ``track_weight``, are normalised over this call's histories only)."""
        cfg = self.config
        if first_sample < 0:
            raise ValueError("first_sample must be >= 0")
        status = validate(df, self.world_box)
        good = numeric_columns(df[status == "ok"])[0]
        n = cfg.samples_per_track if n_samples is None else int(n_samples)
        if n < 1:
            raise ValueError("n_samples must be >= 1")
        track = np.repeat(good["track_index"].to_numpy(np.int64), n)
        sample = np.tile(np.arange(first_sample, first_sample + n, dtype=np.int64),
                         len(good))
        final, codes, records = self.context.transport(
            self.initial_states(good, n), self.options, seed=cfg.seed,
            track=track, sample=sample, record=cfg.record,
            max_records=self.max_records)
        codes = np.asarray(codes, np.intp)
        reached = codes == self._names.index("reached_target")
        w = final["weight"]
        norm = pd.Series(np.where(reached, w, 0.0)).groupby(track).transform("sum").to_numpy()
        input_w = np.repeat(good["weight"].to_numpy(float) if "weight" in good
                            else np.ones(len(good)), n)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            ratio = input_w * w / norm
            # huge input weights: w already holds them, the product overflows
            ratio = np.where(np.isfinite(ratio) | ~np.isfinite(w), ratio,
                             input_w * (w / norm))
            track_weight = np.where(reached & (norm > 0), ratio, 0.0)
        histories = pd.DataFrame({
            "track_index": track, "sample_index": sample,
            "status": _labels(self._names, codes),
            "x_m": final["position"][:, 0], "y_m": final["position"][:, 1],
            "z_m": final["position"][:, 2],
            "ux": final["direction"][:, 0], "uy": final["direction"][:, 1],
            "uz": final["direction"][:, 2],
            "kinetic_energy_gev": final["energy"], "charge": final["charge"],
            "weight": w, "track_weight": track_weight,
            "distance_m": final["distance"], "grammage_kg_m2": final["grammage"],
        })
        row_status = status.copy()
        if len(good):
            row_status[status == "ok"] = self._track_status(codes, len(good), n)
        states = self._states(records, track, sample, codes,
                              track_weight, final["charge"]) if cfg.record else None
        return BatchResult(df["track_index"].to_numpy(np.int64), row_status,
                           histories, states)

    def _track_status(self, codes, n_tracks: int, n: int) -> np.ndarray:
        """Status of each of ``n_tracks`` tracks from its ``n`` consecutive
        history codes: reached_target if any history did, else the most
        frequent status (ties: first in HISTORY_STATUSES)."""
        k = len(HISTORY_STATUSES)
        pos = np.repeat(np.arange(n_tracks), n)
        counts = np.bincount(pos * k + self._rank[codes],
                             minlength=n_tracks * k).reshape(n_tracks, k)
        target = HISTORY_STATUSES.index("reached_target")
        best = np.where(counts[:, target] > 0, target, counts.argmax(axis=1))
        return np.array(HISTORY_STATUSES, dtype=object)[best]

    def _states(self, rec, track, sample, codes, track_weight, charge):
        h = rec["history"]
        region = rec["region"]
        ev = rec["event"]
        event = np.full(len(rec), _EVENT_NAMES.index("other"), dtype=np.int8)
        for flag, label in (("medium", "boundary"), ("limit_distance", "step"),
                            ("limit_energy", "energy_limit"), ("start", "start")):
            event[(ev & EVENTS[flag]) != 0] = _EVENT_NAMES.index(label)
        event[region < 0] = _EVENT_NAMES.index("end")
        vol_idx = np.where(region >= 0, self._region_volume[np.maximum(region, 0)],
                           len(self._volume_names) - 1)
        mat_idx = np.where(region >= 0, region, len(self._region_material) - 1)
        first = np.r_[True, h[1:] != h[:-1]] if len(h) else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        state_index = np.arange(len(h)) - np.repeat(starts, np.diff(np.r_[starts, len(h)]))
        return pd.DataFrame({
            "track_index": track[h], "sample_index": sample[h].astype(np.int32),
            "state_index": state_index.astype(np.int32),
            "event": pd.Categorical.from_codes(event, categories=_EVENT_NAMES),
            "volume": _labels(self._volume_names, vol_idx),
            "material": _labels(self._region_material, mat_idx),
            "x_m": rec["position"][:, 0], "y_m": rec["position"][:, 1],
            "z_m": rec["position"][:, 2],
            "ux": rec["direction"][:, 0], "uy": rec["direction"][:, 1],
            "uz": rec["direction"][:, 2],
            "kinetic_energy_gev": rec["energy"], "charge": charge[h],
            "weight": rec["weight"],
            "distance_m": rec["distance"], "grammage_kg_m2": rec["grammage"],
            "history_status": _labels(self._names, codes[h]),
            "track_weight": track_weight[h],
        })


#: pandas' default dtype for strings (object before pandas 3, else "str")
_STR_DTYPE = pd.Series(["a"]).dtype


def _labels(names, index: np.ndarray):
    """``names[index]`` as a string column of pandas' default string dtype,
    built in Arrow (much faster than converting a column of Python str)."""
    if _STR_DTYPE == np.dtype(object):
        return np.asarray(names, dtype=object)[index]
    import pyarrow as pa
    import pyarrow.compute as pc

    labels = pc.take(pa.array(list(names), type=pa.large_string()),
                     pa.array(np.asarray(index, np.int64)))
    return pd.array(labels, dtype=_STR_DTYPE)


def grammage_by_volume(states: pd.DataFrame) -> pd.DataFrame:
    """Grammage [kg/m^2] crossed per (track, sample, volume), from the
    cumulative grammage of consecutive states (booked to the earlier one)."""
    s = states.sort_values(["track_index", "sample_index", "state_index"])
    dg = s.groupby(["track_index", "sample_index"])["grammage_kg_m2"].diff(-1)
    s = s.assign(dgrammage=-dg.fillna(0.0))
    return (s.groupby(["track_index", "sample_index", "volume"], observed=True)
            ["dgrammage"].sum().rename("grammage_kg_m2").reset_index())


class _StatesWriter:
    """Parquet writer of recorded states, opened on the first batch (with
    the run's metadata in the schema), into a temporary path."""

    def __init__(self, path, metadata: dict):
        self.path = path
        self.metadata = {k.encode(): v.encode() for k, v in metadata.items()}
        self.writer = None

    def write(self, states: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(states, preserve_index=False)
        if self.writer is None:
            schema = table.schema.with_metadata(self.metadata)
            self.writer = pq.ParquetWriter(self.path, schema)
        self.writer.write_table(table.cast(self.writer.schema))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _trace_metadata(probe: Tracer, tracks: Tracks, config_dict: dict,
                    extra: dict | None) -> dict:
    metadata = {
        "backtrace.version": __version__,
        "backtrace.pumas_version": ".".join(map(str, pumas_version())),
        "backtrace.prompt.config": json.dumps(config_dict, sort_keys=True),
        "backtrace.beamline.geometry": json.dumps(probe.geometry.config()),
        "backtrace.input": str(tracks.path),
        "backtrace.input_sha256": tracks.digest(),
        "backtrace.pot": repr(tracks.pot) if tracks.pot is not None else "",
    }
    metadata.update({f"backtrace.{k}": str(v) for k, v in (extra or {}).items()})
    return metadata


_EMPTY_TRACKS = ["track_index", "x_m", "y_m", "z_m", "px_gev", "py_gev", "pz_gev", "charge"]


def _recorded_config(config: TraceConfig, probe: Tracer) -> dict:
    """The configuration as recorded in the outputs, with the z range and
    energy limit resolved from the geometry."""
    config_dict = config.to_dict()
    config_dict["z_range_m"] = list(probe.z_range)
    config_dict["energy_limit_gev"] = probe.energy_limit_gev
    return config_dict


@contextmanager
def _states_file(out: str | Path | None, metadata: dict | None):
    """A :class:`_StatesWriter` into a temporary path that replaces ``out``
    when the block succeeds and is deleted when it fails (None: no output)."""
    if out is None:
        yield None
        return
    with atomic_path(out) as tmp:
        writer = _StatesWriter(tmp, metadata)
        try:
            yield writer
        finally:
            writer.close()


def _empty_states(probe: Tracer) -> pd.DataFrame:
    """A states table without rows (the columns and types of a real one)."""
    return probe.trace(pd.DataFrame({c: [] for c in _EMPTY_TRACKS})).states


def _tally_batches(results, writer: _StatesWriter | None, n_rows: int,
                   progress: bool) -> tuple[int, Counter, Counter]:
    """Consume the batch results in order, writing their states (when
    ``writer``): (input rows, track status counts, history status counts)."""
    rows, status_counts, history_counts = 0, Counter(), Counter()
    with progress_bar(n_rows, "tracing", progress) as bar:
        task = bar.add_task("trace", total=n_rows)
        for result in results:
            rows += len(result.row_status)
            status_counts.update(result.status_counts())
            history_counts.update(result.history_status_counts())
            if writer is not None and result.states is not None:
                writer.write(result.states)
            bar.advance(task, len(result.row_status))
    if sum(status_counts.values()) != rows:  # pragma: no cover - invariant
        raise RuntimeError("internal error: status counts do not sum to rows")
    return rows, status_counts, history_counts


def _trace_summary(counts: tuple[int, Counter, Counter], tracks: Tracks, probe: Tracer,
                   config_dict: dict, out: str | Path | None, elapsed: float,
                   run: dict) -> dict:
    """The summary of :func:`trace_file` (``run``: jobs, batch_size, scheduler)."""
    rows, status_counts, history_counts = counts
    return {
        "input_rows": rows,
        "status_counts": dict(sorted(status_counts.items())),
        "history_status_counts": dict(sorted(history_counts.items())),
        "histories": int(sum(history_counts.values())),
        "pot": tracks.pot,
        "config": config_dict,
        "geometry": probe.geometry.config(),
        "input": str(tracks.path),
        "output": str(out) if out is not None else None,
        "elapsed_s": elapsed,
        "tracks_per_s": rows / elapsed if elapsed > 0 else math.nan,
        **run,
    }


def trace_file(tracks: Tracks, config: TraceConfig, out: str | Path | None, *,
               jobs: int = 1, batch_size: int = 2000, progress: bool = True,
               extra_metadata: dict | None = None,
               scheduler: str | None = None) -> dict:
    """Trace every track of a file; write the states (Parquet, atomically)
    and return the summary (input_rows, status_counts, …). ``scheduler``:
    see :func:`backtrace.executor.ordered_map` (results do not depend on it)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if jobs < 1:
        raise ValueError("jobs must be >= 1")
    # Validate the configuration (geometry, end plane) in this process first,
    # so that mistakes are reported once and before any work starts.
    probe = Tracer(config)
    t0 = time.perf_counter()
    config_dict = _recorded_config(config, probe)
    metadata = (_trace_metadata(probe, tracks, config_dict, extra_metadata)
                if out is not None else None)
    with _states_file(out, metadata) as writer:
        results = worker_map(Tracer, (config,), Tracer.trace,
                             ((df,) for df in tracks.iter_batches(batch_size)),
                             jobs=jobs, scheduler=scheduler, local=probe)
        counts = _tally_batches(results, writer, tracks.n_rows, progress)
        if writer is not None and writer.writer is None:
            writer.write(_empty_states(probe))  # no states at all: still a valid file
    return _trace_summary(counts, tracks, probe, config_dict, out, time.perf_counter() - t0,
                          {"jobs": jobs, "batch_size": batch_size, "scheduler": scheduler})
