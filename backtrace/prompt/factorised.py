"""NA62's factorised estimate of the prompt background, next to the direct one.

NA62's e+e− search (2021 dump data) could not simulate enough events that
pass every cut, so it factorised the prompt background:

    N(R) = N(in FV, PID) · (1 − η_veto) · (1 − η_R),   R = SR, CR,

N(in FV, PID) the events with a vertex in the fiducial volume and both
tracks identified, 1 − η_veto the probability that such an event survives
the LAV and ANTI0 vetoes, 1 − η_R the probability that it falls in region
R; both η's measured on the simulated events *before* the vetoes, assuming
that the vetoes and the regions are independent. A simulation that applies
every cut measures the direct N(R) as well, and their ratio tests that
assumption.

From the selected candidates (every cut applied, each with its weight w and
``eta_veto_survival`` S, the survival of the η vetoes alone —
:mod:`backtrace.detector.candidates`), summed over categories:

- A = Σ w / S over all regions: N(in FV, PID), the estimate before the η
  vetoes (every other cut — MUV3 veto, upstream activity, track cuts — applied);
- B = Σ w over all regions: after the η vetoes, so 1 − η_veto = B / A;
- C_R = Σ w / S in R: 1 − η_R = C_R / A;
- factorised N(R) = A · (B/A) · (C_R/A) = B C_R / A;
- direct N(R) = D_R = Σ w in R; the ratio direct / factorised = D_R A / (B C_R).

Uncertainties: the delta method on the per-track sums (the observed track
is the statistical unit, as for the yields: histories of one track are
correlated), Var f = Σ_t (Σ_k ∂f/∂X_k · x_k,t)², x_k,t the part of sum X_k
from track t. A sum without entries is 0 with the 90 % CL limit 2.303 w̄
(w̄ the mean weight per candidate, before or after the η vetoes as the sum
is; the convention of :mod:`backtrace.prompt.estimate`). The weights before the
vetoes are w / S: a veto with inefficiency 0 makes S = 0 and the estimate
before it unknowable (reported as not available).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtrace.prompt.estimate import POISSON_ZERO_90

__all__ = ["factorised_estimate", "delta_method", "METHOD"]

METHOD = ("N(R) = N(in FV, PID) x (1 - eta_veto) x (1 - eta_R) (NA62 e+e- search): "
          "N(in FV, PID) = sum of w/S over the selected candidates (S = survival of the "
          "eta vetoes alone), 1 - eta_veto = sum w / sum w/S, 1 - eta_R = sum_R w/S / "
          "sum w/S; direct N(R) = sum_R w; all categories together; uncertainties: delta "
          "method on the per-track sums (statistical, MC and track sample); empty sums: "
          "0 with the 90% CL limit 2.303 x mean weight per candidate")


def delta_method(per_track: pd.DataFrame, gradient: dict) -> float:
    """Standard deviation of f(X) from per-track parts of the sums X
    (columns of ``per_track``, one row per track) and the gradient
    {column: ∂f/∂X} at the totals."""
    contrib = sum(per_track[k].to_numpy(float) * g for k, g in gradient.items())
    return float(np.sqrt(np.sum(np.square(contrib))))


def _entry(value, stat, n_mc, upper=None) -> dict:
    return {"value": float(value), "stat": float(stat), "n_mc": int(n_mc),
            "upper_limit_90": None if upper is None else float(upper)}


def factorised_estimate(candidates: pd.DataFrame, region_names, eta_vetoes) -> dict:
    """The factorised and the direct estimate per region (module docstring)
    from combined candidates (columns weight, eta_veto_survival, region,
    track_index)."""
    out = {"eta_vetoes": list(eta_vetoes), "method": METHOD, "available": True}
    c = candidates
    if not len(c):
        out.update(available=False, reason="no selected candidate")
        return out
    s = c["eta_veto_survival"].to_numpy(float) if "eta_veto_survival" in c \
        else np.ones(len(c))
    if np.any(~(s > 0)):
        out.update(available=False, reason="an eta veto with inefficiency 0 (its survival "
                                           "is 0: the yield before it is not recoverable)")
        return out
    w = c["weight"].to_numpy(float)
    before = w / s
    parts = pd.DataFrame({"track": c["track_index"].to_numpy(), "A": before, "B": w})
    for r in region_names:
        mine = (c["region"] == r).to_numpy()
        parts[f"C:{r}"] = np.where(mine, before, 0.0)
        parts[f"D:{r}"] = np.where(mine, w, 0.0)
    per_track = parts.groupby("track").sum()
    tot = per_track.sum()
    a, b = tot["A"], tot["B"]
    n = len(c)
    w_before, w_after = before.mean(), w.mean()
    out["n_before_eta"] = _entry(a, delta_method(per_track, {"A": 1.0}), n)
    out["n_after_eta"] = _entry(b, delta_method(per_track, {"B": 1.0}), n)
    out["one_minus_eta_veto"] = _entry(
        b / a, delta_method(per_track, {"B": 1 / a, "A": -b / a ** 2}), n)
    out["regions"] = {}
    for r in region_names:
        cr, dr = tot[f"C:{r}"], tot[f"D:{r}"]
        n_r = int(((c["region"] == r) & (c["weight"] != 0)).sum())
        if n_r == 0:
            ul_c = POISSON_ZERO_90 * w_before
            one_minus = _entry(0.0, 0.0, 0, ul_c / a)
            fact = _entry(0.0, 0.0, 0, b * ul_c / a)
            direct = _entry(0.0, 0.0, 0, POISSON_ZERO_90 * w_after)
            ratio = None
        else:
            one_minus = _entry(cr / a, delta_method(
                per_track, {f"C:{r}": 1 / a, "A": -cr / a ** 2}), n_r)
            f = b * cr / a
            fact = _entry(f, delta_method(per_track, {
                "B": cr / a, f"C:{r}": b / a, "A": -f / a}), n_r)
            direct = _entry(dr, delta_method(per_track, {f"D:{r}": 1.0}), n_r)
            q = dr / f
            ratio = {"value": float(q), "stat": delta_method(per_track, {
                f"D:{r}": q / dr if dr else 1 / f, "B": -q / b,
                f"C:{r}": -q / cr, "A": q / a})}
        out["regions"][r] = {"one_minus_eta": one_minus, "factorised": fact,
                             "direct": direct, "direct_over_factorised": ratio}
    return out
