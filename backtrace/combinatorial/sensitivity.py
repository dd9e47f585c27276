"""How the combinatorial estimate moves with each of its inputs.

The table gives, for every region, the estimate with one input moved over
its range and the others at their values, for

- ``cda_max_m``, the two-track CDA cut of the selection: the pairs are
  measured once, with the cut loosened to the end of its range, and the
  cut is re-applied (no new transport);
- ``window_ns``, the coincidence window: with the spill model, through
  P₂(W) and the third-track factor exp(−μ₃(W)); with measured times, by
  re-selecting the pairs formed in the widest window (|Δt| < W, no third
  track within W);
- ``flux_scale`` s, a factor on every track weight (the muon flux of the
  sample): pairs scale as s², the third-track mean as s, the estimate as
  s² exp(−(s − 1) μ₃);
- ``pot_per_spill`` and ``duty_factor`` of the spill model, through
  N_spill P₂ exp(−μ₃) (with measured times they are measured, not inputs).

Beside it, for each region with a published value (the spill file's
``[sensitivity.published]``, scaled to the target POT), what each input
alone would have to be for the estimate to equal it: solved on the smooth
functions, bounded by the pair that crosses it on the step functions
(the CDA cut, a measured window). This is information about the size of
the gap, never a fit: nothing here changes the estimate, and an input
outside its range (or outside what is physical: a duty factor above 1)
says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from backtrace.combinatorial.spill import SpillError, SpillModel, load_spill_model

__all__ = ["Inputs", "sensitivity_block", "loose_values", "window_shifts", "scan_ranges",
           "loosest_cda_m", "INPUTS"]

#: The inputs of the table, with their units and meaning.
INPUTS = {"cda_max_m": ("m", "two-track CDA cut of the selection"),
          "window_ns": ("ns", "half-width of the coincidence window |Δt| < W"),
          "flux_scale": ("", "factor on the muon flux of the sample (every track weight)"),
          "pot_per_spill": ("POT", "protons on target per spill"),
          "duty_factor": ("", "duty factor D = (∫f)²/(T∫f²) of the spill")}
#: Points of each input's range in the table (with its value).
_POINTS = 5


@dataclass
class Inputs:
    """What the table needs from an estimate: the mode ('spill_model' or
    'bursts'), the loose pairs of the estimate's sign (columns region,
    weight, cda_m; with bursts dt_ns and d3_ns), the regions, the
    selection's CDA cut and third-track rule, the spill model, the target
    and sample POT, the reconstructable tracks per spill (spill model) and
    the third-track mean μ₃."""

    mode: str
    loose: pd.DataFrame
    regions: list
    cda_max_m: float
    exactly_two: bool
    model: SpillModel
    pot_target: float
    pot_sample: float
    n_reco_spill: float
    mu3: float
    estimate_sign: str


def scan_ranges(model: SpillModel) -> dict:
    """The ``[sensitivity]`` section of the model's file, or of the packaged
    one when the file has none."""
    return model.sensitivity if model.sensitivity is not None \
        else load_spill_model(None).sensitivity


def loosest_cda_m(model: SpillModel, selection: dict) -> float:
    """The CDA cut the pairs are measured with: the end of the scanned
    range, or the selection's own cut if it is looser."""
    hi = scan_ranges(model)["cda_max_m"]["range"][1]
    return max(float(hi), float(selection["cda_max_m"]))


def loose_values(loose: pd.DataFrame, names, cda_max_m: float, window_ns=None,
                 exactly_two: bool = False) -> dict:
    """{region: Σ weight} of the loose pairs that pass the CDA cut (and,
    with measured times, |Δt| < W with no third track within W)."""
    keep = ~(loose["cda_m"].to_numpy(float) > cda_max_m)
    if window_ns is not None:
        keep &= loose["dt_ns"].to_numpy(float) < window_ns
        if exactly_two:
            keep &= loose["d3_ns"].to_numpy(float) >= window_ns
    sums = pd.Series(loose["weight"].to_numpy(float)[keep]).groupby(
        loose["region"].to_numpy()[keep]).sum()
    return {r: float(sums.get(r, 0.0)) for r in names}


