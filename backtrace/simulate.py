"""Detector-level single-muon samples from the dump source model.

``forward`` method (implemented): MC events are sampled from the source
model (:mod:`backtrace.source`), each muon is transported forward with
PUMAS in two stages — from its creation point to the TAX exit plane (TAX2
back face, where its true state is kept for closure studies), then to the
reference plane (default: the STRAW1 front face of the geometry) — and the muons
crossing that plane inside the acceptance are written as tracks.

``backward`` method (:mod:`backtrace.simulate_backward`): a proposal over
the detector plane's phase space, back-traced with PUMAS to the TAX exit and
weighted by the source density there (:mod:`backtrace.source_density`,
built from ``density_events`` independent forward source events). Unbiased
for that density model but, behind the K12 magnets, very slow to converge (its
module docstring says why); the summary reports the effective sample size.

Weights: ``weight`` = expected number of such muons in the sample's POT
(source weight per POT × PUMAS weight × POT). The file metadata records the
POT, the configuration, the seed and the number of MC events.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .rng import STAGE2_KEY_OFFSET, source_muon_key
from .source import SourceConfig, sample_source_muons
from .tracks import momentum_gev

__all__ = ["SimulationConfig", "Simulator", "simulate_tracks"]


@dataclass(frozen=True)
class SimulationConfig:
    """What ``simulate-tracks`` does (recorded in the output metadata).

    plane_z_m: the reference plane [m] (None: the geometry's STRAW1 entry
    face, :attr:`backtrace.geometry.Geometry.first_tracker_z_m`);
    acceptance: 'straw1' keeps muons with 0.1 m < r < 1.0 m at the plane
    (the STRAW active annulus), 'plane' keeps every muon crossing the plane
    inside the world.
    """

    geometry_file: str | None = None
    overrides: tuple[str, ...] = ()
    plane_z_m: float | None = None
    n_events: int = 20_000
    seed: int = 1
    pot: float = 1e10
    energy_loss: str = "straggled"
    acceptance: str = "straw1"
    acceptance_r_m: tuple[float, float] = (0.1, 1.0)
    source: SourceConfig = field(default_factory=SourceConfig)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["overrides"] = list(self.overrides)
        return d


class Simulator:
    """Source sampling and forward transport for one process."""

    def __init__(self, config: SimulationConfig, beamline=None):
        from .beamline import BeamLine
        from .transport import TraceConfig, Tracer

        self.beamline = BeamLine.for_config(config, beamline)
        self.config = resolved(config, self.beamline)
        self.physics = self.beamline.physics
        self.geometry = self.beamline.geometry
        self.tax_exit_z = self.beamline.tax_exit_z_m
        common = dict(geometry_file=config.geometry_file,
                      overrides=tuple(config.overrides), direction="forward",
                      energy_loss=config.energy_loss, record=False,
                      seed=config.seed)
        self.stage1 = Tracer(TraceConfig(to_z_m=self.tax_exit_z, **common), self.beamline)
        self.stage2 = Tracer(TraceConfig(to_z_m=self.config.plane_z_m, **common),
                             self.beamline)

    def to_tax_exit(self, seed: int, events: np.ndarray, n_events: int):
        """Source muons of MC ``events`` (of ``n_events``) sampled with
        ``seed``, their random-stream keys and their histories to the TAX
        exit plane (stage 1; one history per muon, in the same order)."""
        src = sample_source_muons(self.geometry, self.config.source, seed, events,
                                  n_events)
        key = source_muon_key(src["event"].to_numpy(np.int64), src["muon"].to_numpy(np.int64))
        if src.empty:
            return src, key, None
        tracks = src[["x_m", "y_m", "z_m", "px_gev", "py_gev", "pz_gev", "charge"]].copy()
        tracks.insert(0, "track_index", key)
        h1 = self.stage1.trace(tracks).histories
        if len(h1) != len(src):  # pragma: no cover - source muons are valid rows
            raise RuntimeError("internal error: invalid source muons")
        return src, key, h1

    def run(self, events: np.ndarray) -> tuple[pd.DataFrame, Counter]:
        """Tracks at the plane from MC events ``events``, and counts."""
        cfg = self.config
        counts: Counter = Counter()
        src, key, h1 = self.to_tax_exit(cfg.seed, events, cfg.n_events)
        counts["source_muons"] += len(src)
        if src.empty:
            return pd.DataFrame(), counts
        ok1 = (h1["status"] == "reached_target").to_numpy()
        counts.update({f"tax_exit:{k}": v for k, v in
                       Counter(h1["status"].tolist()).items()})
        mid = _tracks_from(h1[ok1], key[ok1])
        # a separate random stream for stage 2 (sample index 1)
        h2 = self.stage2.trace(mid.assign(
            track_index=mid["track_index"] + STAGE2_KEY_OFFSET)).histories
        counts.update({f"plane:{k}": v for k, v in
                       Counter(h2["status"].tolist()).items()})
        ok2 = (h2["status"] == "reached_target").to_numpy().copy()
        r = np.hypot(h2["x_m"], h2["y_m"]).to_numpy()
        if cfg.acceptance == "straw1":
            lo, hi = cfg.acceptance_r_m
            ok2 &= (r > lo) & (r < hi)
        h1s, srcs = h1[ok1].reset_index(drop=True), src[ok1].reset_index(drop=True)
        h2s = h2.reset_index(drop=True)
        p = momentum_gev(h2s["kinetic_energy_gev"])
        u = h2s[["ux", "uy", "uz"]].to_numpy()
        weight = srcs["weight"] * h1s["weight"] * h2s["weight"] * cfg.pot
        out = pd.DataFrame({
            "x_m": h2s["x_m"], "y_m": h2s["y_m"],
            "z_m": np.full(len(h2s), cfg.plane_z_m),
            "px_gev": p * u[:, 0], "py_gev": p * u[:, 1], "pz_gev": p * u[:, 2],
            "charge": h2s["charge"], "weight": weight,
            "event_id": srcs["event"],
            "true_component": srcs["component"],
            "true_source_z_m": srcs["z_m"],
            "true_source_p_gev": np.linalg.norm(
                srcs[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1),
            "true_tax_x_m": h1s["x_m"], "true_tax_y_m": h1s["y_m"],
            "true_tax_ux": h1s["ux"], "true_tax_uy": h1s["uy"],
            "true_tax_uz": h1s["uz"],
            "true_tax_e_gev": h1s["kinetic_energy_gev"],
        })[ok2].reset_index(drop=True)
        counts["accepted"] += int(ok2.sum())
        return out, counts


def _tracks_from(h: pd.DataFrame, key) -> pd.DataFrame:
    p = momentum_gev(h["kinetic_energy_gev"])
    u = h[["ux", "uy", "uz"]].to_numpy()
    return pd.DataFrame({
        "track_index": np.asarray(key, np.int64),
        "x_m": h["x_m"].to_numpy(), "y_m": h["y_m"].to_numpy(),
        # just downstream of the plane the muon crossed
        "z_m": h["z_m"].to_numpy() + 2e-7,
        "px_gev": p * u[:, 0], "py_gev": p * u[:, 1],
        "pz_gev": p * u[:, 2], "charge": h["charge"].to_numpy()})


def resolved(config: SimulationConfig, beamline) -> SimulationConfig:
    """``config`` with the default reference plane (None) replaced by the
    geometry's STRAW1 entry face."""
    from dataclasses import replace

    if config.plane_z_m is None:
        return replace(config, plane_z_m=beamline.first_tracker_z_m)
    return config


