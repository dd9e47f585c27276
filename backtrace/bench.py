"""Benchmarks: backtrace's Python API vs a C driver on the same navigator,
the forced-interaction stage, end-to-end ``run`` and scaling.

(a) Transport, single core, measured in the same run:

- ``slab``: 50 GeV muons through 1 m of iron, straggled (issue 3);
- ``k12``: backward transport of single-muon tracks from STRAW1 to the TAX
  through the full K12 geometry, straggled, scattering, fields, states
  recorded (issue 5).

The C driver (backtrace/pumas/c_driver.c, built here with the system compiler)
loads the same PUMAS library and physics dump and runs the same C batch loop
on the same histories; the Python side goes through the public API
(``slab_transport`` / ``Tracer.trace``: validation, array packing, records
to a DataFrame). Reported: histories/s of each and the ratio Python / C.

(b) ``forced``: forced-interaction histories/s, i.e. one forced interaction
per recorded backward history (:mod:`backtrace.interactions.forced`) plus the
transport of its products above the track momentum cut to the STRAWs and
MUV3 (:mod:`backtrace.interactions.products`), configured as ``run`` does.

(c) ``run``: end-to-end :func:`backtrace.prompt.pipeline.run_estimate` tracks/s
(and histories, forced interactions per second) and peak RSS, in a fresh
process.

(d) ``scaling``: ``trace`` (1 history per track, states written to Parquet)
of 10³…10⁶ tracks with ``--jobs`` 1 and 2, each in a fresh process: tracks/s
and peak RSS (of the main process and of the largest worker), which shows
whether the input is streamed (flat memory) and the speed-up with jobs.

(e) ``allocation``: the figure of merit 1 / (σ_rel² t) of the μ-μ yield
outside SR/CR (the published headline; σ_rel its relative MC uncertainty,
t the CPU time of this process, which does all the work with one job) of :func:`backtrace.prompt.pipeline.run_estimate`
with rounds of histories within the same time budget: ``plain`` (the former
forcing, ``--allocation natural``, of all processes, every track the same
histories), ``plain-trident`` (the same forcing of the trident alone, the
process that makes this yield: a stronger reference) and
``variance-reduced`` (the defaults), on the same tracks in the same run;
the ratios are the gains.

Inputs of (b)-(e): rows of ``examples/sample.parquet`` resampled with
replacement (synthetic STRAW1 tracks if the file is not there). Benchmarks,
not tests: no figure is checked against a threshold.

Run: ``backtrace bench [--quick] [--json] [--only PART ...]`` (or python benchmarks/bench_transport.py).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from backtrace.beamline.compile import locate_reference
from backtrace.beamline.line import BeamLine
from backtrace.beamline.slab import slab_navigator, slab_transport
from backtrace.prompt.pipeline import Pipeline, RunConfig, run_estimate
from backtrace.pumas import TransportOptions
from backtrace.pumas.driver import build_driver, run_driver, write_job
from backtrace.tracks import Tracks, write_tracks
from backtrace.transport import TraceConfig, Tracer, trace_file

EXAMPLE_TRACKS = Path(__file__).resolve().parent.parent / "examples" / "sample.parquet"
#: default sizes: (forced tracks, run tracks, scaling track counts)
QUICK_SIZES = (300, 300, (1_000, 10_000))
FULL_SIZES = (2_000, 2_000, (1_000, 10_000, 100_000))


def best_time(func, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_slab(physics, exe, workdir, n):
    t_py = best_time(lambda: slab_transport(physics, "iron", 1.0, 50.0, n,
                                            mode="straggled", seed=1))
    result = {"case": "slab: 50 GeV, 1 m Fe, straggled", "histories": n,
              "python_per_s": n / t_py}
    if exe is not None:
        nav = slab_navigator(physics, "iron", 1.0)
        states = {"charge": np.ones(n), "energy": np.full(n, 50.0),
                  "weight": np.ones(n), "position": np.zeros((n, 3)),
                  "direction": np.tile([0.0, 0.0, 1.0], (n, 1))}
        opts = TransportOptions(energy_loss="straggled", decay=False,
                                direction="forward")
        job = workdir / "slab.job"
        write_job(job, nav, opts, 1, False, states, np.arange(n))
        c = run_driver(exe, physics, job)
        result["c_per_s"] = c["per_s"]
        result["ratio_python_over_c"] = result["python_per_s"] / c["per_s"]
    return result


def _tracks_at_straw1(n, beamline, seed=11):
    """Muons on the STRAW1 annulus (12 mm downstream of its entry face)
    pointing back to the proton impact point (benchmark input)."""
    import pandas as pd

    z_m = beamline.first_tracker_z_m + 0.012
    lever_m = z_m - beamline.geometry.target_z_m
    y0 = beamline.geometry.beam["impact_point_m"][1]
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.15, 0.9, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    x, y = r * np.cos(phi), r * np.sin(phi)
    p = 10 ** rng.uniform(1, 2.3, n)
    tx = x / lever_m + rng.normal(0, 0.002, n)
    ty = (y - y0) / lever_m + rng.normal(0, 0.002, n)
    pz = p / np.sqrt(1 + tx ** 2 + ty ** 2)
    return pd.DataFrame(dict(x_m=x, y_m=y, z_m=np.full(n, z_m), px_gev=pz * tx,
                             py_gev=pz * ty, pz_gev=pz, charge=rng.choice([-1.0, 1.0], n)))


def bench_k12(beamline, exe, workdir, n):
    df = _tracks_at_straw1(n, beamline)
    df.insert(0, "track_index", np.arange(n))
    tracer = Tracer(TraceConfig(seed=1), beamline)
    t_py = best_time(lambda: tracer.trace(df), repeat=2)
    result = {"case": "k12: backward STRAW1 -> TAX, straggled, records",
              "histories": n, "python_per_s": n / t_py}
    if exe is not None:
        states = tracer.initial_states(df, 1)
        job = workdir / "k12.job"
        write_job(job, tracer.compiled.navigator, tracer.options, 1, True, states,
                  np.arange(n))
        c = run_driver(exe, beamline.physics, job, repeat=2)
        result["c_per_s"] = c["per_s"]
        result["ratio_python_over_c"] = result["python_per_s"] / c["per_s"]
    return result


def bench_locate(beamline, n):
    compiled = beamline.compiled((beamline.geometry.world["z_min_m"],
                                  beamline.geometry.world["z_max_m"]))
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.normal(0, 0.3, n), rng.normal(0, 0.3, n),
                           rng.uniform(14.0, 247.0, n)])
    t_c = best_time(lambda: compiled.navigator.locate(pts))
    m = min(n, 20_000)
    t_py = best_time(lambda: locate_reference(compiled, pts[:m]), repeat=1) * n / m
    return {"case": "geometry locate", "points": n, "c_per_s": n / t_c,
            "python_reference_per_s": n / t_py, "ratio_c_over_python": t_py / t_c}


def bench_forced(n_tracks, samples_per_track=4):
    """(b) One forced interaction per backward history, and the transport of
    its products, configured as ``backtrace run`` (defaults of RunConfig)."""
    cfg = RunConfig(samples_per_track=samples_per_track)
    pipeline = Pipeline(cfg)
    tracer, sampler, products = pipeline.tracer, pipeline.sampler, pipeline.products
    p_min = pipeline.regions.selection["track_p_min_gev"]
    df, source = resampled_tracks(n_tracks)
    df.insert(0, "track_index", np.arange(n_tracks))
    states = tracer.trace(df).states
    histories = int(states.groupby(["track_index", "sample_index"]).ngroups)

    out = {}  # best of 2: the first call also builds the cross-section tables

    def forced():
        out["inter"], prods = sampler.sample(states, seed=cfg.seed)
        p = np.linalg.norm(prods[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1)
        out["prods"] = prods[p >= p_min]

    def transport():
        prods = out["prods"]
        out["det"] = products.transport(prods, out["inter"]) if len(prods) else None

    t_forced = best_time(forced, repeat=2)
    t_products = best_time(transport, repeat=2)
    inter, prods, det = out["inter"], out["prods"], out["det"]
    total = t_forced + t_products
    return {"case": "forced: 1 interaction/history + products to STRAW/MUV3",
            "input": source, "histories": histories,
            "interactions": int(len(inter)), "products_transported": int(len(prods)),
            "product_outcomes": 0 if det is None else int(len(det)),
            "histories_per_s": histories / total,
            "forced_sampling_s": t_forced, "product_transport_s": t_products}


def resampled_tracks(n: int, seed: int = 7):
    """``n`` track rows resampled with replacement from the example sample
    (POT per row kept), or synthetic STRAW1 tracks; and the input's name."""
    import pandas as pd

    cols = ["x_m", "y_m", "z_m", "px_gev", "py_gev", "pz_gev", "charge", "weight"]
    if EXAMPLE_TRACKS.exists():
        base = pd.read_parquet(EXAMPLE_TRACKS, columns=cols)
        rows = np.random.default_rng(seed).integers(0, len(base), n)
        return base.iloc[rows].reset_index(drop=True), "examples/sample.parquet resampled"

    df = _tracks_at_straw1(n, BeamLine.shared(), seed)
    return df.assign(weight=1.0), "synthetic STRAW1 tracks"


