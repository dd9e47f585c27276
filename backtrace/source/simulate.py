"""Detector-level single-muon samples from the dump source model.

``forward`` method (implemented): MC events are sampled from the source
model (:mod:`backtrace.source.model`), each muon is transported forward with
PUMAS in two stages — from its creation point to the TAX exit plane (TAX2
back face, where its true state is kept for closure studies), then to the
reference plane (default: the STRAW1 front face of the geometry) — and the muons
crossing that plane inside the acceptance are written as tracks.

``backward`` method (:mod:`backtrace.source.backward`): a proposal over
the detector plane's phase space, back-traced with PUMAS to the TAX exit and
weighted by the source density there (:mod:`backtrace.source.density`,
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

import numpy as np
import pandas as pd

from backtrace._version import __version__
from backtrace.executor import progress_bar, worker_map
from backtrace.io import check_writable
from backtrace.source.backward import BackwardSimulator, ProposalConfig
from backtrace.source.density import cached_source_density
from backtrace.source.forward import SimulationConfig, Simulator
from backtrace.tracks import write_tracks

__all__ = ["simulate_tracks"]


def _backward_workers(probe, config, proposal, density_events):
    """The probe worker, factory and arguments of the backward method."""
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
    ``proposal``, a :class:`backtrace.source.backward.ProposalConfig`),
    write the sample (atomically) and return a summary: muons per POT at the
    plane, its MC error, the effective sample size, mean momentum, counts."""
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
    results = worker_map(factory, args, factory.run, ((c,) for c in chunks), jobs=jobs,
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
