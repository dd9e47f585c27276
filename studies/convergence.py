"""Convergence of the prompt estimate: relative MC uncertainty of the μ-μ
yield outside SR/CR against histories and CPU time, for each variance
reduction.

One run per method with rounds of new histories (2 → 4 → 8 → … per track,
doubling): the record of each round gives the value, its MC error and the
elapsed time. Methods:

- ``plain``: the former forcing (no strata: a point ∝ Σ σ ΔX, a process ∝
  σ) and the same number of histories for every track;
- ``strata``: the strata process × 5 m slice, uniform in round 1, Neyman
  shares after it (``--allocation auto``), histories even over tracks;
- ``strata+tracks``: as ``strata``, and rounds after the first give their
  histories in proportion to the track weights (the default of ``run``).

With 1/√N convergence rel × √(histories) stays constant; the figure of
merit 1/(rel² t) compares the methods.

Run: python studies/convergence.py [--tracks examples/sample.parquet]
         [--max-samples 16] [--max-time 600] [--methods plain strata strata+tracks]
         [--jobs 2] [--out studies/convergence]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from backtrace.pipeline import RunConfig, run_estimate
from backtrace.tracks import Tracks


METHODS = {"plain": dict(allocation="natural", track_allocation="uniform"),
           "strata": dict(allocation="auto", track_allocation="uniform"),
           "strata+tracks": dict(allocation="auto", track_allocation="weight")}


def measure(tracks: str, method: str, max_samples: int, max_time: float,
            jobs: int) -> list[dict]:
    doc = run_estimate(Tracks.open(tracks), RunConfig(samples_per_track=2, **METHODS[method]),
                       jobs=jobs, systematics="none", target_rel_unc=1e-9,
                       max_samples_per_track=max_samples, max_time_s=max_time,
                       progress=False, log=print).document
    rows = []
    for r in doc["mc"]["rounds"]:
        rel = r["rel_unc"]
        rows.append({"method": method, "samples_per_track": r["samples_per_track"],
                     "histories": r["histories"],
                     "value": r["target_value"], "mc": r["target_mc"], "rel_unc": rel,
                     "elapsed_s": r["elapsed_s"],
                     "rel_sqrt_n": rel * math.sqrt(r["histories_per_track_mean"])
                     if rel else None,
                     "figure_of_merit": 1 / (rel ** 2 * r["elapsed_s"]) if rel else 0.0})
    return rows


def table(rows: list[dict], tracks: str) -> str:
    lines = ["# Convergence of μ-μ outside SR/CR", "",
             f"`python studies/convergence.py` on `{tracks}` (1.4e17 POT, K = 4, "
             "`--systematics none`, rounds doubling the histories; the time is "
             "cumulative wall time on this machine; N = mean histories per track).", "",
             "| method | histories (most per track) | μ-μ outside | MC error | rel. | "
             "rel·√N | time [s] | 1/(rel² t) [1/s] |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rel = "—" if r["rel_unc"] is None else f"{100 * r['rel_unc']:.1f} %"
        rsn = "—" if r["rel_sqrt_n"] is None else f"{r['rel_sqrt_n']:.2f}"
        mc = "—" if r["mc"] is None else f"{r['mc']:.3g}"
        lines.append(f"| {r['method']} | {r['histories']} ({r['samples_per_track']}) | "
                     f"{r['value']:.3g} | "
                     f"{mc} | {rel} | {rsn} | {r['elapsed_s']:.0f} | "
                     f"{r['figure_of_merit']:.3g} |")
    last = {}
    for r in rows:
        last[r["method"]] = r
    if "plain" in last and len(last) > 1:
        lines += [""]
        for name, r in last.items():
            if name != "plain" and last["plain"]["figure_of_merit"] > 0:
                ratio = r["figure_of_merit"] / last["plain"]["figure_of_merit"]
                lines.append(f"Figure of merit at the last round, {name} / plain: "
                             f"×{ratio:.3g}.")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", default="examples/sample.parquet")
    parser.add_argument("--max-samples", type=int, default=16)
    parser.add_argument("--max-time", type=float, default=600.0,
                        help="time cap [s] of each method's rounds")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="studies/convergence")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for method in args.methods:
        rows += measure(args.tracks, method, args.max_samples, args.max_time, args.jobs)
    (out / "convergence.json").write_text(json.dumps(rows, indent=1))
    text = table(rows, args.tracks)
    (out / "convergence.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