def window_shifts(inp: Inputs) -> tuple[float, float]:
    """Relative change of the estimate (all regions) with the window at the
    ends of its range, pairs re-selected (measured times)."""
    lo, hi = inp.model.ranges["window_ns"]
    w0 = inp.model.values["window_ns"]
    total = [sum(loose_values(inp.loose, inp.regions, inp.cda_max_m, w,
                              inp.exactly_two).values()) for w in (w0, lo, hi)]
    if not total[0] > 0:
        return 0.0, 0.0
    return total[1] / total[0] - 1.0, total[2] / total[0] - 1.0


# ---------------------------------------------------------------------------
# Smooth inputs: the estimate is the nominal one times a factor
# ---------------------------------------------------------------------------
def _spill_factor(model: SpillModel, inp: Inputs, n_reco_spill: float) -> float:
    """N_POT N_spill / N_sample² · P₂ · exp(−μ₃) of a spill model."""
    mu3 = n_reco_spill * model.pairing_probability() if inp.exactly_two else 0.0
    return model.pairs_per_weight(inp.pot_target, inp.pot_sample) * math.exp(-mu3)


def _ratio(name: str, inp: Inputs):
    """x ↦ estimate(x) / estimate(nominal) of a smooth input, and its
    physical domain."""
    if name == "flux_scale":
        return (lambda s: s * s * math.exp(-(s - 1.0) * inp.mu3)), (1e-9, 1e9)
    model = inp.model
    x0 = model.values[name]
    nominal = _spill_factor(model, inp, inp.n_reco_spill)

    def ratio(x):
        n_reco = inp.n_reco_spill * (x / x0 if name == "pot_per_spill" else 1.0)
        return _spill_factor(model.with_value(name, x), inp, n_reco) / nominal
    if name == "duty_factor":
        return ratio, (1e-6, 1.0)
    if name == "window_ns":
        return ratio, (x0 * 1e-6, min(x0 * 1e4, model.effective_length_s * 1e9))
    return ratio, (x0 * 1e-9, x0 * 1e9)


def _solve(ratio, rho: float, domain, x0: float):
    """(x, end): the x of ``domain`` with ratio(x) = rho first met walking
    from x0 in the direction in which the ratio moves towards rho
    (ratio(x0) = 1), or None if never met before ``end``, the end of the
    domain in that direction."""
    from scipy.optimize import brentq

    if rho == 1.0:
        return float(x0), float(x0)
    step = _safe(ratio, x0 * (1 + 1e-4)) - 1.0
    up = (step > 0) == (rho > 1.0)
    end = float(domain[1] if up else domain[0])
    prev_x, prev_f = x0, 1.0 - rho
    for x in np.geomspace(x0, end, 121)[1:]:
        f = _safe(ratio, x) - rho
        if not np.isfinite(f):
            return None, float(prev_x)
        if f == 0:
            return float(x), end
        if f * prev_f < 0:
            lo, hi = sorted((prev_x, x))
            return float(brentq(lambda v: ratio(v) - rho, lo, hi, rtol=1e-10)), end
        prev_x, prev_f = x, f
    return None, end


def _safe(ratio, x) -> float:
    try:
        return float(ratio(x))
    except (SpillError, ValueError, OverflowError):
        return math.nan


# ---------------------------------------------------------------------------
# Step inputs: the pairs re-selected
# ---------------------------------------------------------------------------
def _steps(positions, deltas):
    """(sorted distinct positions p_k, cumulative sum of the deltas up to and
    including p_k)."""
    p = np.asarray(positions, float)
    order = np.argsort(p, kind="stable")
    cum = np.cumsum(np.asarray(deltas, float)[order])
    p = p[order]
    last = np.r_[p[1:] != p[:-1], True] if len(p) else np.zeros(0, bool)
    return p[last], cum[last]


