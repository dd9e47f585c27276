"""Locate / distance calls per second: C navigator vs the Python reference.

Run: python benchmarks/bench_geometry.py [--n 200000] [--json]
Single process; both measured in the same run on the same points.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from backtrace.beamline.compile import compile_geometry, locate_reference
from backtrace.beamline.geometry import load_geometry
from backtrace.pumas import Physics


def best_of(func, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    compiled = compile_geometry(load_geometry(), Physics())
    rng = np.random.default_rng(1)
    n = args.n
    pts = np.column_stack([rng.normal(0, 0.3, n), rng.normal(0, 0.3, n),
                           rng.uniform(14.0, 247.0, n)])
    u = np.tile([0.0, 0.0, 1.0], (n, 1))
    nav = compiled.navigator
    t_c = best_of(lambda: nav.locate(pts))
    t_d = best_of(lambda: nav.distance(pts, u))
    m = min(n, 20_000)
    t_py = best_of(lambda: locate_reference(compiled, pts[:m]), repeat=1) * n / m
    result = {
        "points": n,
        "c_locate_per_s": n / t_c,
        "c_distance_per_s": n / t_d,
        "python_locate_per_s": n / t_py,
        "ratio_c_over_python": t_py / t_c,
        "machine": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:24s} {v:.4g}" if isinstance(v, float) else f"{k:24s} {v}")


if __name__ == "__main__":
    main()