def _write_input(path: Path, n: int) -> Path:
    df, _ = resampled_tracks(n)
    return write_tracks(path, df, pot=1e12 * n / 1419)


def _child(kind: str, tracks: str, jobs: int, workdir: str) -> None:
    """Fresh-process measurement (``python -c``): one trace or run, then a
    JSON line with the timing and the peak RSS [MB]."""
    t = Tracks.open(tracks)
    t0 = time.perf_counter()
    if kind == "trace":
        s = trace_file(t, TraceConfig(samples_per_track=1, seed=1),
                       Path(workdir) / "traced.parquet", jobs=jobs, progress=False)
        extra = {"histories": s["histories"]}
    else:
        d = run_estimate(t, RunConfig(), jobs=jobs, progress=False,
                         systematics="none").document
        extra = {"histories": t.n_rows * RunConfig().samples_per_track,
                 "interactions": d["interactions"], "candidates": d["candidates"]}
    elapsed = time.perf_counter() - t0
    kib = 1024.0  # ru_maxrss is in KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "tracks": t.n_rows, "jobs": jobs, "elapsed_s": elapsed, **extra,
        "main_cpu_s": own.ru_utime + own.ru_stime,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
        "peak_rss_worker_mb": resource.getrusage(
            resource.RUSAGE_CHILDREN).ru_maxrss / kib if jobs > 1 else None}))


