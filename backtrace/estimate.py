"""Weighted yields, their statistical uncertainty, limits and systematics.

The statistical unit is the observed track (METHOD.md): histories of one
track are correlated, so the variance of a yield is Σ_tracks (Σ_{h∈track} w_h)²
— the Σw² of the per-track sums — and the effective number of tracks is
(Σw)²/Σw². When a region has no MC entry, the 90 % CL upper limit is
2.303 × w̄, where w̄ is the weight an entry would carry: −ln(0.10) = 2.303 is
the Poisson upper limit for zero observed events (PDG, Statistics review).
w̄ follows the weighted-MC convention "mean weight of the events just
outside the cuts" (PHYSICS_REFERENCES.md §10), per category
(:func:`weight_per_entry`): the mean weight of that category's two-track
pairs (opposite charges, in the STRAW acceptance) before the momentum,
vertex, CDA, muon-ID and region cuts — the cuts decide whether an entry is
counted, not (to first order) what it weighs; if the category has no such
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
           "UPPER_LIMIT_METHOD"]

#: Poisson 90 % CL upper limit for zero observed events: −ln(0.1).
POISSON_ZERO_90 = float(-np.log(0.1))
UPPER_LIMIT_METHOD = (
    "90% CL upper limit of a cell without MC entries: 2.303 x w, the Poisson "
    "limit for zero entries times the weight w an entry of that category would "
    "carry = mean weight of the category's opposite-charge two-track pairs in "
    "the STRAW acceptance before the momentum/vertex/CDA/muon-ID/region cuts; "
    "if none: mean over all categories' pairs; if no pair at all: mean "
    "forced-interaction weight (conservative)")


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
                        "basis": f"mean weight of {cat} two-track pairs before cuts"}
        elif len(w):
            out[cat] = {"weight": float(w.mean()), "n": int(len(w)),
                        "basis": "mean weight of all two-track pairs before cuts "
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