def _backward_workers(probe, config, proposal, density_events):
    """The probe worker, factory and arguments of the backward method."""
    from .simulate_backward import BackwardSimulator, ProposalConfig
    from .source_density import cached_source_density

    proposal = proposal or ProposalConfig()
    if not config.plane_z_m > probe.tax_exit_z:
        raise ValueError(f"plane z = {config.plane_z_m} m: the backward method "
                         f"needs a plane downstream of the TAX exit "
                         f"(z = {probe.tax_exit_z} m)")
    density = cached_source_density(probe.beamline, config, density_events)
    worker = BackwardSimulator(config, density, proposal, beamline=probe.beamline)
    extra = {"proposal": worker.proposal.to_dict(), "density_events": density_events}
    return worker, BackwardSimulator, (config, density, proposal), extra


def _summary(df: pd.DataFrame, config: SimulationConfig, method: str, counts,
             elapsed: float, jobs: int, extra: dict) -> dict:
    from . import __version__

    per_pot = float(df["weight"].sum() / config.pot) if len(df) else 0.0
    p = np.linalg.norm(df[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1) \
        if len(df) else np.zeros(0)
    mean_p = float(np.average(p, weights=df["weight"])) if len(df) else float("nan")
    w = df["weight"].to_numpy(float) if len(df) else np.zeros(0)
    return {
        "method": method, "n_events": config.n_events, "tracks": len(df),
        "pot": config.pot, "muons_per_pot": per_pot,
        "muons_per_pot_mc_rel_err": float(np.sqrt((w ** 2).sum()) / w.sum())
        if w.sum() > 0 else None,
        "effective_sample_size": float(w.sum() ** 2 / (w ** 2).sum())
        if w.sum() > 0 else 0.0,
        "mean_momentum_gev": mean_p, "plane_z_m": config.plane_z_m,
        "acceptance": config.acceptance, "counts": dict(sorted(counts.items())),
        "elapsed_s": elapsed, "seed": config.seed, "jobs": jobs,
        "config": config.to_dict(), "version": __version__, **extra,
    }


def simulate_tracks(config: SimulationConfig, out=None, *, jobs: int = 1,
                    batch_size: int = 2000, progress: bool = True,
                    scheduler: str | None = None, method: str = "forward",
                    proposal=None, density_events: int = 100_000) -> dict:
    """Run the simulation (``method`` 'forward': ``config.n_events`` source
    events; 'backward': ``config.n_events`` detector-plane proposals with
    ``proposal``, a :class:`backtrace.simulate_backward.ProposalConfig`),
    write the sample (atomically) and return a summary: muons per POT at the
    plane, its MC error, the effective sample size, mean momentum, counts."""
    from . import __version__
    from .executor import progress_bar, worker_map
    from .io import check_writable
    from .tracks import write_tracks

    if config.n_events < 1:
        raise ValueError("n_events must be >= 1")
    if not config.pot > 0:
        raise ValueError("pot must be positive")
    if method not in ("forward", "backward"):
        raise ValueError(f"method={method!r} (expected 'forward' or 'backward')")
    if out is not None:
        check_writable(out)
    t0 = time.perf_counter()
    probe = Simulator(config)  # validates geometry and plane once
    config = probe.config      # the reference plane resolved
    worker, factory, args, extra = probe, Simulator, (config,), {}
    if method == "backward":
        worker, factory, args, extra = _backward_workers(probe, config, proposal,
                                                         density_events)
    chunks = [np.arange(i, min(i + batch_size, config.n_events), dtype=np.int64)
              for i in range(0, config.n_events, batch_size)]
    results = worker_map(factory, args, "run", ((c,) for c in chunks), jobs=jobs,
                         scheduler=scheduler, local=worker)
    parts, counts = [], Counter()
    with progress_bar(config.n_events, "simulating", progress, unit="events") as bar:
        task = bar.add_task("sim", total=config.n_events)
        for chunk, (df, c) in zip(chunks, results):
            parts.append(df)
            counts.update(c)
            bar.advance(task, len(chunk))
    df = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else pd.DataFrame(columns=["x_m"])
    summary = _summary(df, config, method, counts, time.perf_counter() - t0, jobs, extra)
    if out is not None:
        write_tracks(out, df, pot=config.pot, metadata={
            "config": json.dumps(config.to_dict(), sort_keys=True, default=str),
            "method": method, "n_events": config.n_events,
            "seed": config.seed, "version": __version__,
            **{k: json.dumps(v) if isinstance(v, dict) else v for k, v in extra.items()},
        })
    return summary
