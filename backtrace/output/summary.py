"""The whole background table: combinatorial, prompt and upstream-prompt per
region, their total and the chance of a background event in the SR.

:func:`build_summary` joins the prompt estimate (``background.json`` and its
candidates, :mod:`backtrace.prompt.document`) and the combinatorial estimate
(:mod:`backtrace.combinatorial.pairing`) into the ``summary`` block that
``backtrace run`` writes to the terminal, Markdown, LaTeX, CSV and JSON
(:mod:`backtrace.output.report`):

- **combinatorial**: the opposite-sign (estimate) sample, value ± pairing
  statistics ± spill-model systematics (with the POT normalisation);
- **prompt**, **upstream-prompt**: all categories of the prompt estimate
  whose interaction happened downstream / upstream of the prompt boundary,
  value ± per-track statistical error (their systematics are evaluated for
  their sum per region and enter the total);
- **total**: the sum; stat in quadrature (the prompt zones' together, per
  track); syst: the POT normalisation added linearly between components
  (the same POT), every other source in quadrature.

An empty cell gets its 90 % CL upper limit (2.303 × the weight an entry
would carry; the method of each estimate is recorded). The probability to
observe at least one background event in the SR is 1 − exp(−b), b the
total expected SR background from the central values (limits count as 0,
as NA62's 1.6 % = 1 − exp(−0.016) does); ``p_sr_with_limits`` adds the
limits of empty cells (an upper bound).
"""

from __future__ import annotations

import math
import platform
import sys

import numpy as np

from backtrace._version import __version__
from backtrace.output.report import region_order
from backtrace.prompt.estimate import weighted_yield

__all__ = ["build_summary", "COMPONENTS", "p_at_least_one"]

#: Columns of the summary table.
COMPONENTS = ("combinatorial", "prompt", "upstream_prompt")
#: Poisson 90 % CL upper limit for zero entries (as backtrace.prompt.estimate).
_UL_FACTOR = -math.log(0.1)


def p_at_least_one(expected: float) -> float:
    """P(n ≥ 1) of a Poisson count of mean ``expected``."""
    return float(-math.expm1(-max(float(expected), 0.0)))


def _prompt_weight_per_entry(doc: dict) -> float:
    """w̄ over all categories (the n-weighted mean of their w̄)."""
    per = doc.get("upper_limit_weight_per_entry", {})
    n = sum(v.get("n", 0) for v in per.values())
    if n:
        return sum(v["weight"] * v.get("n", 0) for v in per.values()) / n
    return max((v["weight"] for v in per.values()), default=0.0)


def _yield(sel, per_entry: float) -> dict:
    y = weighted_yield(sel["weight"], sel["track_index"], weight_per_entry=per_entry)
    return {"value": y.value, "stat": y.stat, "n_mc": y.n_mc,
            "upper_limit_90": y.upper_limit_90 if y.n_mc == 0 else None}


def _prompt_cells(doc: dict, candidates, region: str) -> dict:
    per_entry = _prompt_weight_per_entry(doc)
    c = candidates[candidates["region"] == region] if candidates is not None \
        and len(candidates) else None
    out = {}
    for zone in ("prompt", "upstream_prompt"):
        sel = c[c["zone"] == zone] if c is not None else None
        if sel is None or not len(sel):
            out[zone] = {"value": 0.0, "stat": 0.0, "n_mc": 0,
                         "upper_limit_90": _UL_FACTOR * per_entry}
        else:
            out[zone] = _yield(sel, per_entry)
    both = _yield(c, per_entry) if c is not None and len(c) else {"value": 0.0, "stat": 0.0}
    return out | {"_stat_both": both["stat"]}


def _total(cells: dict, comb_cell: dict | None, prompt_syst: dict) -> dict:
    """Sum of the components; POT added linearly, the rest in quadrature."""
    value = sum(cells[c]["value"] for c in COMPONENTS if c in cells)
    stat = math.hypot(cells.get("combinatorial", {}).get("stat", 0.0), cells["_stat_both"])
    comb_b = dict(comb_cell.get("syst_breakdown", {})) if comb_cell else {}
    pot = abs(comb_b.pop("pot", 0.0)) + abs(prompt_syst.get("pot", 0.0))
    rest = [v for v in comb_b.values()] + [v for k, v in prompt_syst.items()
                                           if k not in ("pot", "quadrature")]
    syst = math.sqrt(pot * pot + sum(v * v for v in rest))
    return {"value": value, "stat": stat, "syst": syst}


def _provenance(doc: dict, comb: dict | None, command: str | None) -> dict:
    versions = dict(doc.get("versions", {}), backtrace=__version__,
                    python=platform.python_version(), numpy=np.__version__)
    cfg = doc.get("config", {})
    return {"command": command, "seed": cfg.get("seed"), "tracks": cfg.get("tracks"),
            "tracks_sha256": cfg.get("tracks_sha256"), "pot_target": doc.get("pot"),
            "pot_sample": doc.get("pot_sample"), "versions": versions,
            "regions": cfg.get("regions", {}).get("path") or "packaged (estimated NA62)",
            "spill_model": (comb or {}).get("spill_model", {}).get("path")
            or ("packaged (NA62 dump 2021)" if comb else None),
            "platform": f"{platform.system()} {platform.machine()}",
            "argv": list(sys.argv) if command is None else None}


def build_summary(doc: dict, candidates, comb: dict | None, command: str | None = None
                  ) -> dict:
    """The ``summary`` block (module docstring) from the prompt document and
    candidates and the combinatorial block (None: not run, the column says
    so)."""
    table = doc.get("systematics", {}).get("table", {})
    regions = {}
    for region in region_order(doc):
        cells = _prompt_cells(doc, candidates, region)
        comb_cell = None
        if comb is not None:
            sign = comb.get("estimate_sign", "opposite")
            comb_cell = comb["regions"][sign][region]
            cells["combinatorial"] = {k: comb_cell[k] for k in
                                      ("value", "stat", "syst", "n_mc", "upper_limit_90")}
        prompt_syst = {name: col.get(region, 0.0) for name, col in table.items()}
        total = _total(cells, comb_cell, prompt_syst)
        cells.pop("_stat_both")
        regions[region] = {**cells, "total": total,
                           "prompt_syst": prompt_syst.get("quadrature", 0.0)}
    sr = regions.get("SR")
    p_sr = None
    if sr is not None:
        b = sr["total"]["value"]
        limits = sum(sr[c]["upper_limit_90"] or 0.0 for c in COMPONENTS if c in sr)
        err = math.hypot(sr["total"]["stat"], sr["total"]["syst"])
        p_sr = {"expected": b, "p_at_least_one": p_at_least_one(b),
                "p_range": [p_at_least_one(b - err), p_at_least_one(b + err)],
                "p_with_limits": p_at_least_one(b + limits),
                "published_na62": 0.016,
                "method": "P(n >= 1) = 1 - exp(-b), b = total expected SR background "
                          "(central values; empty cells count 0); p_range: b -/+ its "
                          "stat and syst in quadrature; p_with_limits: the 90% CL limits "
                          "of empty cells added to b (an upper bound)"}
    return {"components": [c for c in COMPONENTS if comb is not None or c != "combinatorial"],
            "combinatorial_included": comb is not None, "regions": regions, "sr": p_sr,
            "upper_limit_methods": {
                "prompt": doc.get("upper_limit_method"),
                "prompt_weight_per_entry_all_categories": _prompt_weight_per_entry(doc),
                "combinatorial": (comb or {}).get("upper_limit_method")},
            "provenance": _provenance(doc, comb, command)}
