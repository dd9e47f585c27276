"""Streaming check: peak RSS of ``trace`` and ``run`` against the number of
input tracks, each measured in a fresh process (backtrace.bench._measure).

    python benchmarks/bench_memory.py [--trace 10000,100000,1000000]
        [--run 2000,10000] [--jobs 1,2]

Prints one JSON line per measurement as it finishes (long: 10^6 tracks
take about 10 minutes on 2 cores).
"""

import argparse
import json
import tempfile
from pathlib import Path

from backtrace.bench import _measure, _write_input


def _ints(text):
    return [int(float(x)) for x in text.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", type=_ints, default=[10_000, 100_000])
    ap.add_argument("--run", type=_ints, default=[])
    ap.add_argument("--jobs", type=_ints, default=[1, 2])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind, sizes in (("trace", args.trace), ("run", args.run)):
            for n in sizes:
                path = _write_input(work / f"{kind}_{n}.parquet", n)
                for jobs in args.jobs:
                    r = _measure(kind, path, jobs, work)
                    print(json.dumps({"kind": kind, **r}), flush=True)
                path.unlink()


if __name__ == "__main__":
    main()
