"""Magnet-setting scans and optimisation (``backtrace scan`` / ``optimize``).

Each setting (a set of geometry overrides such as ``sweeper.scale=0.5``) is
one independent task:

1. **single-muon flux** at the reference plane (STRAW1 annulus) from the
   dump source model, by the forward method of :mod:`backtrace.source.simulate`
   (source → TAX exit → plane) with the setting's geometry;
2. **prompt background**: :func:`backtrace.prompt.pipeline.run_estimate` on
   detector-level tracks — the tracks simulated in step 1 (``source`` mode),
   or a user's track file (``tracks`` mode). A track file describes the flux
   of the setting it was recorded with only; in ``tracks`` mode the tracks
   are back-traced through each setting's fields (the interaction part is
   re-evaluated) and the yields are multiplied by the source-model flux
   ratio rate(setting) / rate(file's setting), the file's setting being the
   geometry without the scanned overrides. The output says so.

Common random numbers: every setting uses the same seed, hence the same
source events and the same transport random streams (keyed by event,
:mod:`backtrace.rng`), so differences between nearby settings are not MC
noise. The scan reports, for neighbouring settings, the rate difference with
its paired (CRN) uncertainty Σ_events (w_A − w_B)² beside the independent
one.

Settings are evaluated in parallel (``jobs`` worker processes, one setting
per worker); each finished setting is written atomically to
``OUT/points/<key>.json`` and a rerun skips the settings already there
(``<key>`` hashes the whole point configuration).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backtrace.beamline.geometry import GeometryError, parse_override
from backtrace.executor import progress_bar, worker_map
from backtrace.io import atomic_path, write_json_atomic, write_text_atomic
from backtrace.output.plots import new_figure, save_figure
from backtrace.prompt.pipeline import RunConfig, run_estimate
from backtrace.source.forward import SimulationConfig
from backtrace.source.simulate import simulate_tracks
from backtrace.tracks import Tracks

__all__ = ["ScanConfig", "parse_grid", "settings_of", "evaluate_point", "run_scan",
           "optimize", "OBJECTIVES"]

#: What ``optimize`` can minimise (names of point figures).
OBJECTIVES = ("rate", "prompt_total", "prompt_sr", "prompt_cr")


@dataclass(frozen=True)
class ScanConfig:
    """Everything a point depends on (recorded in every output)."""

    geometry_file: str | None = None
    overrides: tuple[str, ...] = ()
    tracks_file: str | None = None
    pot_target: float = 1.4e17
    events: int = 20_000
    seed: int = 1
    samples_per_track: int = 2
    interactions_per_history: int = 2
    estimate: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["overrides"] = list(self.overrides)
        return d


# ---------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------
def parse_grid(text: str) -> tuple[str, np.ndarray]:
    """``ELEMENT.KEY=LO:HI:N`` (N evenly spaced values) or
    ``ELEMENT.KEY=V1,V2,…`` → (target, values)."""
    if "=" not in text:
        raise GeometryError(f"--set-grid {text!r}: expected ELEMENT.KEY=LO:HI:N")
    target, spec = (s.strip() for s in text.split("=", 1))
    parse_override(f"{target}=0")  # validates ELEMENT.KEY
    try:
        if ":" in spec:
            lo, hi, n = spec.split(":")
            n = int(n)
            if n < 1:
                raise ValueError
            values = np.linspace(float(lo), float(hi), n)
        else:
            values = np.array([float(v) for v in spec.split(",")])
    except ValueError:
        raise GeometryError(f"--set-grid {text!r}: expected LO:HI:N with N >= 1 "
                            "or a comma-separated list of numbers") from None
    return target, values


def settings_of(grids) -> list[dict]:
    """The grid product as a list of {target: value} (first grid slowest)."""
    targets = [t for t, _ in grids]
    return [dict(zip(targets, (float(v) for v in combo)))
            for combo in itertools.product(*(v for _, v in grids))]


def _overrides(config: ScanConfig, setting: dict) -> tuple[str, ...]:
    return tuple(config.overrides) + tuple(f"{k}={v!r}" for k, v in setting.items())


def point_key(config: ScanConfig, setting: dict) -> str:
    blob = json.dumps({"config": config.to_dict(), "setting": setting},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# One point
# ---------------------------------------------------------------------------
def _flux(config: ScanConfig, overrides, out_tracks: Path | None) -> dict:
    """Source-model flux at STRAW1 for a geometry: the summary of
    :func:`backtrace.source.simulate.simulate_tracks` (tracks written to
    ``out_tracks`` when given)."""
    sim = SimulationConfig(geometry_file=config.geometry_file, overrides=overrides,
                           n_events=config.events, seed=config.seed,
                           pot=config.pot_target)
    return simulate_tracks(sim, out_tracks, jobs=1, progress=False)


def _event_weights(path: Path, pot: float) -> pd.Series:
    df = pd.read_parquet(path, columns=["event_id", "weight"])
    return (df.groupby("event_id")["weight"].sum() / pot).rename("w")


def evaluate_point(config: ScanConfig, setting: dict, points_dir: Path) -> dict:
    """Flux and (optionally) prompt background of one setting; written to
    ``points_dir/<key>.json`` (+ ``<key>.events.parquet``) and returned."""
    t0 = time.perf_counter()
    key = point_key(config, setting)
    points_dir.mkdir(parents=True, exist_ok=True)
    overrides = _overrides(config, setting)
    tracks_path = points_dir / f"{key}.tracks.parquet"
    flux = _flux(config, overrides, tracks_path)
    events = _event_weights(tracks_path, config.pot_target) if flux["tracks"] else \
        pd.Series(dtype=float, name="w")
    with atomic_path(points_dir / f"{key}.events.parquet") as tmp:
        events.reset_index().to_parquet(tmp, index=False)
    point = {"key": key, "setting": setting, "overrides": list(overrides),
             "rate_per_pot": flux["muons_per_pot"],
             "rate_rel_err": flux["muons_per_pot_mc_rel_err"],
             "mean_momentum_gev": flux["mean_momentum_gev"],
             "flux_tracks": flux["tracks"]}
    if config.estimate:
        if config.tracks_file:
            tracks = Tracks.open(config.tracks_file)
            ref = _reference_rate(config, points_dir)
            flux_scale = point["rate_per_pot"] / ref if ref > 0 else float("nan")
            point["flux_from"] = ("track file, reweighted by the source-model flux "
                                  f"ratio {flux_scale:.4g} (setting / file's setting)")
        else:
            tracks = Tracks.open(tracks_path)
            flux_scale = 1.0
            point["flux_from"] = "source model (forward simulation of this setting)"
        run_cfg = RunConfig(geometry_file=config.geometry_file, overrides=overrides,
                            pot_target=config.pot_target, seed=config.seed,
                            samples_per_track=config.samples_per_track,
                            interactions_per_history=config.interactions_per_history)
        if tracks.n_rows:
            doc = run_estimate(tracks, run_cfg, jobs=1, progress=False,
                               systematics="none").document
            point.update(_yields(doc, flux_scale))
        else:
            point.update(_yields(None, flux_scale))
    tracks_path.unlink(missing_ok=True)
    point["elapsed_s"] = time.perf_counter() - t0
    write_json_atomic(points_dir / f"{key}.json", point)
    return point


def _reference_rate(config: ScanConfig, points_dir: Path) -> float:
    """Source-model rate of the track file's own setting (cached)."""
    path = points_dir / f"reference-{point_key(config, {})}.json"
    if path.exists():
        return float(json.loads(path.read_text())["rate_per_pot"])
    flux = _flux(config, tuple(config.overrides), None)
    write_json_atomic(path, {"rate_per_pot": flux["muons_per_pot"]})
    return float(flux["muons_per_pot"])


