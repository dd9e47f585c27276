"""The forward single-muon simulation of one process: proton interactions
in the dump sampled by the source model (:mod:`backtrace.source.model`),
the muons transported forward with PUMAS to the reference plane, kept in
the acceptance. :func:`backtrace.source.simulate.simulate_tracks` runs it
over workers and writes the sample; the source density
(:mod:`backtrace.source.density`) reuses it at the TAX exit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from backtrace.beamline.line import BeamLine
from backtrace.rng import STAGE2_KEY_OFFSET, source_muon_key
from backtrace.source.model import SourceConfig, sample_source_muons
from backtrace.tracks import momentum_gev
from backtrace.transport import TraceConfig, Tracer

__all__ = ["SimulationConfig", "Simulator", "resolved"]


@dataclass(frozen=True)
class SimulationConfig:
    """What ``simulate-tracks`` does (recorded in the output metadata).

    plane_z_m: the reference plane [m] (None: the geometry's STRAW1 entry
    face, :attr:`backtrace.beamline.geometry.Geometry.first_tracker_z_m`);
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
