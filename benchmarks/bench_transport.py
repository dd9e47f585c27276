"""Thin wrapper: the benchmarks live in backtrace/bench.py (``backtrace bench``).

    python benchmarks/bench_transport.py [--quick] [--scale N ...] [--run-tracks N]

prints the JSON report (same options as ``backtrace bench``).
"""

import sys

from backtrace.cli import main

if __name__ == "__main__":
    main(["bench", "--json", *sys.argv[1:]])