def _yields(doc: dict | None, flux_scale: float) -> dict:
    """Flat figures of a run document: per region and category value/stat,
    and the totals used as objectives."""
    out: dict = {}
    totals = {"prompt_total": [0.0, 0.0], "prompt_sr": [0.0, 0.0],
              "prompt_cr": [0.0, 0.0]}
    regions = doc["regions"] if doc else {}
    for region, cats in regions.items():
        for cat in cats:                    # the run's channel's categories
            v = cats[cat]["value"] * flux_scale
            s = cats[cat]["stat"] * flux_scale
            out[f"{region}:{cat}"] = v
            out[f"{region}:{cat}:stat"] = s
            keys = ["prompt_total"] + ([f"prompt_{region.lower()}"]
                                       if f"prompt_{region.lower()}" in totals else [])
            for k in keys:
                totals[k][0] += v
                totals[k][1] += s * s
    for k, (v, s2) in totals.items():
        out[k] = v
        out[f"{k}:stat"] = float(np.sqrt(s2))
    out["candidates"] = doc["candidates"] if doc else 0
    out["tracks_estimated"] = sum(doc["tracks"].values()) if doc else 0
    return out


def _load_point(points_dir: Path, key: str) -> dict | None:
    path = points_dir / f"{key}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None  # a damaged point is recomputed


