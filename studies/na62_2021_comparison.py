"""NA62 2021 μ⁺μ⁻ prompt table, like for like: every published cell, two
physics sets, and the inputs common to every category.

NA62 (JHEP 09 (2023) 035, arXiv:2303.08666) quotes the prompt background
outside SR/CR per category — μ-μ 0.235 ± 0.177, μ-π 0.038 ± 0.019, other
0.004 ± 0.003 (statistical) — and limits in the SR (< 0.0004) and CR
(< 0.004) for 1.4e17 POT. The published estimate used a backward MC with
Geant4-simulated secondaries; Geant4's default physics has no direct
μ → μ μ⁺μ⁻ and no γ → μ⁺μ⁻ (``backtrace.interactions.PHYSICS``), so the
like-for-like comparison is most likely the ``geant4-default`` set — a
hypothesis with that evidence, not a claim about NA62's code.

For each set, one estimate with a selection looser than the packaged one
(vertex from 102 m, tracks from 5 GeV, CDA < 50 mm; everything else the
packaged NA62 [est] selection) aims at every published cell at once
(``--target-cell published``); the packaged cuts, and each variation of a
cut, are then applied to its candidates (``Background.cells``: the same
histories, so the variations are paired). The inputs a cut cannot vary —
the LAV inefficiency, the end-cap thickness, the tracker resolution — are
re-run (same seed). The flux of the single-track sample enters every
prompt cell linearly. The trident alone is the full set's ``mumu_pair``
part (``by_process``).

Run: python studies/na62_2021_comparison.py [--tracks examples/sample.parquet]
     [--rounds 12] [--rerun-rounds 9] [--jobs 2] [--out studies/na62_2021]
     [--from-json]   (rewrite the tables from the saved comparison.json)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from importlib import resources
from pathlib import Path

import numpy as np

import backtrace

#: Published prompt background, 1.4e17 POT, outside SR/CR (value, stat error),
#: and the SR/CR limits (all categories, 90 % CL), JHEP 09 (2023) 035.
PUBLISHED = {"mu-mu": (0.235, 0.177), "mu-pi": (0.038, 0.019), "other": (0.004, 0.003)}
PUBLISHED_LIMITS = {"SR": 0.0004, "CR": 0.004}
SETS = ("geant4-default", "full")
CATEGORIES = ("mu-mu", "mu-pi", "other")
#: The packaged selection's cuts the study varies, and the loose run's.
NOMINAL = {"fiducial_z_min_m": 105.0, "cda_max_m": 0.05, "track_p_min_gev": 10.0}
LOOSE = {"fiducial_z_min_m": 102.0, "cda_max_m": 0.05, "track_p_min_gev": 5.0}
#: Cut variations (one at a time from NOMINAL) and their sources.
CUT_VARIATIONS = {
    "fiducial_z_min_m": ((102.425, 105.0, 110.0, 120.0),
                         "NA62 dump-analysis code: 102.425 m (InitialFV) and 120 m (a 2020 "
                         "version); kaon-mode FV 105 m [paper]; 110 m in between"),
    "cda_max_m": ((0.010, 0.020, 0.050),
                  "10 mm: NA62 dump-analysis code [NA62 code]; 50 mm: the packaged [est]"),
    "track_p_min_gev": ((5.0, 10.0, 15.0), "[est] range of the packaged selection"),
}
#: Re-run variations: Options keywords per value (nominal first).
LAVS = [f"LAV{i}" for i in range(1, 13)]
RERUNS = {
    "LAV inefficiency": ([("0.01 (nominal)", {}),
                          ("0.001", {"overrides": tuple(f"{n}.detector.inefficiency=0.001"
                                                        for n in LAVS)}),
                          ("0.05", {"overrides": tuple(f"{n}.detector.inefficiency=0.05"
                                                       for n in LAVS)})],
                         "geometry [est 1e-2, range 1e-3-5e-2]"),
    "end-cap thickness": ([("20 mm (nominal)", {}),
                           ("10 mm", {"overrides": ("tank-end-cap.z_min_m=105.585",)}),
                           ("40 mm", {"overrides": ("tank-end-cap.z_min_m=105.555",)})],
                          "geometry [est 20 mm, range 10-40 mm]"),
    "tracker resolution": ([("x1 (nominal)", {}), ("x0.5", {"resolution_scale": 0.5}),
                            ("x2", {"resolution_scale": 2.0})],
                           "reconstruction.Smearing [est]: every resolution term scaled"),
}


def loose_selection(path: Path) -> Path:
    """The packaged μ⁺μ⁻ selection with the LOOSE cuts."""
    text = (resources.files("backtrace.data") / "regions_na62_mumu.toml").read_text()
    for key, value in LOOSE.items():
        lines = text.splitlines()
        i = next(k for k, line in enumerate(lines) if line.startswith(f"{key} ="))
        lines[i] = f"{key} = {value}"
        text = "\n".join(lines) + "\n"
    path.write_text(text.replace('name = "NA62 dump mu-mu (2021), estimated regions"',
                                 'name = "NA62 dump mu-mu (2021), loose for the comparison"'))
    return path


def selected(cuts: dict):
    """The candidates mask of the cuts (a superset of the loose run's)."""
    def where(c):
        return ((c["vertex_z_m"] >= cuts["fiducial_z_min_m"]) & (c["cda_m"] < cuts["cda_max_m"])
                & (c["p1_gev"] >= cuts["track_p_min_gev"])
                & (c["p2_gev"] >= cuts["track_p_min_gev"]))
    return where


def cells(b, cuts: dict, process: str | None = None) -> dict:
    """{region: {category: {value, mc, stat, n_mc}}} under ``cuts``."""
    base = selected(cuts)
    where = base if process is None else (lambda c: base(c) & (c["process"] == process))
    t = b.cells(where)
    return {r: {c: {k: float(row[k]) for k in ("value", "mc", "stat", "n_mc")}
                for c, row in part.set_index("category").iterrows()}
            for r, part in t.groupby("region")}


def limit(b) -> dict:
    """90 % CL limit of each empty cell: 2.303 × the weight an entry of its
    category would carry (the run's w̄; the cuts decide whether an entry
    counts, not what it weighs)."""
    w = b.document["upper_limit_weight_per_entry"]
    return {cat: 2.303 * w[cat]["weight"] for cat in CATEGORIES}


def run_set(tracks, physics, regions, opts) -> tuple:
    t0 = time.perf_counter()
    b = backtrace.estimate(tracks, physics=physics, regions=str(regions),
                           target_cell="published", target_rel_unc=0.3,
                           max_rounds=opts.rounds, max_time_s=None,
                           systematics="none", combinatorial=False,
                           jobs=opts.jobs, seed=opts.seed, progress=False, log=print)
    return b, time.perf_counter() - t0


def cut_table(b) -> dict:
    """{input: {value: {category: value, mc}}} outside SR/CR (and SR+CR)."""
    out = {}
    for key, (values, _) in CUT_VARIATIONS.items():
        out[key] = {}
        for v in values:
            c = cells(b, {**NOMINAL, key: v})
            out[key][str(v)] = {cat: c["outside"][cat] for cat in CATEGORIES}
            out[key][str(v)]["SR+CR"] = {"value": sum(c[r][k]["value"] for r in ("SR", "CR")
                                                      for k in CATEGORIES)}
    return out


def rerun_table(tracks, physics, regions, opts) -> dict:
    """{input: {value: {category: value, mc}}} from re-runs (same seed)."""
    out = {}
    cell = "outside/mu-mu" if physics == "full" else "outside/mu-pi"
    for key, (values, _) in RERUNS.items():
        out[key] = {}
        for label, kw in values:
            b = backtrace.estimate(tracks, physics=physics, regions=str(regions),
                                   target_cell=cell, target_rel_unc=0.3,
                                   max_rounds=opts.rerun_rounds, max_time_s=None,
                                   systematics="none",
                                   combinatorial=False, jobs=opts.jobs, seed=opts.seed,
                                   progress=False, **kw)
            c = cells(b, NOMINAL)
            out[key][label] = {cat: c["outside"][cat] for cat in CATEGORIES}
            print(physics, key, label, {k: round(v["value"], 4)
                                        for k, v in out[key][label].items()})
    return out


def ratio(value: float, mc: float, stat: float, published: tuple) -> dict:
    """value/published with the error of both (ours: the per-track stat,
    which holds the MC error and the track sample)."""
    p, pe = published
    r = value / p
    err = r * math.hypot(stat / value if value else 0.0, pe / p) if value else None
    return {"ratio": r, "error": err}


def measure(opts) -> dict:
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    regions = loose_selection(out / "comparison_loose_selection.toml")
    result = {"command": opts.command, "published": {k: list(v) for k, v in PUBLISHED.items()},
              "published_limits": PUBLISHED_LIMITS, "nominal_cuts": NOMINAL,
              "loose_cuts": LOOSE, "sets": {}}
    for physics in SETS:
        b, seconds = run_set(opts.tracks, physics, regions, opts)
        b.write(out / "comparison_runs" / physics)
        nominal = cells(b, NOMINAL)
        entry = {"seconds": seconds, "mc": {k: b.document["mc"].get(k) for k in
                                            ("cells", "stopped_by", "histories")},
                 "rounds": len(b.document["mc"]["rounds"]), "cells": nominal,
                 "limits": limit(b), "cuts": cut_table(b),
                 "by_process": {p: cells(b, NOMINAL, p)
                                for p in b.document["config"]["processes"]},
                 "ratios": {cat: ratio(nominal["outside"][cat]["value"],
                                       nominal["outside"][cat]["mc"],
                                       nominal["outside"][cat]["stat"], PUBLISHED[cat])
                            for cat in CATEGORIES},
                 "strata": b.document["mc"]["forcing"]["strata"]}
        if opts.rerun_rounds > 0:
            entry["reruns"] = rerun_table(opts.tracks, physics, regions, opts)
        result["sets"][physics] = entry
    (out / "comparison.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def _fmt(cell: dict, lim: float | None = None) -> str:
    """'value ± stat (x % MC)', or the limit of an empty cell."""
    if not cell["n_mc"]:
        return f"< {lim:.2g}" if lim is not None else "0 (no entry)"
    mc = cell["mc"]
    rel = f" ({100 * mc / cell['value']:.0f} % MC)" if cell["value"] > 0 else ""
    return f"{cell['value']:.3g} ± {cell['stat']:.2g}{rel}"


def _region_total(cells_: dict, region: str) -> float:
    return sum(cells_[region][c]["value"] for c in CATEGORIES)


def _ratio(r: dict) -> str:
    if r["error"] is None:
        return "—"
    return f"{r['ratio']:.3g} ± {r['error']:.2g}"


def markdown(res: dict) -> str:
    g4, full = res["sets"]["geant4-default"], res["sets"]["full"]
    trident = full["by_process"]["mumu_pair"]
    lines = ["# NA62 2021 μ⁺μ⁻ prompt background: published vs backtrace", "",
             f"`{res['command']}`; 1.4e17 POT, the shipped single-track sample, the packaged "
             "NA62 [est] selection applied to the candidates of a looser run per set "
             f"(cuts {res['loose_cuts']}), `--systematics none`. Values: expected events ± "
             "per-track stat (it holds the MC error, in brackets, and the finite track "
             "sample); `<`: 90 % CL limit of an empty cell.", "",
             "| cell | published | like-for-like (geant4-default) | full | trident alone "
             "| ratio like-for-like | ratio full |", "|---|---|---|---|---|---|---|"]
    for cat in CATEGORIES:
        p = res["published"][cat]
        lines.append(f"| outside / {cat} | {p[0]} ± {p[1]} | "
                     f"{_fmt(g4['cells']['outside'][cat], g4['limits'][cat])} | "
                     f"{_fmt(full['cells']['outside'][cat], full['limits'][cat])} | "
                     f"{_fmt(trident['outside'][cat])} | {_ratio(g4['ratios'][cat])} | "
                     f"{_ratio(full['ratios'][cat])} |")
    for region, lim in res["published_limits"].items():
        lines.append(f"| {region} (all) | < {lim} | {_region_total(g4['cells'], region):.3g} | "
                     f"{_region_total(full['cells'], region):.3g} | "
                     f"{_region_total(trident, region):.3g} | | |")
    lines += ["", "## Time and precision", "",
              "| set | rounds | stopped by | time [s] | μ-μ MC | μ-π MC | other MC |",
              "|---|---|---|---|---|---|---|"]
    for name, s in res["sets"].items():
        rel = {c.split("/")[1]: v["rel_unc"] for c, v in (s["mc"]["cells"] or {}).items()}
        fmt = {c: "—" if rel.get(c) is None else f"{100 * rel[c]:.0f} %" for c in CATEGORIES}
        lines.append(f"| {name} | {s['rounds']} | {s['mc']['stopped_by']} | "
                     f"{s['seconds']:.0f} | {fmt['mu-mu']} | {fmt['mu-pi']} | {fmt['other']} |")
    lines += ["", "(precision of the loose run's cells, which the rounds aimed at)"]
    lines += common_input_lines(res)
    return "\n".join(lines) + "\n"


def _vm(cell: dict) -> str:
    """'value ± MC error' of a cell ('0' without an entry)."""
    return f"{cell['value']:.3g} ± {cell['mc']:.2g}" if cell["n_mc"] else "0"


def common_input_lines(res: dict) -> list[str]:
    lines = ["", "## Common inputs: outside SR/CR per category, one input varied at a time",
             "", "Values ± MC error. Cuts re-applied to the same candidates (paired); "
             "re-runs with the same seed, each its own estimate (its nominal row too). "
             "The flux of the single-track sample scales every prompt cell linearly "
             "(×2 flux: ×2 every entry below).", ""]
    for name, s in res["sets"].items():
        lines += [f"### {name}", "", "| input | value | μ-μ | μ-π | other | SR+CR (all) |",
                  "|---|---|---|---|---|---|"]
        for key, table in s["cuts"].items():
            for v, row in table.items():
                lines.append(f"| {key} | {v} | " + " | ".join(_vm(row[c]) for c in CATEGORIES)
                             + f" | {row['SR+CR']['value']:.3g} |")
        for key, table in s.get("reruns", {}).items():
            for v, row in table.items():
                lines.append(f"| {key} (re-run) | {v} | "
                             + " | ".join(_vm(row[c]) for c in CATEGORIES) + " | |")
        lines.append("")
    sources = {**{k: v[1] for k, v in CUT_VARIATIONS.items()},
               **{k: v[1] for k, v in RERUNS.items()}}
    lines += ["Sources of the ranges: " + "; ".join(f"{k}: {v}" for k, v in sources.items())
              + "."]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", default="examples/sample.parquet")
    parser.add_argument("--rounds", type=int, default=12,
                        help="rounds of each set's estimate at most (a number of rounds, "
                        "not a time: the study gives the same numbers on any machine)")
    parser.add_argument("--rerun-rounds", type=int, default=9,
                        help="rounds of each re-run at most (0: no re-runs)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="studies/na62_2021")
    parser.add_argument("--from-json", action="store_true")
    opts = parser.parse_args()
    opts.command = (f"python studies/na62_2021_comparison.py --tracks {opts.tracks} "
                    f"--rounds {opts.rounds} --rerun-rounds {opts.rerun_rounds} "
                    f"--jobs {opts.jobs} --seed {opts.seed}")
    out = Path(opts.out)
    res = json.loads((out / "comparison.json").read_text()) if opts.from_json \
        else measure(opts)
    (out / "comparison.md").write_text(markdown(res))
    print((out / "comparison.md").read_text())


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
