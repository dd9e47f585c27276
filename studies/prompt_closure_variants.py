"""Forced-interaction closure in variants of the set-up, to tell which
ingredient the summed weight's closure depends on (docs/method.md, Study).

Each variant: forward prompt simulation of ``--events`` source events (one
path per muon), forcing from 100 m, k = 8, then ``run`` (8 histories per
track, prior 'energy') on its visible single-track sample, and the
forced-interaction closure (:func:`backtrace.forward.closure.interaction_closure`)
with the per-event mean ratio:

- ``loose``: loose test selection without vetoes, natural allocation, no
  transfer bias;
- ``veto``: the NA62 selection with its vetoes, natural allocation, no
  transfer bias;
- ``tb``: as ``veto`` with the transfer bias.

Writes ``--out/variants.json`` (one entry per variant, with its command).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from backtrace.forward.closure import run_closure
from backtrace.forward.simulation import PromptSimConfig
from backtrace.io import write_json_atomic
from backtrace.prompt.config import RunConfig

LOOSE = str(Path(__file__).resolve().parents[1] / "tests" / "data" / "regions_loose.toml")
VARIANTS = {
    "loose": {"regions_file": LOOSE, "allocation": "natural", "transfer_bias": False},
    "veto": {"allocation": "natural", "transfer_bias": False},
    "tb": {"allocation": "natural", "transfer_bias": True},
}
KEYS = ("forward", "backward", "ratio", "ratio_error", "ratio_interval_68", "mean_event_ratio",
        "mean_event_ratio_error", "mean_event_ratio_events", "events")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", choices=list(VARIANTS))
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default="studies/prompt_closure")
    args = parser.parse_args()
    out = Path(args.out)
    path = out / "variants.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    for name in args.variants:
        config = PromptSimConfig(
            run=RunConfig(seed=args.seed, forced_z_min_m=100.0, samples_per_track=8,
                          interactions_per_history=8, **VARIANTS[name]),
            n_events=args.events, paths_per_muon=1)
        t0 = time.perf_counter()
        r = run_closure(config, out / "variants" / name, priors=("energy",), jobs=args.jobs,
                        batch_size=500)
        c = r["interactions"]["energy"]
        report[name] = {"command": " ".join(sys.argv), "source_events": args.events,
                        "time_s": time.perf_counter() - t0, **{k: c[k] for k in KEYS}}
        write_json_atomic(path, report)
        print(name, report[name], flush=True)


if __name__ == "__main__":
    main()
