"""End-to-end closure study: dump → STRAW1 (forward) → TAX exit (backward).

Simulates a detector-level sample with the forward source model, builds the
source density at the TAX exit from independent events, back-traces every
detected muon, and plots the weighted posterior against the truth for the
energy, slopes and position at the TAX exit. Writes closure.png and
closure.json next to --out.

Run: python studies/closure.py --events 40000 --density-events 200000 \
         --samples 16 --out studies/closure
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from backtrace.forward.source_closure import backtrace_sample, compare
from backtrace.pumas import Physics
from backtrace.source.density import build_source_density
from backtrace.source.forward import SimulationConfig, Simulator
from backtrace.source.simulate import simulate_tracks

PLOTS = [("e_gev", np.geomspace(3, 400, 13), "kinetic energy at TAX exit [GeV]", True),
         ("tx", np.linspace(-0.012, 0.012, 13), "slope x at TAX exit", False),
         ("ty", np.linspace(-0.012, 0.012, 13), "slope y at TAX exit", False),
         ("x_m", np.linspace(-0.08, 0.08, 11), "x at TAX exit [m]", False),
         ("y_m", np.linspace(-0.1, 0.06, 11), "y at TAX exit [m]", False)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40000)
    parser.add_argument("--density-events", type=int, default=200000)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--acceptance", default="plane", choices=["plane", "straw1"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="studies/closure")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    physics = Physics()
    cfg = SimulationConfig(n_events=args.events, seed=5, acceptance=args.acceptance)
    summary = simulate_tracks(cfg, out / "sample.parquet", jobs=args.jobs)
    sample = pd.read_parquet(out / "sample.parquet")
    density = build_source_density(Simulator(cfg), args.density_events)
    density.save(out / "source_density.json")
    hist = backtrace_sample(sample, density, n_samples=args.samples, physics=physics)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PLOTS), figsize=(4 * len(PLOTS), 4))
    report = {"tracks": len(sample), "simulation": summary, "quantities": {}}
    for ax, (q, bins, label, logx) in zip(axes, PLOTS):
        c = compare(sample, hist, q, bins)
        mid = 0.5 * (bins[1:] + bins[:-1])
        ax.errorbar(mid, c["truth"], c["truth_err"], fmt="o", label="truth (forward)")
        ax.errorbar(mid, c["posterior"], c["posterior_err"], fmt="s", mfc="none",
                    label="back-traced posterior")
        ax.set_xlabel(label)
        if logx:
            ax.set_xscale("log")
        err = np.hypot(c["truth_err"], c["posterior_err"])
        pulls = np.where(err > 0, (c["truth"] - c["posterior"]) / err, 0.0)
        report["quantities"][q] = {k: np.asarray(v).tolist() for k, v in c.items()}
        report["quantities"][q]["pulls"] = pulls.tolist()
    axes[0].set_ylabel("muons in the sample (weighted)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"End-to-end closure: {len(sample)} tracks, {args.samples} "
                 "backward histories each")
    fig.tight_layout()
    fig.savefig(out / "closure.png", dpi=120)
    (out / "closure.json").write_text(json.dumps(report, indent=1, default=float))
    for q, r in report["quantities"].items():
        print(f"{q:6s} max |pull| = {np.max(np.abs(r['pulls'])):.2f}")


if __name__ == "__main__":
    main()
