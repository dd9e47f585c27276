"""Thin wrapper: the benchmarks live in backtrace/bench.py (``backtrace bench``)."""

import json
import sys

from backtrace.bench import run_benchmarks

if __name__ == "__main__":
    print(json.dumps(run_benchmarks(quick="--quick" in sys.argv), indent=2))
