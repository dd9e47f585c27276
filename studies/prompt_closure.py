"""Closure of the two-track prompt yield: forward prompt simulation against
``backtrace run`` on the single-track sample of the same source events.

(a) ``simulate_prompt`` on --events source events (--paths-per-muon forward
paths from each muon's TAX-exit state); (b) ``run_estimate`` on the visible
paths at STRAW1, once per source prior (--priors). Compares, per region and
category and for the forced interactions' summed weight, forward/backward
on the visible paths (paired per event, ``backtrace/prompt_closure.py``),
the missed fraction, and the wall time of each method. Writes closure.md,
closure.json and closure.png into --out.

Run: python studies/prompt_closure.py --events 40000 --paths-per-muon 2 \
         --controlled-events 4000 --samples-per-track 8 --jobs 2 --out studies/prompt_closure
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from backtrace.config import RunConfig
from backtrace.forward_prompt import PromptSimConfig
from backtrace.io import write_json_atomic, write_text_atomic
from backtrace.prompt_closure import run_closure


def fmt(v, e=None):
    if v is None:
        return "–"
    return f"{v:.3g}" if e is None else f"{v:.3g} ± {e:.2g}"


def markdown(reports: dict, notes: str = "") -> str:
    lines = ["# Prompt-yield closure: forward simulation vs backward estimate", "",
             "Written by `studies/prompt_closure.py` (the command of each set-up in closure.json). Two set-ups: "
             "'physical' is `backtrace run`'s default estimate (NA62 mu-mu selection with "
             "its LAV vetoes, forcing from 100 m, auto allocation, transfer bias); "
             "'controlled' is the CI closure's set-up at a larger size (loose test "
             "selection without vetoes, forcing window 175 m - STRAW1, natural "
             "allocation, no transfer bias: see tests/test_prompt_closure.py).", ""]
    if notes:
        lines += [notes, ""]
    for name, report in reports.items():
        lines += [f"# Set-up '{name}'", ""] + setup_markdown(report)
    return "\n".join(lines)


def setup_markdown(report: dict) -> list:
    t = report["times"]
    lines = [
        f"Source events: {report['events']}, forward paths per muon: "
        f"{report['paths_per_muon']}, visible paths (tracks of the backward run): "
        f"{report['tracks']}; backward histories per track: {report['samples_per_track']}, "
        f"forced draws per history/path: {report['k']}; seed {report['seed']} (backward "
        f"seed + 100). Target POT {report['pot']:.3g}.",
        "",
        f"Visible: {report['visible_definition']}.",
        "",
    ] + mc_lines(report) + [
        "Ratios are forward/backward on the visible paths, errors from the paired "
        "per-event differences (`backtrace/prompt_closure.py`); an empty cell in both "
        "methods has no ratio.",
        "",
        "## Wall time (same machine, same jobs; the machine is shared)",
        "",
        "| method | time [s] | forward / this |",
        "|---|---|---|",
        f"| forward (simulate-prompt) | {t['forward_s']:.0f} | 1 |",
    ]
    for prior, s in t["backward_s"].items():
        lines.append(f"| backward (run, prior {prior}) | {s:.0f} | {t['forward_s'] / s:.2f} |")
    lines += ["", "## Forced interactions' summed weight (visible paths)", "",
              "| prior | forward | backward | forward/backward | missed fraction (all paths) |",
              "|---|---|---|---|---|"]
    for prior, c in report["interactions"].items():
        lines.append(f"| {prior} | {fmt(c['forward'], c['forward_error'])} | "
                     f"{fmt(c['backward'], c['backward_error'])} | "
                     f"{fmt(c['ratio'], c['ratio_error'])} | {fmt(c['missed_fraction'])} |")
    for prior, table in report["tables"].items():
        lines += ["", f"## Two-track yields per cell, backward prior '{prior}'", "",
                  "| region | category | forward (visible) | backward | forward/backward | "
                  "missed fraction |", "|---|---|---|---|---|---|"]
        for region, row in table["cells"].items():
            for cat, c in row.items():
                if c["forward"] == 0 and c["backward"] == 0 and c["missed"] == 0:
                    continue
                lines.append(
                    f"| {region} | {cat} | {fmt(c['forward'], c['forward_error'])} | "
                    f"{fmt(c['backward'], c['backward_error'])} | "
                    f"{fmt(c['ratio'], c['ratio_error'])} | "
                    f"{fmt(c['fraction'], c['fraction_error'])} |")
    lines += ["", "## Missed fraction per category (forward, all regions)", "",
              "Entries: forward candidates; n_eff: effective number of events "
              "(Σw)²/Σw² of the per-event sums. 'bound' is the 90 % CL bound "
              "2.3 / (2.3 + n_eff visible) on the missed fraction when no missed "
              "entry carries weight, valid if a missed entry would weigh like a "
              "visible one.", "",
              "| category | missed yield | fraction | entries visible / missed | "
              "n_eff visible / missed | bound (90 % CL) |", "|---|---|---|---|---|---|"]
    first = next(iter(report["tables"].values()))
    for cat, m in first["missed_by_category"].items():
        bound = 2.303 / (2.303 + m["n_eff_visible"]) if m["n_eff_visible"] > 0 else None
        lines.append(f"| {cat} | {fmt(m['missed'])} | "
                     f"{fmt(m['fraction'], m['fraction_error'])} | "
                     f"{m['entries_visible']} / {m['entries_missed']} | "
                     f"{m['n_eff_visible']:.2f} / {m['n_eff_missed']:.2f} | {fmt(bound)} |")
    lines += ["", "## Precision of mu-mu outside SR/CR", "",
              "| method | value | relative error |", "|---|---|---|"]
    for name, (v, e) in report["precision"].items():
        lines.append(f"| {name} | {fmt(v)} | {fmt(e / v if v else None)} |")
    lines += [""]
    return lines


def mc_lines(report: dict) -> list:
    """How each method drew its Monte Carlo (reports made before the
    forward importance pass have no such record)."""
    if "forward_mc" not in report:
        return []
    passes = ", then ".join(
        f"{r['label'].split(', ')[-1]} ({r['allocation']['mode']}, "
        f"{r['interactions']} draws)" for r in report["forward_mc"]["rounds"])
    lines = [f"Forward draws: {passes}; the estimate is the last pass."]
    for prior, b in report.get("backward_mc", {}).items():
        rel = b.get("rel_unc")
        lines.append(f"Backward (prior {prior}): up to {b['samples_per_track']} histories "
                     f"per track, MC rel. error of mu-mu outside {fmt(rel)}, stopped by "
                     f"{b.get('stopped_by') or 'no target'}.")
    return [" ".join(lines), ""]


def plot(reports: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [(name, prior, r) for name, r in reports.items() for prior in r["tables"]]
    # one x position per quantity, the same in every series
    cells = ["interactions"] + list(dict.fromkeys(
        f"{region}\n{cat}" for _, prior, r in series
        for region, row in r["tables"][prior]["cells"].items() for cat, c in row.items()
        if c["ratio"] is not None and c["forward"] + c["backward"] > 0))
    for j, (name, prior, report) in enumerate(series):
        points = {"interactions": report["interactions"][prior]}
        points.update({f"{region}\n{cat}": c for region, row in
                       report["tables"][prior]["cells"].items() for cat, c in row.items()})
        xs, ys, es = [], [], []
        for i, cell in enumerate(cells):
            c = points.get(cell)
            if c is not None and c["ratio"] is not None and c["ratio"] > 0:
                xs.append(i)
                ys.append(c["ratio"])
                es.append(c["ratio_error"])
        ax.errorbar(np.array(xs) + 0.1 * (j - (len(series) - 1) / 2), ys, es,
                    fmt="osD^"[j % 4], label=f"{name}, backward prior '{prior}'")
    labels = cells
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1e3)
    ax.set_ylabel("forward / backward (visible paths)")
    ax.legend(fontsize=7)
    ax.set_title("closure per quantity", fontsize=9)
    for j, (name, report) in enumerate(reports.items()):
        cats = list(next(iter(report["tables"].values()))["missed_by_category"].items())
        names = [c for c, _ in cats] + ["interactions"]
        ic = next(iter(report["interactions"].values()))
        vals = [(i, m["fraction"], m["fraction_error"]) for i, (c, m) in enumerate(cats)
                if m["fraction"] is not None]
        if ic["missed_fraction"] is not None:
            vals.append((len(cats), ic["missed_fraction"], 0.0))
        if vals:
            bx.errorbar([i + 0.1 * j for i, _, _ in vals], [f for _, f, _ in vals],
                        [e for _, _, e in vals], fmt="os"[j % 2], label=name)
        bx.set_xticks(range(len(names)))
        bx.set_xticklabels(names)
    bx.legend(fontsize=7)
    bx.set_ylim(-0.05, 1.05)
    bx.set_ylabel("forward yield not visible to the backward method")
    bx.set_title("missed fraction (all regions)", fontsize=9)
    fig.suptitle("prompt closure: " + "; ".join(
        f"{n}: {r['events']} events, {r['tracks']} visible paths" for n, r in reports.items()),
        fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


SETUPS = {
    "physical": {},
    "controlled": {"regions_file": str(Path(__file__).resolve().parents[1] / "tests" / "data"
                                       / "regions_loose.toml"),
                   "forced_z_min_m": 175.0, "allocation": "natural", "transfer_bias": False},
}


def run_setup(name: str, args, out: Path) -> dict:
    events = args.events if name == "physical" else args.controlled_events
    paths = args.paths_per_muon if name == "physical" else 8
    config = PromptSimConfig(
        run=RunConfig(seed=args.seed, samples_per_track=args.samples_per_track,
                      interactions_per_history=args.k, **SETUPS[name]),
        n_events=events, paths_per_muon=paths)
    priors = tuple(args.priors) if name == "physical" else ("energy", "full")
    r = run_closure(config, out / name, priors=priors, jobs=args.jobs,
                    batch_size=args.batch_size, progress=True,
                    target_rel_unc=args.target_rel_unc if name == "physical" else None,
                    max_time_s=args.backward_max_time)
    fwd = r["forward"].document
    r["forward"].candidates.to_parquet(out / name / "forward_candidates.parquet")
    for prior, b in r["backward"].items():
        b.candidates.to_parquet(out / name / f"backward_{prior}_candidates.parquet")
    precision = {"forward (all paths)": (fwd["regions"]["outside"]["mu-mu"]["value"],
                                         fwd["regions"]["outside"]["mu-mu"]["stat"])}
    for prior, b in r["backward"].items():
        cell = b.document["regions"]["outside"]["mu-mu"]
        mc = cell["mc"] if np.isfinite(cell["mc"]) else 0.0
        precision[f"backward, prior {prior} (stat ⊕ MC)"] = (
            cell["value"], float(np.hypot(cell["stat"], mc)))
    return {"events": events, "paths_per_muon": paths,
            "samples_per_track": args.samples_per_track, "k": args.k, "seed": args.seed,
            "pot": config.run.pot_target, "tracks": r["tracks"], "config": config.to_dict(),
            "visible_definition": next(iter(r["tables"].values()))["visible_definition"],
            "times": r["times"], "interactions": r["interactions"], "tables": r["tables"],
            "precision": precision,
            "forward_mc": {k: fwd["mc"][k] for k in ("rounds", "rel_unc", "elapsed_s")},
            "backward_mc": {prior: {k: b.document["mc"].get(k) for k in
                                    ("samples_per_track", "rel_unc", "stopped_by",
                                     "elapsed_s")}
                            for prior, b in r["backward"].items()},
            "forward_block": {k: v for k, v in fwd["forward_prompt"].items() if k != "config"}}


def main():
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--controlled-events", type=int, default=4000)
    parser.add_argument("--paths-per-muon", type=int, default=2)
    parser.add_argument("--samples-per-track", type=int, default=16)
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--priors", nargs="+", default=["energy", "full"])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100,
                        help="Events per forward batch (memory grows with it times -k).")
    parser.add_argument("--target-rel-unc", type=float, default=None,
                        help="Backward (physical set-up): rounds until this relative MC "
                             "uncertainty of mu-mu outside SR/CR.")
    parser.add_argument("--backward-max-time", type=float, default=None,
                        help="Backward: stop adding rounds after this many seconds.")
    parser.add_argument("--notes", default="", help="Text added under the title.")
    parser.add_argument("--out", default="studies/prompt_closure")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "closure.json"
    # set-ups not re-run keep their saved report (and the command that made it)
    old = json.loads(saved.read_text()) if saved.exists() else {}
    commands = old.pop("commands", {}) if "commands" in old else \
        {name: old.get("command") for name in SETUPS if name in old}
    old.pop("command", None)
    reports = {name: old[name] for name in SETUPS if name in old and name not in args.setups}
    reports.update({name: run_setup(name, args, out) for name in args.setups})
    reports = {name: reports[name] for name in SETUPS if name in reports}
    commands.update({name: " ".join(sys.argv) for name in args.setups})
    write_json_atomic(saved, {"commands": commands, **reports})
    write_text_atomic(out / "closure.md", markdown(reports, args.notes))
    plot(reports, out / "closure.png")
    print(markdown(reports, args.notes))


if __name__ == "__main__":
    main()