class PointEvaluator:
    """One worker of a scan: :func:`evaluate_point` for a fixed config and
    points directory (a Dask cluster must share the file system holding it)."""

    def __init__(self, config: ScanConfig, points_dir):
        self.config, self.points_dir = config, Path(points_dir)

    def evaluate(self, setting: dict) -> dict:
        return evaluate_point(self.config, setting, self.points_dir)


# ---------------------------------------------------------------------------
# Scan
# ---------------------------------------------------------------------------
def run_scan(config: ScanConfig, grids, out_dir, *, jobs: int = 1,
             progress: bool = True, scheduler: str | None = None) -> dict:
    """Evaluate every setting of the grid (skipping finished ones), write
    ``scan.json``, ``scan.csv`` and the plots into ``out_dir``."""
    out = Path(out_dir)
    points_dir = out / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    settings = settings_of(grids)
    keys = [point_key(config, s) for s in settings]
    done = {k: p for k in keys if (p := _load_point(points_dir, k)) is not None}
    todo = [s for s, k in zip(settings, keys) if k not in done]
    t0 = time.perf_counter()
    if todo and config.estimate and config.tracks_file:
        _reference_rate(config, points_dir)  # once here, not in every worker
    with progress_bar(len(settings), "settings", progress, unit="settings") as bar:
        task = bar.add_task("scan", total=len(settings), completed=len(done))
        results = worker_map(PointEvaluator, (config, str(points_dir)), PointEvaluator.evaluate,
                             ((s,) for s in todo), jobs=max(1, min(jobs, len(todo))),
                             scheduler=scheduler)
        for p in results:
            done[p["key"]] = p
            bar.advance(task)
    points = [done[k] for k in keys]
    table = pd.DataFrame([_row(p) for p in points])
    diffs = _paired_differences(points, points_dir) if len(grids) == 1 else []
    doc = {"schema_version": 1, "config": config.to_dict(),
           "grid": {t: [float(v) for v in vals] for t, vals in grids},
           "computed": len(todo), "reused": len(settings) - len(todo),
           "elapsed_s": time.perf_counter() - t0,
           "flux_method": "forward simulation of the dump source model per setting",
           "tracks_mode_note": None if not config.tracks_file else
           "the track file's flux is that of its own setting: yields are reweighted "
           "by the source-model flux ratio; only the interaction part is re-traced",
           "points": points, "rate_differences": diffs}
    write_json_atomic(out / "scan.json", doc)
    write_text_atomic(out / "scan.csv", table.to_csv(index=False))
    _plots(out, grids, table)
    return doc


def _row(p: dict) -> dict:
    row = {**p["setting"], "rate_per_pot": p["rate_per_pot"],
           "rate_rel_err": p["rate_rel_err"],
           "mean_momentum_gev": p["mean_momentum_gev"]}
    row.update({k: v for k, v in p.items() if k.startswith(("prompt_", "SR:", "CR:",
                                                             "outside:"))})
    return row


