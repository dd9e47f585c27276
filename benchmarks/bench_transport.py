"""Transport speed: backtrace's Python API vs a C driver, same navigator.

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

Run: python benchmarks/bench_transport.py [--n 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PUMAS_DIR = HERE.parent / "backtrace" / "pumas"


def build_driver(workdir: Path) -> Path | None:
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        return None
    exe = workdir / "c_driver"
    subprocess.run([cc, "-O3", "-std=c99", "-D_GNU_SOURCE", f"-I{PUMAS_DIR}",
                    str(HERE / "c_driver.c"), str(PUMAS_DIR / "_shim.c"),
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
    from backtrace.pumas.physics import MODES

    ffi, _ = load()
    o = ffi.new("struct bt_options *")
    o.energy_loss = MODES[opts.energy_loss]
    o.scattering = MODES["mixed"] if opts.scattering else -1
    o.decay = 0 if opts.decay else -1
    o.direction = 0 if opts.direction == "forward" else 1
    o.accuracy = opts.accuracy
    o.energy_limit = opts.energy_limit_gev or 0.0
    o.record = 1 if record else 0
    o.seed = seed
    return o


def run_c(exe, physics, job, repeat=3):
    from backtrace.pumas._lib import library_path

    header = open(physics.cache_path, "rb").readline()
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


def bench_k12(physics, exe, workdir, n):
    sys.path.insert(0, str(HERE.parent))
    from tests.conftest import synthetic_tracks
    from backtrace.transport import TraceConfig, Tracer

    df = synthetic_tracks(n, seed=11)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--n-slab", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from backtrace.pumas import Physics

    physics = Physics()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            exe = build_driver(workdir)
        except subprocess.CalledProcessError as err:
            print(f"C driver not built ({err}); Python figures only", file=sys.stderr)
            exe = None
        if exe is None:
            print("no C compiler found: Python figures only", file=sys.stderr)
        results = [bench_slab(physics, exe, workdir, args.n_slab),
                   bench_k12(physics, exe, workdir, args.n)]
    report = {"cores_used": 1, "cpu_count": os.cpu_count(), "results": results}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in results:
            line = f"{r['case']:50s} python {r['python_per_s']:10.0f}/s"
            if "c_per_s" in r:
                line += f"   C {r['c_per_s']:10.0f}/s   ratio {r['ratio_python_over_c']:.3f}"
            print(line)
    return report


if __name__ == "__main__":
    main()
