"""Convergence of the prompt estimate: relative MC uncertainty of the μ-μ
yield outside SR/CR against histories and CPU time, for each variance
reduction.

One run per method with rounds of new histories (the histories per track
at most double per round): the record of each round gives the value, its MC
error, the elapsed wall time and the CPU time. Methods:

- ``plain``: the former forcing (``--allocation natural``: no strata, a
  point ∝ Σ σ ΔX, a process ∝ σ, no veto-aware points, no transfer bias)
  of all processes, every track the same histories;
- ``plain-trident``: the same forcing of the trident alone (the process
  that makes the μ-μ yield: a stronger reference than ``plain``, which
  almost never forces it);
- ``auto``: the defaults of ``run`` (pilot round, then the importance
  allocation, veto-aware points, transfer bias, histories in proportion to
  each track's importance).

With 1/√N convergence rel × √t stays constant; the figure of merit
1/(rel² t) compares the methods (t: CPU time; with ``--jobs 1`` the wall
time is the CPU time of the one process that does all the work).

Run: python studies/convergence.py [--tracks examples/sample.parquet]
         [--max-samples 4096] [--max-time 300] [--methods plain plain-trident auto]
         [--jobs 1] [--out studies/convergence] [--from-json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import backtrace

METHODS = {"plain": dict(allocation="natural", track_allocation="uniform"),
           "plain-trident": dict(allocation="natural", track_allocation="uniform",
                                 processes=("mumu_pair",)),
           "auto": dict()}


def measure(tracks: str, method: str, max_samples: int, max_time: float,
            jobs: int) -> list[dict]:
    cpu = []
    t0 = time.process_time()

    def log(line):
        cpu.append(time.process_time() - t0)
        print(method, line)
    doc = backtrace.estimate(tracks, jobs=jobs, systematics="none", combinatorial=False,
                             target_rel_unc=1e-9, max_samples_per_track=max_samples,
                             max_time_s=max_time, progress=False, log=log,
                             **METHODS[method]).document
    rows = []
    for r, t_cpu in zip(doc["mc"]["rounds"], cpu):
        rel = r["rel_unc"]
        t = t_cpu if jobs == 1 else r["elapsed_s"]
        rows.append({"method": method, "samples_per_track": r["samples_per_track"],
                     "histories": r["histories"], "interactions": r.get("interactions"),
                     "value": r["target_value"], "mc": r["target_mc"], "rel_unc": rel,
                     "elapsed_s": r["elapsed_s"], "cpu_s": t_cpu if jobs == 1 else None,
                     "rel_sqrt_t": rel * math.sqrt(t) if rel else None,
                     "figure_of_merit": 1 / (rel ** 2 * t) if rel else 0.0})
    return rows


def table(rows: list[dict], tracks: str) -> str:
    lines = ["# Convergence of μ-μ outside SR/CR", "",
             f"`python studies/convergence.py` on `{tracks}` (1.4e17 POT, "
             f"K = {backtrace.Options().interactions_per_history} forced draws per history "
             "on average, "
             "`--systematics none`, rounds of new histories; times cumulative on this "
             "machine: wall, and CPU when one process did the work; t in rel·√t and "
             "the figure of merit 1/(rel² t) is the CPU time, else the wall time).", "",
             "| method | histories (most per track) | forced draws | μ-μ outside | MC error "
             "| rel. | rel·√t | wall [s] | CPU [s] | 1/(rel² t) [1/s] |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rel = "—" if r["rel_unc"] is None else f"{100 * r['rel_unc']:.1f} %"
        rst = "—" if r["rel_sqrt_t"] is None else f"{r['rel_sqrt_t']:.2f}"
        mc = "—" if r["mc"] is None else f"{r['mc']:.3g}"
        cpu = "—" if r.get("cpu_s") is None else f"{r['cpu_s']:.0f}"
        lines.append(f"| {r['method']} | {r['histories']} ({r['samples_per_track']}) | "
                     f"{r.get('interactions') or '—'} | {r['value']:.3g} | "
                     f"{mc} | {rel} | {rst} | {r['elapsed_s']:.0f} | {cpu} | "
                     f"{r['figure_of_merit']:.3g} |")
    lines += [""] + _ratios(rows)
    return "\n".join(lines) + "\n"


def _ratios(rows: list[dict]) -> list[str]:
    """The figure-of-merit ratios of each variance-reduced method to each
    plain one, at the last round and at each method's best round, and how
    far the plain value lies below the variance-reduced one (a plain run
    that has not sampled the rare process underestimates its own error)."""
    by_method: dict[str, list[dict]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)
    lines = []
    for ref in ("plain", "plain-trident"):
        if ref not in by_method:
            continue
        for name, rs in by_method.items():
            if name.startswith("plain"):
                continue
            last, last_ref = rs[-1]["figure_of_merit"], by_method[ref][-1]["figure_of_merit"]
            best = max(r["figure_of_merit"] for r in rs)
            best_ref = max(r["figure_of_merit"] for r in by_method[ref])
            if last_ref <= 0:
                lines.append(f"{ref} has no μ-μ entry outside SR/CR: its figure of merit is 0.")
                continue
            value_ratio = by_method[ref][-1]["value"] / rs[-1]["value"]
            lines.append(f"Figure of merit {name} / {ref}: ×{last / last_ref:.3g} at the last "
                         f"round, ×{best / best_ref:.3g} best round against best round; "
                         f"{ref}'s value is {value_ratio:.2g} × {name}'s"
                         + (" (it has not sampled what makes the yield: its MC error "
                            "understates its error, and the ratio is a lower bound)."
                            if value_ratio < 0.1 else "."))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", default="examples/sample.parquet")
    parser.add_argument("--max-samples", type=int, default=4096)
    parser.add_argument("--max-time", type=float, default=300.0,
                        help="time cap [s] of each method's rounds")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default="studies/convergence")
    parser.add_argument("--from-json", action="store_true",
                        help="re-render the table from OUT/convergence.json, no runs")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        rows = json.loads((out / "convergence.json").read_text())
    else:
        rows = []
        for method in args.methods:
            rows += measure(args.tracks, method, args.max_samples, args.max_time, args.jobs)
        (out / "convergence.json").write_text(json.dumps(rows, indent=1))
    text = table(rows, args.tracks)
    (out / "convergence.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