def _paired_differences(points, points_dir: Path) -> list[dict]:
    """Rate differences of neighbouring settings with the paired (common
    random numbers) and the independent-samples uncertainty."""
    out = []
    for a, b in zip(points[:-1], points[1:]):
        wa = pd.read_parquet(points_dir / f"{a['key']}.events.parquet").set_index("event_id")["w"]
        wb = pd.read_parquet(points_dir / f"{b['key']}.events.parquet").set_index("event_id")["w"]
        both = pd.concat([wa, wb], axis=1, keys=["a", "b"]).fillna(0.0)
        diff = float(both["b"].sum() - both["a"].sum())
        out.append({"from": a["setting"], "to": b["setting"], "difference": diff,
                    "paired_err": float(np.sqrt(((both["b"] - both["a"]) ** 2).sum())),
                    "independent_err": float(np.sqrt((both["a"] ** 2).sum()
                                                     + (both["b"] ** 2).sum()))})
    return out


def _log_if_decades(ax, values, axis: str = "y") -> None:
    """Logarithmic scale when the positive values span more than two decades."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) and v.max() > 100 * v.min():
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def _errorbar(ax, x, y, err, **kw):
    """Error bars that stay positive on a log axis (the lower bar stops at
    1 % of the value; the upper is the full error)."""
    y, err = np.asarray(y, float), np.nan_to_num(np.asarray(err, float))
    lower = np.minimum(err, 0.99 * np.abs(y)) if ax.get_yscale() == "log" else err
    ax.errorbar(x, y, yerr=[lower, err], capsize=3, **kw)


def _plots(out: Path, grids, table: pd.DataFrame) -> None:
    if len(grids) == 1:
        (target, _), = grids
        x = table[target].to_numpy()
        fig, axes = new_figure(1, 2, figsize=(13, 5.5))
        rate = table["rate_per_pot"].to_numpy()
        axes[0, 0].set_yscale("log")
        _errorbar(axes[0, 0], x, rate, rate * table["rate_rel_err"].fillna(0).to_numpy(),
                  fmt="o-")
        axes[0, 0].set(xlabel=target, ylabel="muons per POT at STRAW1")
        ax = axes[0, 1]
        keys = [k for k in ("prompt_total", "prompt_sr", "prompt_cr") if k in table]
        _log_if_decades(ax, np.concatenate([table[k].to_numpy() for k in keys])
                        if keys else [])
        for k in keys:
            _errorbar(ax, x, table[k], table[f"{k}:stat"], fmt="o-", label=k)
        ax.set(xlabel=target, ylabel="prompt background (events)")
        if keys:
            ax.legend(fontsize=12)
        else:
            ax.set_visible(False)
        fig.suptitle("muon rate and prompt background per setting", fontsize=15)
        save_figure(fig, out / "scan.png")
    elif len(grids) == 2:
        from matplotlib.colors import LogNorm

        (tx, vx), (ty, vy) = grids
        fig, axes = new_figure(1, 2, figsize=(14, 5.5))
        for ax, col in zip(axes[0], ("rate_per_pot", "prompt_total")):
            if col not in table:
                ax.set_visible(False)
                continue
            grid = table[col].to_numpy(float).reshape(len(vx), len(vy))
            positive = grid[np.isfinite(grid) & (grid > 0)]
            norm = LogNorm(vmin=positive.min(), vmax=positive.max()) \
                if len(positive) and positive.max() > 100 * positive.min() else None
            im = ax.pcolormesh(_edges(vy), _edges(vx), grid, shading="flat", norm=norm)
            ax.set(xlabel=ty, ylabel=tx)
            ax.set_title(col, fontsize=14)
            fig.colorbar(im, ax=ax)
        save_figure(fig, out / "scan.png")


def optimize_plot(out: Path, doc: dict) -> Path:
    """optimize.png: the objective of every evaluation (log scale when it
    spans decades) and the settings visited."""
    objective = doc["objective"]
    path = doc["path"]
    n = np.arange(1, len(path) + 1)
    values = np.array([p[objective] for p in path], float)
    rel = np.array([p.get(f"{objective}_rel_err") or 0.0 for p in path], float)
    targets = list(doc["bounds"])
    fig, axes = new_figure(1, 2, figsize=(13, 5.5))
    ax = axes[0, 0]
    _log_if_decades(ax, values)
    _errorbar(ax, n, values, values * rel, fmt="o-")
    best = int(np.argmin(values))
    ax.plot(n[best], values[best], "r*", ms=16, label="best")
    ax.set(xlabel="evaluation", ylabel=objective)
    ax.legend(fontsize=12)
    ax = axes[0, 1]
    for t in targets:
        ax.plot(n, [p["setting"][t] for p in path], "o-", label=t)
    ax.set(xlabel="evaluation", ylabel="setting")
    ax.legend(fontsize=12)
    fig.suptitle(f"optimisation of {objective}", fontsize=15)
    save_figure(fig, out / "optimize.png")
    return out / "optimize.png"


def _edges(v) -> np.ndarray:
    v = np.asarray(v, float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.r_[2 * v[0] - mid[0], mid, 2 * v[-1] - mid[-1]]


# ---------------------------------------------------------------------------
# Optimiser
# ---------------------------------------------------------------------------
def optimize(config: ScanConfig, bounds: dict, objective: str, out_dir, *,
             max_evaluations: int = 20, x0: dict | None = None,
             progress: bool = True) -> dict:
    """Minimise a point figure over the box ``bounds`` ({target: (lo, hi)})
    with bounded Nelder–Mead (scipy). Common random numbers make the
    objective a deterministic function of the setting, so the simplex is
    not misled by independent MC noise; every evaluation is cached in
    ``out_dir/points`` (a rerun replays it)."""
    from scipy.optimize import minimize

    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} (known: {', '.join(OBJECTIVES)})")
    if objective != "rate" and not config.estimate:
        raise ValueError(f"objective {objective!r} needs the prompt estimate, "
                         "which is off (--rate-only)")
    out = Path(out_dir)
    points_dir = out / "points"
    targets = list(bounds)
    lo = np.array([bounds[t][0] for t in targets], float)
    hi = np.array([bounds[t][1] for t in targets], float)
    start = np.array([(x0 or {}).get(t, 0.5 * (a + b)) for t, a, b in zip(targets, lo, hi)])
    path: list[dict] = []

    def figure(x):
        setting = {t: float(round(v, 6)) for t, v in zip(targets, np.clip(x, lo, hi))}
        key = point_key(config, setting)
        p = _load_point(points_dir, key) or evaluate_point(config, setting, points_dir)
        value = float(p["rate_per_pot" if objective == "rate" else objective])
        path.append({"setting": setting, objective: value,
                     f"{objective}_rel_err": _rel_err(p, objective)})
        bar.advance(task)
        return value

    with progress_bar(max_evaluations, "evaluations", progress, unit="settings") as bar:
        task = bar.add_task("optimize", total=max_evaluations)
        res = minimize(figure, start, method="Nelder-Mead", bounds=list(zip(lo, hi)),
                       options={"maxfev": max_evaluations, "xatol": 1e-3, "fatol": 0.0,
                                "initial_simplex": _simplex(start, lo, hi)})
    best = min(path, key=lambda r: r[objective])
    best_point = _load_point(points_dir, point_key(config, best["setting"]))
    doc = {"schema_version": 1, "objective": objective, "bounds": {
        t: [float(a), float(b)] for t, a, b in zip(targets, lo, hi)},
        "config": config.to_dict(), "method": "scipy Nelder-Mead (bounded), "
        "common random numbers", "evaluations": len(path), "message": str(res.message),
        "best": {"setting": best["setting"], "point": best_point}, "path": path}
    write_json_atomic(out / "optimize.json", doc)
    optimize_plot(out, doc)
    return doc


def _simplex(start, lo, hi) -> np.ndarray:
    """Initial simplex spanning a quarter of each range."""
    n = len(start)
    simplex = np.tile(start, (n + 1, 1))
    for i in range(n):
        step = 0.25 * (hi[i] - lo[i])
        simplex[i + 1, i] = start[i] + step if start[i] + step <= hi[i] else start[i] - step
    return simplex


def _rel_err(p: dict, objective: str) -> float | None:
    if objective == "rate":
        return p.get("rate_rel_err")
    v, s = p.get(objective), p.get(f"{objective}:stat")
    return float(s / v) if v else None
