"""Closure of the two-track prompt yield: forward prompt simulation against
``backtrace run`` on the single-track sample of the same source events.

(a) ``simulate_prompt`` on --events source events (--paths-per-muon forward
paths from each muon's TAX-exit state); (b) ``run_estimate`` on the visible
paths at STRAW1, once per source prior (--priors). Compares, per region and
category and for the forced interactions' summed weight, forward/backward
on the visible paths (paired per event, ``backtrace/forward/closure.py``),
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

from backtrace.forward.closure import run_closure
from backtrace.forward.simulation import PromptSimConfig
from backtrace.io import write_json_atomic, write_text_atomic
from backtrace.prompt.config import RunConfig


def fmt(v, e=None):
    if v is None:
        return "–"
    return f"{v:.3g}" if e is None else f"{v:.3g} ± {e:.2g}"


def fmt_ratio(c: dict) -> str:
    """R ± paired error, then the 68 % bootstrap interval over events; a
    cell the forward has no entry in has no error to show (0 ± 0 says
    nothing there)."""
    if c["ratio"] is not None and c["forward"] == 0:
        return "no forward entry"
    text = fmt(c["ratio"], c["ratio_error"])
    band = c.get("ratio_interval_68")
    return text + (f" [{band[0]:.3g}, {band[1]:.3g}]" if band else "")


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
        "per-event differences (`backtrace/forward/closure.py`), then in brackets the "
        "68 % bootstrap interval over events (paired; it does not assume a Gaussian "
        "ratio: with a few heavy events it is lopsided); an empty cell in both "
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
              "Mean of a_e/b_e: the unweighted mean over events of the per-event "
              "ratio, in which the event's source weight cancels (each event counts "
              "alike, not the heavy ones); reports made before it was recorded show –.",
              "",
              "| prior | forward | backward | forward/backward | mean of a_e/b_e (events) | "
              "missed fraction (all paths) |",
              "|---|---|---|---|---|---|"]
    for prior, c in report["interactions"].items():
        mean = (f"{fmt(c['mean_event_ratio'], c['mean_event_ratio_error'])} "
                f"({c['mean_event_ratio_events']})" if c.get("mean_event_ratio") is not None
                else "–")
        lines.append(f"| {prior} | {fmt(c['forward'], c['forward_error'])} | "
                     f"{fmt(c['backward'], c['backward_error'])} | "
                     f"{fmt_ratio(c)} | {mean} | {fmt(c['missed_fraction'])} |")
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
                    f"{fmt_ratio(c)} | "
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
    lines += ["", "## Forward/backward per category, all regions (visible paths)", "",
              "| category | forward | backward | forward/backward |", "|---|---|---|---|"]
    for cat, m in first["missed_by_category"].items():
        c = m.get("visible_ratio")
        if c and (c["forward"] or c["backward"]):
            lines.append(f"| {cat} | {fmt(c['forward'], c['forward_error'])} | "
                         f"{fmt(c['backward'], c['backward_error'])} | {fmt_ratio(c)} |")
    for cat, rows in first.get("by_volume", {}).items():
        if not rows:
            continue
        lines += ["", f"## {cat} per volume of the interaction, all regions (visible paths)",
                  "", "Where along the incoming muon's path the methods agree or part "
                  "(volumes under 5 % of the yield in both methods pooled).", "",
                  "| volume | forward | backward | forward/backward |", "|---|---|---|---|"]
        for vol, c in rows.items():
            lines.append(f"| {vol} | {fmt(c['forward'], c['forward_error'])} | "
                         f"{fmt(c['backward'], c['backward_error'])} | {fmt_ratio(c)} |")
    lines += ["", "## Precision of mu-mu outside SR/CR", "",
              "| method | value | relative error |", "|---|---|---|"]
    for name, (v, e) in report["precision"].items():
        lines.append(f"| {name} | {fmt(v)} | {fmt(e / v if v else None)} |")
    lines += [""]
    return lines


def mc_lines(report: dict) -> list:
    """How each method drew its Monte Carlo (reports made before the
    forward importance pass have no such record)."""
    if "runs" in report:
        return [" ".join(
            f"Run {i + 1}: events {r['first_event']}–{r['first_event'] + r['events'] - 1}, "
            f"{r['tracks']} tracks, forward {r['times']['forward_s']:.0f} s (mu-mu outside "
            f"rel. error {fmt(r['forward_mc']['rel_unc'])}), backward "
            + ", ".join(f"prior {p}: {b['samples_per_track']} histories/track max, MC rel. "
                        f"{fmt(b['rel_unc'])}, {r['times']['backward_s'][p]:.0f} s"
                        for p, b in r["backward_mc"].items()) + "."
            for i, r in enumerate(report["runs"])) + " The runs are averaged (each "
            "normalised to its own events); ratios and missed fractions are recomputed from "
            "the pooled candidates, the forced-interaction closure from each run's sums.", ""]
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
        n_events=events, paths_per_muon=paths,
        first_event=args.first_event if name == "physical" else 0)
    priors = tuple(args.priors) if name == "physical" else ("energy", "full")
    r = run_closure(config, out / name, priors=priors, jobs=args.jobs,
                    batch_size=args.batch_size, progress=True,
                    target_rel_unc=args.target_rel_unc if name == "physical" else None,
                    max_time_s=args.backward_max_time)
    fwd = r["forward"].document
    r["forward"].candidates.to_parquet(out / name / "forward_candidates.parquet")
    r["forward"].paths.to_parquet(out / name / "forward_paths.parquet")
    for prior, b in r["backward"].items():
        b.candidates.to_parquet(out / name / f"backward_{prior}_candidates.parquet")
        if b.interaction_weight is not None:  # per track, for the forced-interaction closure
            b.interaction_weight.rename("interaction_weight").rename_axis(
                "track_index").reset_index().to_parquet(
                out / name / f"backward_{prior}_interactions.parquet")
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


def _combined_interactions(runs: list) -> dict:
    """The forced interactions' closure of runs over disjoint event ranges
    from each run's numbers: sums averaged, the ratio's paired error from
    each run's (σ_R,i B_i)² — the per-event residuals are not kept."""
    n = len(runs)
    a = sum(r["forward"] for r in runs) / n
    b = sum(r["backward"] for r in runs) / n
    out = {"forward": a, "backward": b,
           "forward_error": float(np.sqrt(sum(r["forward_error"] ** 2 for r in runs))) / n,
           "backward_error": float(np.sqrt(sum(r["backward_error"] ** 2 for r in runs))) / n,
           "ratio": a / b if b > 0 else None, "ratio_error": None,
           "missed_fraction": float(np.mean([r["missed_fraction"] for r in runs]))}
    counts = [r.get("mean_event_ratio_events") for r in runs]
    if all(counts) and all(r.get("mean_event_ratio") is not None for r in runs):
        total = sum(counts)
        out["mean_event_ratio"] = sum(c * r["mean_event_ratio"]
                                      for c, r in zip(counts, runs)) / total
        out["mean_event_ratio_error"] = float(np.sqrt(sum(
            (c * r["mean_event_ratio_error"]) ** 2 for c, r in zip(counts, runs)))) / total
        out["mean_event_ratio_events"] = total
    if b > 0 and all(r["ratio_error"] is not None for r in runs):
        out["ratio_error"] = float(np.sqrt(sum((r["ratio_error"] * r["backward"]) ** 2
                                               for r in runs))) / (n * b)
    return out