def _measure(kind: str, tracks: Path, jobs: int, workdir: Path) -> dict:
    code = ("import sys; from backtrace.bench import _child; "
            "_child(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])")
    out = subprocess.run([sys.executable, "-c", code, kind, str(tracks), str(jobs),
                          str(workdir)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["tracks_per_s"] = r["tracks"] / r["elapsed_s"]
    r["histories_per_s"] = r["histories"] / r["elapsed_s"]
    if "interactions" in r:
        r["interactions_per_s"] = r["interactions"] / r["elapsed_s"]
    return r


def bench_run(n_tracks: int, workdir: Path) -> dict:
    """(c) End-to-end ``run`` (RunConfig defaults, no systematic re-runs, one process)."""
    path = _write_input(workdir / f"run_{n_tracks}.parquet", n_tracks)
    return {"case": "run: end to end, RunConfig defaults, --systematics none, 1 job",
            **_measure("run", path, 1, workdir)}


def bench_scaling(sizes, workdir: Path, jobs=(1, 2)) -> list[dict]:
    """(d) ``trace`` (1 history per track, states written) vs tracks and jobs."""
    rows = []
    for n in sizes:
        path = _write_input(workdir / f"scale_{n}.parquet", n)
        for j in jobs:
            rows.append(_measure("trace", path, j, workdir))
        path.unlink()
    return rows


#: Time budget [s] of each method of (e): quick, full.
ALLOCATION_BUDGET_S = (40.0, 240.0)


def bench_allocation(n_tracks: int, workdir: Path, budget_s: float = 240.0) -> dict:
    """(e) Figure of merit of the μ-μ yield outside SR/CR of plain forcing
    (all processes, and the trident alone) and of the variance-reduced
    defaults, each with rounds of histories within ``budget_s`` (same
    tracks and seed, one core)."""
    path = _write_input(workdir / "allocation.parquet", n_tracks)
    out = {"case": "allocation: figure of merit of mu-mu outside SR/CR",
           "tracks": n_tracks, "budget_s": budget_s}
    methods = {"plain": RunConfig(allocation="natural", track_allocation="uniform"),
               "plain-trident": RunConfig(allocation="natural", track_allocation="uniform",
                                          processes=("mumu_pair",)),
               "variance-reduced": RunConfig()}
    for mode, config in methods.items():
        t0 = time.process_time()
        doc = run_estimate(Tracks.open(path), config, systematics="none", progress=False,
                           target_rel_unc=1e-9, max_time_s=budget_s).document
        elapsed = time.process_time() - t0
        cell = doc["regions"]["outside"]["mu-mu"]
        rel = cell["mc"] / cell["value"] if cell["value"] > 0 and cell["mc"] else None
        out[mode] = {"value": cell["value"], "mc": cell["mc"], "rel_unc": rel,
                     "n_mc": cell["n_mc"], "n_eff": cell["n_eff"], "elapsed_s": elapsed,
                     "histories": doc["mc"].get("histories"),
                     "interactions": doc["interactions"],
                     "figure_of_merit": 1.0 / (rel ** 2 * elapsed) if rel else 0.0}
    vr = out["variance-reduced"]["figure_of_merit"]
    for ref in ("plain", "plain-trident"):
        f = out[ref]["figure_of_merit"]
        out[f"ratio_{ref}"] = vr / f if f > 0 else None
    out["note"] = ("ratio None: the reference has no mu-mu entry outside SR/CR "
                   "(figure of merit 0)")
    return out


PARTS = ("transport", "forced", "run", "allocation", "scaling")


def run_benchmarks(quick: bool = False, scaling_tracks=None,
                   run_tracks: int | None = None,
                   forced_tracks: int | None = None,
                   parts=PARTS, allocation_budget_s: float | None = None) -> dict:
    """The figures named in ``parts`` (default all): (a) ``transport`` on
    one core in this process, (b) ``forced`` here too, (c) ``run`` and (d)
    ``scaling`` in fresh processes, (e) ``allocation`` in this process.
    Sizes default to QUICK_SIZES / FULL_SIZES, the budget of (e) to
    ALLOCATION_BUDGET_S."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown benchmark part(s) {sorted(unknown)}; known: {PARTS}")
    n_forced, n_run, sizes = QUICK_SIZES if quick else FULL_SIZES
    n_forced = forced_tracks or n_forced
    n_run = run_tracks or n_run
    sizes = tuple(scaling_tracks or sizes)
    budget_s = allocation_budget_s or ALLOCATION_BUDGET_S[0 if quick else 1]
    report = {"cores_used": 1, "cpu_count": os.cpu_count(), "quick": quick,
              "note": None, "parts": list(parts)}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "transport" in parts:
            report["note"], report["results"] = _transport_figures(quick, workdir)
        if "forced" in parts:
            report["forced"] = bench_forced(n_forced)
        if "run" in parts:
            report["run"] = bench_run(n_run, workdir)
        if "allocation" in parts:
            report["allocation"] = bench_allocation(n_run, workdir, budget_s)
        if "scaling" in parts:
            report["scaling"] = bench_scaling(sizes, workdir)
    return report


def _transport_figures(quick: bool, workdir: Path) -> tuple[str | None, list[dict]]:
    """(a): the slab and K12 transport against the C driver, and the locator."""
    beamline = BeamLine.shared()
    n_k12, n_slab, n_loc = (500, 5000, 50_000) if quick else (2000, 20000, 200_000)
    note = None
    try:
        exe = build_driver(workdir)  # backtrace.pumas.driver
        if exe is None:
            note = "no C compiler found: Python figures only"
    except subprocess.CalledProcessError as err:
        exe, note = None, f"C driver not built ({err}): Python figures only"
    return note, [bench_slab(beamline.physics, exe, workdir, n_slab),
                  bench_k12(beamline, exe, workdir, n_k12),
                  bench_locate(beamline, n_loc)]
