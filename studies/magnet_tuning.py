"""The 2018 → 2021 story with the model: the extra sweeping magnet on vs off.

Runs ``backtrace scan`` over ``sweeper.scale`` ∈ {0, 1} (the 2021 upstream
sweeping magnet off / at its estimated nominal field; every other magnet
unchanged) with the dump source model, common random numbers for both
settings, and writes ``studies/magnet_tuning/summary.md``: the single-muon
rate at STRAW1 with and without the magnet, their ratio with its
uncertainty, the prompt background of both settings, and the comparison
with the published O(200) gain in two-track background rejection (NA62
facts sheet, [seed]).

    python studies/magnet_tuning.py [--events 40000] [--jobs 2]

The ratio's uncertainty treats the two settings as independent (the
paired-difference uncertainty of the scan is given beside it): the muons
reaching STRAW1 with and without the magnet are largely different ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=40000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "magnet_tuning")
    args = ap.parse_args(argv)
    cmd = [sys.executable, "-m", "backtrace", "scan", "--set-grid", "sweeper.scale=0,1",
           "--events", str(args.events), "--seed", str(args.seed), "--jobs",
           str(args.jobs), "--out", str(args.out), "--quiet"]
    subprocess.run(cmd, check=True)
    doc = json.loads((args.out / "scan.json").read_text())
    off, on = doc["points"]
    ratio = off["rate_per_pot"] / on["rate_per_pot"]
    rel = np.hypot(off["rate_rel_err"], on["rate_rel_err"])
    (diff,) = doc["rate_differences"]
    lines = [
        "# Extra sweeping magnet: on vs off (model)", "",
        f"Command: `{' '.join(['backtrace'] + cmd[3:])}`", "",
        "| sweeper.scale | muons/POT at STRAW1 | prompt total (1.4e17 POT) | candidates |",
        "|---|---|---|---|"]
    for p in (off, on):
        lines.append(f"| {p['setting']['sweeper.scale']:g} | {p['rate_per_pot']:.3e} ± "
                     f"{100 * p['rate_rel_err']:.0f} % | {p['prompt_total']:.3g} ± "
                     f"{p['prompt_total:stat']:.2g} | {p['candidates']} |")
    lines += [
        "", f"**Single-muon rate reduction by the magnet: × {ratio:.1f} ± "
        f"{100 * rel:.0f} %** (difference {diff['difference']:.3e} ± "
        f"{diff['paired_err']:.2e} per POT, paired).", "",
        "Published (facts sheet, [seed]): the 2021 configuration improved the "
        "two-track background rejection by O(200) relative to 2018. The model's "
        "single-muon rate reduction is one factor of that: the two-track background "
        "scales with the muon flux times the probability that an interaction "
        "product and the scattered muon form a selected vertex, which the magnet "
        "also changes (it sweeps the muons that would cross the final collimator "
        "and end cap near the beam). The prompt estimate per setting has too few "
        "selected candidates at this statistics to give the two-track ratio "
        "(see the table); the honest statement is: rate × "
        f"{ratio:.1f}, two-track ratio not measured."]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