def combine(dirs: list, name: str = "physical") -> dict:
    """The average of runs of set-up ``name`` over disjoint event ranges
    (--first-event; each normalised to its own events): candidates of both
    methods with weights / len(dirs), events kept (they are disjoint), the
    backward candidates re-pointed to the concatenated track samples, and
    the closure tables recomputed from them; precision of the backward from
    each run's stat ⊕ MC."""
    from types import SimpleNamespace

    import pandas as pd

    from backtrace.forward.closure import closure_table
    from backtrace.regions import load_regions

    reports = [json.loads((Path(d) / "closure.json").read_text())[name] for d in dirs]
    priors = list(reports[0]["tables"])
    n = len(dirs)
    fcs, tracks, bcs = [], [], {prior: [] for prior in priors}
    offset = 0
    for d in dirs:
        # a run's --out DIR holds its files under DIR/<set-up>; a kept run
        # (studies/prompt_closure/physical/runN) holds them directly
        base = Path(d) / name if (Path(d) / name).is_dir() else Path(d)
        fc = pd.read_parquet(base / "forward_candidates.parquet")
        fcs.append(fc.assign(weight=fc["weight"] / n))
        tr = pd.read_parquet(base / "tracks.parquet")
        for prior in priors:
            bc = pd.read_parquet(base / f"backward_{prior}_candidates.parquet")
            bcs[prior].append(bc.assign(weight=bc["weight"] / n,
                                        track_index=bc["track_index"] + offset))
        tracks.append(tr)
        offset += len(tr)
    events = [set(t["event_id"]) for t in tracks]
    if any(a & b for i, a in enumerate(events) for b in events[i + 1:]):
        raise SystemExit("combine: the runs share events (use disjoint --first-event ranges)")
    fwd = SimpleNamespace(candidates=pd.concat(fcs, ignore_index=True))
    all_tracks = pd.concat(tracks, ignore_index=True)
    run_cfg = reports[0]["config"]["run"]
    selection = load_regions(run_cfg.get("regions_file"), run_cfg.get("channel"))
    regions, categories = list(selection.names), list(selection.categories)
    tables = {prior: closure_table(fwd, pd.concat(bcs[prior], ignore_index=True), all_tracks,
                                   regions, categories) for prior in priors}
    sel = fwd.candidates[(fwd.candidates["region"] == "outside")
                         & (fwd.candidates["category"] == "mu-mu")]
    per = sel.groupby("event")["weight"].sum()
    precision = {"forward (all paths)": (float(per.sum()), float(np.sqrt((per ** 2).sum())))}
    for key in reports[0]["precision"]:
        if key.startswith("backward"):
            v = [r["precision"][key] for r in reports]
            precision[key] = (sum(x for x, _ in v) / n,
                              float(np.sqrt(sum(e ** 2 for _, e in v))) / n)
    first = reports[0]
    return {**{k: first[k] for k in ("paths_per_muon", "samples_per_track", "k", "seed",
                                     "pot", "config", "visible_definition")},
            "events": sum(r["events"] for r in reports),
            "tracks": sum(r["tracks"] for r in reports),
            "times": {"forward_s": sum(r["times"]["forward_s"] for r in reports),
                      "backward_s": {p: sum(r["times"]["backward_s"][p] for r in reports)
                                     for p in priors}},
            "interactions": {p: _combined_interactions([r["interactions"][p] for r in reports])
                             for p in priors},
            "tables": tables, "precision": precision,
            "runs": [{"dir": str(d), "first_event": r["config"].get("first_event", 0),
                      "events": r["events"], "tracks": r["tracks"], "times": r["times"],
                      "precision": r["precision"], "forward_mc": r.get("forward_mc"),
                      "backward_mc": r.get("backward_mc"),
                      "interactions": r["interactions"]} for d, r in zip(dirs, reports)]}


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
    parser.add_argument("--first-event", type=int, default=0,
                        help="Physical set-up: first MC event (disjoint ranges are "
                             "independent samples, see --combine).")
    parser.add_argument("--batch-size", type=int, default=100,
                        help="Events per forward batch (memory grows with it times -k).")
    parser.add_argument("--target-rel-unc", type=float, default=None,
                        help="Backward (physical set-up): rounds until this relative MC "
                             "uncertainty of mu-mu outside SR/CR.")
    parser.add_argument("--backward-max-time", type=float, default=None,
                        help="Backward: stop adding rounds after this many seconds.")
    parser.add_argument("--combine", nargs="+", metavar="DIR", default=None,
                        help="Instead of running: average the physical set-up of earlier "
                             "--out DIRs over disjoint event ranges into --out.")
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
    rerun = ["physical"] if args.combine else args.setups
    reports = {name: old[name] for name in SETUPS if name in old and name not in rerun}
    if args.combine:
        reports["physical"] = combine(args.combine)
    else:
        reports.update({name: run_setup(name, args, out) for name in args.setups})
    reports = {name: reports[name] for name in SETUPS if name in reports}
    commands.update({name: " ".join(sys.argv) for name in rerun})
    write_json_atomic(saved, {"commands": commands, **reports})
    write_text_atomic(out / "closure.md", markdown(reports, args.notes))
    plot(reports, out / "closure.png")
    print(markdown(reports, args.notes))


if __name__ == "__main__":
    main()
