"""Weighted yields, their statistical and MC uncertainties and limits (the
passes and their combination: :mod:`backtrace.prompt.passes`).

The statistical unit is the observed track (``docs/method.md``): histories of one
track are correlated, so the variance of a yield is Σ_tracks (Σ_{h∈track} w_h)²
— the Σw² of the per-track sums — and the effective number of tracks is
(Σw)²/Σw². When a region has no MC entry, the 90 % CL upper limit is
2.303 × w̄, where w̄ is the weight an entry would carry: −ln(0.10) = 2.303 is
the Poisson upper limit for zero observed events (PDG, Statistics review).
w̄ follows the weighted-MC convention "mean weight of the events just
outside the cuts" (``docs/physics.md``, "Upper limits"), per category
(:func:`weight_per_entry`): the mean weight of that category's two-track
pairs (opposite charges, in the STRAW acceptance) that could be selected,
with the identification probability and the upstream-activity survival
that a candidate of them would carry, before the momentum, vertex, CDA and
region cuts — those cuts decide whether an entry is counted, not (to first
order) what it weighs. Each pair's weight is its history's share of the
track, so w̄ falls as 1/(histories per track): the limit shrinks with the
Monte Carlo exposure. If the category has no such
pair, the mean over all categories' pairs; if there is no pair at all, the
mean weight of the forced interactions (conservative: a candidate's weight
is its interaction's times product factors ≤ 1). The method and the w̄ used
are written into the outputs. Systematic variations are listed one by one
and combined in quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Background categories of the NA62 two-track analysis.
CATEGORIES = ("mu-mu", "mu-pi", "other")

__all__ = ["Yield", "weighted_yield", "upper_limit_90", "quadrature",
           "yields_table", "weight_per_entry", "POISSON_ZERO_90",
           "UPPER_LIMIT_METHOD", "mc_error", "total_prompt", "CATEGORIES", "concat"]

#: Poisson 90 % CL upper limit for zero observed events: −ln(0.1).
POISSON_ZERO_90 = float(-np.log(0.1))
UPPER_LIMIT_METHOD = (
    "90% CL upper limit of a cell without MC entries: 2.303 x w, the Poisson "
    "limit for zero entries times the weight w an entry of that category would "
    "carry = mean weight, identification probability and upstream-activity "
    "survival included, of the category's two-track pairs in the STRAW "
    "acceptance that could be selected, before the momentum/vertex/CDA/region "
    "cuts (it falls as 1/histories per track); if none: mean over all "
    "categories' pairs; if no pair at all: mean forced-interaction weight "
    "(conservative)")


@dataclass
class Yield:
    value: float
    stat: float
    n_mc: int
    n_eff: float
    upper_limit_90: float | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def weighted_yield(weights, track_ids, *, weight_per_entry: float | None = None) -> Yield:
    """Σw with the per-track Σw² error; the 90 % upper limit if empty."""
    w = np.asarray(weights, float)
    if len(w) == 0 or not np.any(w != 0):
        ul = None if weight_per_entry is None else upper_limit_90(weight_per_entry)
        return Yield(0.0, 0.0, int(len(w)), 0.0, ul)
    per_track = pd.Series(w).groupby(np.asarray(track_ids)).sum().to_numpy()
    total = float(per_track.sum())
    var = float(np.sum(per_track ** 2))
    return Yield(total, float(np.sqrt(var)), int(len(w)),
                 total * total / var if var > 0 else 0.0)


def upper_limit_90(weight_per_entry: float) -> float:
    return POISSON_ZERO_90 * float(weight_per_entry)


def weight_per_entry(pairs: pd.DataFrame, categories,
                     interaction_weight: float, n_interactions: int) -> dict:
    """{category: {"weight": w̄, "basis": …, "n": entries averaged}} for the
    upper limits of empty cells (convention in the module docstring).
    ``pairs``: columns category, weight (pre-selection two-track pairs)."""
    w = pairs["weight"].to_numpy(float) if len(pairs) else np.zeros(0)
    out = {}
    for cat in categories:
        mine = w[(pairs["category"] == cat).to_numpy()] if len(pairs) else w
        if len(mine):
            out[cat] = {"weight": float(mine.mean()), "n": int(len(mine)),
                        "basis": f"mean weight of the {cat} two-track pairs that could "
                                 "be selected, before the kinematic cuts"}
        elif len(w):
            out[cat] = {"weight": float(w.mean()), "n": int(len(w)),
                        "basis": "mean weight of all selectable two-track pairs "
                                 f"(no {cat} pair)"}
        else:
            out[cat] = {"weight": interaction_weight / max(n_interactions, 1),
                        "n": int(n_interactions),
                        "basis": "mean forced-interaction weight (no two-track "
                                 "pair at all; conservative)"}
    return out


def quadrature(deltas) -> float:
    """√Σδ² of signed or unsigned shifts."""
    return float(np.sqrt(np.sum(np.square(list(deltas)))))


def yields_table(candidates: pd.DataFrame, regions, categories,
                 weight_per_entry: float) -> dict:
    """{region: {category: Yield}} from candidates with columns region,
    category, weight, track_index."""
    out = {}
    for region in regions:
        out[region] = {}
        for cat in categories:
            sel = candidates[(candidates["region"] == region)
                             & (candidates["category"] == cat)]
            out[region][cat] = weighted_yield(sel["weight"], sel["track_index"],
                                              weight_per_entry=weight_per_entry)
    return out


# ---------------------------------------------------------------------------
# Monte Carlo error of the self-normalised per-track estimates
# ---------------------------------------------------------------------------
def mc_error(candidates: pd.DataFrame, norm: pd.Series, norm2: pd.Series,
             interactions_per_history: int | None = None) -> float:
    """Monte Carlo part of the error of Σw over ``candidates``: the
    delta-method variance of each track's self-normalised importance-sampling
    estimate Y_t = Σ_h π_h f_h (π_h = ω_hφ_h / Σ ω φ over the track's
    histories), Var_t ≈ Σ_h π_h² (f_h − Y_t)² = Σ_h (w_h − π_h Y_t)², w_h the
    summed candidate weight of history h (A. B. Owen, *Monte Carlo theory,
    methods and examples* (2013), ch. 9, self-normalised importance
    sampling), summed over tracks. Unlike the per-track Σw² error (which also
    holds the spread between the observed tracks, a property of the data
    sample) it falls as 1/√(histories per track). ``norm``/``norm2``: per
    track Σ ω φ and Σ (ω φ)² over all histories."""
    if not len(candidates):
        return 0.0
    h = candidates.groupby(["track_index", "sample_index"]).agg(
        w=("weight", "sum"), raw=("history_raw", "first"))
    t = h.index.get_level_values(0)
    pi = h["raw"].to_numpy() / norm.reindex(t).to_numpy()
    y = h["w"].groupby(level=0).sum()
    yh = y.reindex(t).to_numpy()
    w = h["w"].to_numpy()
    # histories with candidates: (w − πY)²; without: (πY)² = Y²Σπ² − Σ_with (πY)²
    with_c = pd.Series((w - pi * yh) ** 2 - (pi * yh) ** 2, index=t).groupby(level=0).sum()
    sum_pi2 = norm2.reindex(y.index) / norm.reindex(y.index) ** 2
    var = with_c.reindex(y.index).to_numpy() + y.to_numpy() ** 2 * sum_pi2.to_numpy()
    return float(np.sqrt(max(float(np.sum(var)), 0.0)
                         + _within_history_variance(candidates, interactions_per_history)))


def _within_history_variance(candidates: pd.DataFrame, k: int | None = None) -> float:
    """Σ_h Var(w_h) from the spread of a history's n_h forced draws: w_h =
    Σ_i c_i, Var(w_h) ≈ n_h s², s² the sample variance of the n_h draws'
    contributions c_i (zeros included; n_h from the ``history_draws``
    column, else ``k``; histories with one draw add nothing). The delta
    method above treats w_h as a fixed function of the history and misses
    it — most visibly when the posterior puts all weight on one history
    (then it gives 0)."""
    if "interaction" not in candidates:
        return 0.0
    keys = ["track_index", "sample_index", "interaction"]
    c = candidates.groupby(keys)["weight"].sum()
    by_h = c.groupby(level=[0, 1])
    s1, s2 = by_h.sum(), (c ** 2).groupby(level=[0, 1]).sum()
    if "history_draws" in candidates:
        n = candidates.groupby(["track_index", "sample_index"])["history_draws"].first() \
            .reindex(s1.index).to_numpy(float)
    elif k:
        n = np.full(len(s1), float(k))
    else:
        return 0.0
    s1, s2 = s1.to_numpy(), s2.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(n >= 2, n / (n - 1) * (s2 - s1 ** 2 / n), 0.0)
    return float(np.sum(np.maximum(v, 0.0)))


def total_prompt(est, interactions_per_history: int | None = None
                 ) -> tuple[float, float, float]:
    """(Σw, per-track Σw² error, MC error) of all candidates of a combined
    estimate (:class:`backtrace.prompt.passes.Combined`; all categories and
    regions, outside included)."""
    c = est.candidates
    if not len(c):
        return 0.0, 0.0, 0.0
    y = weighted_yield(c["weight"], c["track_index"])
    return y.value, y.stat, mc_error(c, est.norm, est.norm2, interactions_per_history)


def concat(frames, empty):
    """pd.concat of the non-empty frames, or ``empty``."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames) if frames else empty