def _step_bound(p, cum, base: float, x0: float, target: float, right_open: bool):
    """(bound, relation) for a step function equal to ``base`` below p₀ and
    cum_k from p_k on (``right_open``: on [p_k, p_{k+1}); else on
    (p_k, p_{k+1}]): the cut that brings it to the target from x0, or
    (None, reason)."""
    below = (p <= x0) if right_open else (p < x0)
    value0 = base + (float(cum[below][-1]) if np.any(below) else 0.0)
    if value0 > target:
        above = np.nonzero(base + cum > target)[0]
        if base > target:
            return None, "not reachable: pairs without a measurable value stay"
        k = above[0]
        return float(p[k]), ("<" if right_open else "<=")
    if value0 == target:
        return float(x0), "="
    reach = np.nonzero((base + cum >= target) & (p >= x0))[0]
    if not len(reach):
        return None, "not reached within the pairs formed"
    return float(p[reach[0]]), (">=" if right_open else ">")


def _cda_bound(inp: Inputs, region: str, target: float):
    sub = inp.loose[inp.loose["region"] == region]
    if inp.mode == "bursts":
        w0 = inp.model.values["window_ns"]
        sub = sub[(sub["dt_ns"] < w0) & ((sub["d3_ns"] >= w0) | (not inp.exactly_two))]
    cda = sub["cda_m"].to_numpy(float)
    w = sub["weight"].to_numpy(float)
    nan = np.isnan(cda)
    p, cum = _steps(cda[~nan], w[~nan])
    return _step_bound(p, cum, float(w[nan].sum()), inp.cda_max_m, target, True)


def _window_bound(inp: Inputs, region: str, target: float):
    sub = inp.loose[(inp.loose["region"] == region)
                    & ~(inp.loose["cda_m"] > inp.cda_max_m)]
    dt, d3 = sub["dt_ns"].to_numpy(float), sub["d3_ns"].to_numpy(float)
    w = sub["weight"].to_numpy(float)
    leave = np.isfinite(d3) if inp.exactly_two else np.zeros(len(d3), bool)
    p, cum = _steps(np.r_[dt, d3[leave]], np.r_[w, -w[leave]])
    return _step_bound(p, cum, 0.0, inp.model.values["window_ns"], target, False)


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------
def _range_of(name: str, inp: Inputs, ranges: dict):
    """(value, [lo, hi], source, estimated) of an input, or a string: why it
    is not an input of this estimate."""
    model = inp.model
    if name == "cda_max_m":
        r = ranges["cda_max_m"]
        return inp.cda_max_m, list(r["range"]), r["source"], bool(r.get("estimated"))
    if name == "flux_scale":
        r = ranges["flux_scale"]
        return float(r.get("value", 1.0)), list(r["range"]), r["source"], \
            bool(r.get("estimated"))
    if inp.mode == "bursts" and name != "window_ns":
        return "measured: the bursts' POT and the tracks' times replace the spill model"
    if name not in model.used_parameters():
        return "not used: the time-structure file replaces it"
    return model.values[name], list(model.ranges[name]), model.sources[name], \
        model.estimated[name]


def _values_at(name: str, x: float, inp: Inputs, nominal: dict) -> dict:
    """{region: estimate} with the input ``name`` at x, the others nominal."""
    w0 = inp.model.values["window_ns"] if inp.mode == "bursts" else None
    if name == "cda_max_m":
        return loose_values(inp.loose, inp.regions, x, w0, inp.exactly_two)
    if name == "window_ns" and inp.mode == "bursts":
        return loose_values(inp.loose, inp.regions, inp.cda_max_m, x, inp.exactly_two)
    factor = _ratio(name, inp)[0](x)
    return {r: v * factor for r, v in nominal.items()}


def _needed(name: str, inp: Inputs, x0: float, value: float, target: float, region: str):
    """(x, relation) for the estimate of ``region`` to reach ``target`` with
    the input ``name`` alone, or (None, why not)."""
    if name == "cda_max_m":
        return _cda_bound(inp, region, target)
    if name == "window_ns" and inp.mode == "bursts":
        return _window_bound(inp, region, target)
    if not value > 0:
        return None, "not reachable: the estimate is 0 whatever this input"
    ratio, domain = _ratio(name, inp)
    x, end = _solve(ratio, target / value, domain, x0)
    if x is None:
        return None, (f"not reachable: {name} moved towards it up to {end:.3g} (the end "
                      f"of its physical domain) gives {value * _safe(ratio, end):.3g}")
    return x, "="


