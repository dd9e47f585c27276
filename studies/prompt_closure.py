"""Closure of the two-track prompt yield: forward prompt simulation against
``backtrace run`` on the single-track sample of the same source events.

(a) ``simulate_prompt`` on --events source events (--paths-per-muon forward
paths from each muon's TAX-exit state); (b) ``run_estimate`` on the visible
paths at STRAW1, once per source prior (--priors). Compares, per region and
category and for the forced interactions' summed weight, forward/backward
on the visible paths (paired per event, ``backtrace/prompt_closure.py``),
the missed fraction, and the wall time of each method. Writes closure.md,
closure.json and closure.png into --out.

Run: python studies/prompt_closure.py --events 20000 --paths-per-muon 4 \
         --samples-per-track 16 --priors energy full --jobs 2 --out studies/prompt_closure
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


def markdown(report: dict) -> str:
    t = report["times"]
    lines = [
        "# Prompt-yield closure: forward simulation vs backward estimate",
        "",
        f"Source events: {report['events']}, forward paths per muon: "
        f"{report['paths_per_muon']}, visible paths (tracks of the backward run): "
        f"{report['tracks']}; backward histories per track: {report['samples_per_track']}, "
        f"forced draws per history/path: {report['k']}; seed {report['seed']} (backward "
        f"seed + 100). Target POT {report['pot']:.3g}.",
        "",
        f"Visible: {report['visible_definition']}.",
        "",
        "Ratios are forward/backward on the visible paths, errors from the paired "
        "per-event differences (`backtrace/prompt_closure.py`); an empty cell in both "
        "methods has no ratio.",
        "",
        "## Wall time (same machine, same jobs)",
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
              "| category | missed yield | fraction |", "|---|---|---|"]
    first = next(iter(report["tables"].values()))
    for cat, m in first["missed_by_category"].items():
        lines.append(f"| {cat} | {fmt(m['missed'])} | "
                     f"{fmt(m['fraction'], m['fraction_error'])} |")
    lines += ["", "## Precision of mu-mu outside SR/CR", "",
              "| method | value | relative error |", "|---|---|---|"]
    for name, (v, e) in report["precision"].items():
        lines.append(f"| {name} | {fmt(v)} | {fmt(e / v if v else None)} |")
    lines += ["", report.get("notes", ""), ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels, offset = [], 0
    priors = list(report["tables"])
    for j, prior in enumerate(priors):
        xs, ys, es, names = [], [], [], []
        ic = report["interactions"][prior]
        if ic["ratio"] is not None:
            xs.append(0)
            ys.append(ic["ratio"])
            es.append(ic["ratio_error"])
        names.append("interactions")
        i = 1
        for region, row in report["tables"][prior]["cells"].items():
            for cat, c in row.items():
                if c["ratio"] is not None and c["forward"] + c["backward"] > 0:
                    xs.append(i)
                    ys.append(c["ratio"])
                    es.append(c["ratio_error"])
                    names.append(f"{region}\n{cat}")
                    i += 1
        ax.errorbar(np.array(xs) + 0.12 * (j - (len(priors) - 1) / 2), ys, es, fmt="os"[j % 2],
                    label=f"backward prior '{prior}'")
        if len(names) > len(labels):
            labels = names
        offset = max(offset, i)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("forward / backward (visible paths)")
    ax.legend(fontsize=7)
    ax.set_title("closure per quantity", fontsize=9)
    cats = list(next(iter(report["tables"].values()))["missed_by_category"].items())
    fr = [(c, m["fraction"], m["fraction_error"]) for c, m in cats if m["fraction"] is not None]
    if fr:
        bx.errorbar(range(len(fr)), [f for _, f, _ in fr], [e for _, _, e in fr], fmt="o")
        bx.set_xticks(range(len(fr)))
        bx.set_xticklabels([c for c, _, _ in fr])
    ic = next(iter(report["interactions"].values()))
    if ic["missed_fraction"] is not None:
        bx.axhline(ic["missed_fraction"], ls="--", color="gray",
                   label="interaction weight on invisible paths")
        bx.legend(fontsize=7)
    bx.set_ylim(-0.05, 1.05)
    bx.set_ylabel("forward yield not visible to the backward method")
    bx.set_title("missed fraction (all regions)", fontsize=9)
    fig.suptitle(f"prompt closure: {report['events']} events, {report['tracks']} visible paths",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--paths-per-muon", type=int, default=4)
    parser.add_argument("--samples-per-track", type=int, default=16)
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--priors", nargs="+", default=["energy", "full"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="studies/prompt_closure")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = PromptSimConfig(
        run=RunConfig(seed=args.seed, samples_per_track=args.samples_per_track,
                      interactions_per_history=args.k),
        n_events=args.events, paths_per_muon=args.paths_per_muon)
    r = run_closure(config, out, priors=tuple(args.priors), jobs=args.jobs,
                    batch_size=max(200, args.events // 40), progress=True)
    fwd = r["forward"].document
    precision = {"forward (all paths)": (fwd["regions"]["outside"]["mu-mu"]["value"],
                                         fwd["regions"]["outside"]["mu-mu"]["stat"])}
    for prior, b in r["backward"].items():
        cell = b.document["regions"]["outside"]["mu-mu"]
        precision[f"backward, prior {prior} (stat ⊕ MC)"] = (
            cell["value"], float(np.hypot(cell["stat"], cell["mc"])))
    report = {"events": args.events, "paths_per_muon": args.paths_per_muon,
              "samples_per_track": args.samples_per_track, "k": args.k, "seed": args.seed,
              "pot": config.run.pot_target, "tracks": r["tracks"],
              "visible_definition": next(iter(r["tables"].values()))["visible_definition"],
              "times": r["times"], "interactions": r["interactions"], "tables": r["tables"],
              "precision": precision,
              "forward_block": {k: v for k, v in fwd["forward_prompt"].items()
                                if k != "config"},
              "backward_mc": {p: {k: b.document["mc"].get(k) for k in
                                  ("samples_per_track", "total_prompt", "elapsed_s")}
                              for p, b in r["backward"].items()}}
    write_json_atomic(out / "closure.json", report)
    write_text_atomic(out / "closure.md", markdown(report))
    plot(report, out / "closure.png")
    print(markdown(report))


if __name__ == "__main__":
    main()
