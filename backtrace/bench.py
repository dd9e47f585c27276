"""Benchmarks: backtrace's Python API vs a C driver on the same navigator.

Two cases, both single core, measured in the same run:

- ``slab``: 50 GeV muons through 1 m of iron, straggled (issue 3);
- ``k12``: backward transport of single-muon tracks from STRAW1 to the TAX
  through the full K12 geometry, straggled, scattering, fields, states
  recorded (issue 5).

The C driver (benchmarks/c_driver.c, built here with the system compiler)
loads the same PUMAS library and physics dump and runs the same C batch loop
on the same histories; the Python side goes through the public API
(``slab_transport`` / ``Tracer.trace``: validation, array packing, records
to a DataFrame). Reported: histories/s of each and the ratio Python / C.

Run: ``backtrace bench [--quick] [--json]`` (or python benchmarks/bench_transport.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

PUMAS_DIR = Path(__file__).resolve().parent / "pumas"
DRIVER_SOURCE = Path(__file__).resolve().parent / "data" / "c_driver.c"


def build_driver(workdir: Path) -> Path | None:
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        return None
    exe = workdir / "c_driver"
    subprocess.run([cc, "-O3", "-std=c99", "-D_GNU_SOURCE", f"-I{PUMAS_DIR}",
                    str(DRIVER_SOURCE), str(PUMAS_DIR / "_shim.c"),
                    "-o", str(exe), "-ldl", "-lm"], check=True)
    return exe


def write_job(path: Path, navigator, options, states, track):
    from backtrace.pumas import load

    ffi, _ = load()
    n = len(track)
    g = navigator.ptr
    with open(path, "wb") as f:
        f.write(ffi.buffer(g))
        f.write(ffi.buffer(options))
        f.write(np.int64(n).tobytes())
        f.write(np.int32(navigator.n_regions).tobytes())
        f.write(ffi.buffer(g.slabs, ffi.sizeof("struct bt_slab") * g.n_slabs))
        f.write(ffi.buffer(g.regions, ffi.sizeof("struct bt_region") * navigator.n_regions))
        f.write(np.ascontiguousarray(track, np.int64).tobytes())
        for key in ("charge", "energy", "weight", "position", "direction"):
            f.write(np.ascontiguousarray(states[key], float).tobytes())


def c_options(opts, seed, record):
    from backtrace.pumas import load
    from backtrace.pumas.context import fill_options

    ffi, _ = load()
    return fill_options(ffi.new("struct bt_options *"), opts, seed=seed, record=record)


def run_c(exe, physics, job, repeat=3):
    from backtrace.pumas._lib import library_path

    with open(physics.cache_path, "rb") as f:
        header = f.readline()
    out = subprocess.run([str(exe), str(library_path()), str(physics.cache_path),
                          str(len(header)), str(job), str(repeat)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def best_time(func, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_slab(physics, exe, workdir, n):
    from backtrace.pumas import TransportOptions
    from backtrace.slab import slab_navigator, slab_transport

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
        write_job(job, nav, c_options(opts, 1, False), states, np.arange(n))
        c = run_c(exe, physics, job)
        result["c_per_s"] = c["per_s"]
        result["ratio_python_over_c"] = result["python_per_s"] / c["per_s"]
    return result


def _tracks_at_straw1(n, seed=11):
    """Muons on the STRAW1 annulus pointing back to the dump (benchmark
    input)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    r = rng.uniform(0.15, 0.9, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    x, y = r * np.cos(phi), r * np.sin(phi)
    p = 10 ** rng.uniform(1, 2.3, n)
    tx = x / 160.45 + rng.normal(0, 0.002, n)
    ty = (y + 0.022) / 160.45 + rng.normal(0, 0.002, n)
    pz = p / np.sqrt(1 + tx ** 2 + ty ** 2)
    return pd.DataFrame(dict(x_m=x, y_m=y, z_m=np.full(n, 183.52), px_gev=pz * tx,
                             py_gev=pz * ty, pz_gev=pz, charge=rng.choice([-1.0, 1.0], n)))


def bench_k12(physics, exe, workdir, n):
    from backtrace.transport import TraceConfig, Tracer

    df = _tracks_at_straw1(n)
    df.insert(0, "track_index", np.arange(n))
    tracer = Tracer(TraceConfig(seed=1), physics=physics)
    t_py = best_time(lambda: tracer.trace(df), repeat=2)
    result = {"case": "k12: backward STRAW1 -> TAX, straggled, records",
              "histories": n, "python_per_s": n / t_py}
    if exe is not None:
        states = tracer.initial_states(df, 1)
        job = workdir / "k12.job"
        write_job(job, tracer.compiled.navigator,
                  c_options(tracer.options, 1, True), states, np.arange(n))
        c = run_c(exe, physics, job, repeat=2)
        result["c_per_s"] = c["per_s"]
        result["ratio_python_over_c"] = result["python_per_s"] / c["per_s"]
    return result


def bench_locate(physics, n):
    from .geometry import load_geometry, locate_reference

    compiled = load_geometry().compile(physics)
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.normal(0, 0.3, n), rng.normal(0, 0.3, n),
                           rng.uniform(14.0, 247.0, n)])
    t_c = best_time(lambda: compiled.navigator.locate(pts))
    m = min(n, 20_000)
    t_py = best_time(lambda: locate_reference(compiled, pts[:m]), repeat=1) * n / m
    return {"case": "geometry locate", "points": n, "c_per_s": n / t_c,
            "python_reference_per_s": n / t_py, "ratio_c_over_python": t_py / t_c}


def run_benchmarks(quick: bool = False) -> dict:
    """All figures, measured in this process on one core."""
    from .pumas import Physics

    physics = Physics()
    n_k12, n_slab, n_loc = (500, 5000, 50_000) if quick else (2000, 20000, 200_000)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        note = None
        try:
            exe = build_driver(workdir)
            if exe is None:
                note = "no C compiler found: Python figures only"
        except subprocess.CalledProcessError as err:
            exe, note = None, f"C driver not built ({err}): Python figures only"
        results = [bench_slab(physics, exe, workdir, n_slab),
                   bench_k12(physics, exe, workdir, n_k12),
                   bench_locate(physics, n_loc)]
    return {"cores_used": 1, "cpu_count": os.cpu_count(), "quick": quick,
            "note": note, "results": results}