def _statement(name, region, value, target, x, relation, span) -> dict:
    unit = INPUTS[name][0]
    head = f"{region} {value:.3g} -> {target:.3g}: "
    if x is None:
        return {"value": None, "relation": None, "within_range": False,
                "statement": head + relation}
    inside = span[0] <= x <= span[1]
    where = "within" if inside else "outside"
    return {"value": x, "relation": relation, "within_range": bool(inside),
            "statement": head + f"{name} {relation} {x:.3g}{(' ' + unit) if unit else ''} "
                                f"({where} its range {span[0]:.3g}-{span[1]:.3g})"}


def _entry(name: str, inp: Inputs, ranges: dict, nominal: dict, targets: dict) -> dict:
    got = _range_of(name, inp, ranges)
    unit, meaning = INPUTS[name]
    if isinstance(got, str):
        return {"used": False, "reason": got, "unit": unit, "meaning": meaning}
    x0, span, source, estimated = got
    xs = np.unique([float(f"{x:.12g}") for x in np.r_[np.linspace(*span, _POINTS), x0]])
    points = [{"value": float(x), "regions": _values_at(name, float(x), inp, nominal)}
              for x in xs]
    needed = {r: _statement(name, r, nominal[r], t, *_needed(name, inp, x0, nominal[r], t, r),
                            span)
              for r, t in targets.items()}
    return {"used": True, "value": float(x0), "range": [float(v) for v in span],
            "unit": unit, "meaning": meaning, "estimated": estimated, "source": source,
            "how": _HOW[name if not (name == "window_ns" and inp.mode == "bursts")
                        else "window_bursts"],
            "points": points, "to_published": needed}


_HOW = {"cda_max_m": "pairs measured once with the loosest cut, the cut re-applied",
        "window_ns": "spill model: P2(W) and exp(-mu3(W)) recomputed",
        "window_bursts": "pairs formed in the widest window, |dt| < W and no third "
                         "track within W re-applied",
        "flux_scale": "every track weight x s: estimate x s^2 exp(-(s-1) mu3)",
        "pot_per_spill": "spill model: N_spill P2 exp(-mu3), mu3 proportional to N_spill",
        "duty_factor": "spill model: P2(D) and exp(-mu3(D)) recomputed"}


def sensitivity_block(inp: Inputs) -> dict:
    """The ``sensitivity`` block of the combinatorial outputs (module
    docstring): per input its value, range and source, the estimate per
    region at points of the range, and what the input would have to be for
    each region to reach its published value."""
    ranges = scan_ranges(inp.model)
    w0 = inp.model.values["window_ns"] if inp.mode == "bursts" else None
    nominal = loose_values(inp.loose, inp.regions, inp.cda_max_m, w0, inp.exactly_two)
    published = ranges.get("published")
    targets = {}
    if published:
        scale = inp.pot_target / float(published["pot"])
        targets = {r: float(v) * scale for r, v in published["values"].items()
                   if r in inp.regions}
    return {"method": "each input moved alone over its range, the others at their "
                      "values; 'to_published': what that input alone would have to be for "
                      "the region's estimate to equal the published value (scaled to the "
                      "target POT). Information only: nothing is fitted, the estimate "
                      "does not change (backtrace.combinatorial.sensitivity)",
            "mode": inp.mode, "estimate_sign": inp.estimate_sign, "nominal": nominal,
            "published": None if not published else {
                "values": dict(published["values"]),
                "uncertainties": dict(published.get("uncertainties", {})),
                "pot": float(published["pot"]), "at_target_pot": targets,
                "source": published["source"]},
            "inputs": {name: _entry(name, inp, ranges, nominal, targets) for name in INPUTS}}
