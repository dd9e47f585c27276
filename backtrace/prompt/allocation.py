"""Allocation of the forced interactions among histories and strata, and of
the histories among the tracks.

A stratum is (process, volume, band of the muon's kinetic energy), e.g.
'mumu_pair@TRIM5@100+GeV' (:mod:`backtrace.interactions.forced`). Each
history h receives draws; m_{h,s} is the expected number of its draws in
stratum s, a draw carries the weight h_w G_{h,s} / m_{h,s} (G_{h,s} the
stratum's importance sum along the path), so the estimate is unbiased for
any allocation with m_{h,s} > 0 wherever G_{h,s} > 0; the allocation only
moves the Monte Carlo variance.

Allocations of a run (``--allocation``):

- ``auto`` (default): a pilot round in which every track receives K draws
  per history, each of its processes the same number, spread over its
  histories and strata in proportion to π_h G_{h,s} ('track' plan); then,
  in every later round, the *importance allocation* (:func:`importance_plan`)
  over all tracks, histories and strata at once: m_{h,s} ∝ W_h G_{h,s} r_s,
  W_h = (track weight) × (posterior share of the history) and r_s the
  root-mean-square selected outcome per draw of stratum s in the target
  cell, measured on every draw so far. That is the Neyman (variance-optimal)
  allocation of the joint strata (history, stratum) with the outcome's
  second moment modelled per stratum: draws of one stratum then carry equal
  weights, heavy tracks and thick paths are split into many draws, light
  ones are rouletted (drawn with a probability below 1). A share
  :data:`DEFENSIVE` of every round follows the pilot rule (equal totals per
  process) so that no stratum is starved by a noisy pilot.
- ``uniform``: every process the same share of each history's K draws
  ('shares' plan), a process's share spread over its strata in proportion
  to G.
- ``natural``: the former method: K draws per history, a point in
  proportion to σ ΔX (the trident, ~1e-4 of the forced cross section, is
  then almost never forced), no veto-aware importance.
- explicit shares, ``NAME=SHARE,...`` with processes or stratum labels
  (normalised; strata not named get none and are not forced).

With ``uniform`` and explicit shares, a share :data:`NATURAL_DEFENSIVE` of
every history's draws follows the natural proportions, which bounds every
weight.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtrace.interactions.forced import DrawPlan, stratum_process

__all__ = ["ALLOCATION_MODES", "DEFENSIVE", "NATURAL_DEFENSIVE", "parse_allocation",
           "importance_plan", "stratum_rms_outcome", "expected_draws", "describe", "track_shares",
           "track_passes"]

ALLOCATION_MODES = ("auto", "uniform", "natural")
#: Share of the draws of an importance round that follows the pilot rule
#: (equal totals per process, in proportion to W_h G_{h,s} within a
#: process): a defensive mixture, so that no stratum goes unsampled and a
#: wrong pilot cannot remove one [est: 10 %, range 5–30 %; it costs at most
#: ~10 % of the optimal variance and bounds every draw's weight by 1/0.1 of
#: the pilot's].
DEFENSIVE = 0.1
#: Share of every stratified draw that follows the natural allocation
#: (q_s ∝ P_s, per history; ``RunConfig.forcing_defensive``), so that a
#: stratum the allocation starves cannot return a huge weight: P_s / q_s ≤
#: P / 0.1 (a defensive mixture with the nominal distribution, T. Hesterberg,
#: Technometrics 37 (1995) 185) [est: 10 %, range 5–30 %: it costs at most
#: ~10 % of the optimal variance].
NATURAL_DEFENSIVE = 0.1


def parse_allocation(text: str, processes) -> str | tuple[tuple[str, float], ...]:
    """'auto' | 'uniform' | 'natural', or 'stratum=share,...' →
    ((stratum, share), ...); ValueError naming the bad piece."""
    text = text.strip()
    if text in ALLOCATION_MODES:
        return text
    shares = []
    for piece in text.split(","):
        name, sep, value = piece.partition("=")
        name = name.strip()
        if not sep or name.partition("@")[0] not in processes:
            raise ValueError(f"allocation {piece!r}: expected STRATUM=SHARE with a process "
                             f"among {', '.join(processes)} (or process@z0-z1), or one of "
                             f"{', '.join(ALLOCATION_MODES)}")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"allocation {piece!r}: the share is not a number") from None
        if not share >= 0 or not np.isfinite(share):
            raise ValueError(f"allocation {piece!r}: the share must be >= 0")
        shares.append((name, share))
    if not sum(s for _, s in shares) > 0:
        raise ValueError(f"allocation {text!r}: the shares sum to zero")
    return tuple(shares)


#: Pseudo-draws of the shrinkage of each stratum's outcome moment towards
#: its process's [est: 100, range 30–300]: a stratum with few draws (or no
#: entry yet) is given the process-wide moment, one with many its own; a
#: noisy pilot then cannot starve a stratum that has not shown an entry.
PSEUDO_DRAWS = 100.0


def stratum_rms_outcome(candidates, drawn, pseudo_draws: float = PSEUDO_DRAWS) -> dict:
    """{stratum: r_s}, r_s = √((Σ_draws f² + n₀ m_p) / (N_s + n₀)): the
    root-mean-square selected outcome per draw of stratum s, f the summed
    ``outcome`` (the candidate weight over its draw's allocation weight:
    final-state, veto, identification and product factors) of a draw's
    candidates in the target cell, N_s the draws of s (``drawn``: Series
    over strata, all passes), shrunk with n₀ = ``pseudo_draws`` towards
    m_p, the mean f² per draw of the stratum's process. Independent of the
    allocation the draws were made with."""
    if drawn is None or not len(drawn):
        return {}
    n = drawn.astype(float)
    f2 = pd.Series(0.0, index=n.index)
    if candidates is not None and len(candidates):
        c = candidates.sort_values(["track_index", "sample_index", "interaction"],
                                   kind="stable")
        f = c.groupby(["stratum", "track_index", "sample_index", "interaction"],
                      sort=True)["outcome"].sum()
        f2 = f2.add((f.astype(float) ** 2).groupby(level=0, sort=True).sum(),
                    fill_value=0.0).reindex(n.index, fill_value=0.0)
    proc = pd.Series([stratum_process(s) for s in n.index], index=n.index)
    m_p = f2.groupby(proc).sum() / n.groupby(proc).sum()
    prior = proc.map(m_p).to_numpy(float)
    r2 = (f2.to_numpy() + pseudo_draws * prior) / (n.to_numpy() + pseudo_draws)
    return {s: float(np.sqrt(v)) for s, v in zip(n.index, r2) if v > 0}


def expected_draws(plan, g_mean, track_weight, fraction) -> pd.Series:
    """Σ_s W G ρ_s per track under a 'global' plan: the draws its new
    histories would receive (Series over the tracks of ``track_weight``)."""
    rates, default = dict(plan.rates), dict(plan.process_rates)
    rho = g_mean["stratum"].map(
        lambda s: rates.get(s, default.get(stratum_process(s), 0.0))).to_numpy(float)
    scale = (track_weight.reindex(g_mean["track_index"]).to_numpy(float)
             * fraction.reindex(g_mean["track_index"]).fillna(0.0).to_numpy(float))
    per = pd.Series(np.nan_to_num(scale) * g_mean["g"].to_numpy(float) * rho,
                    index=g_mean["track_index"].to_numpy()).groupby(level=0).sum()
    return per.reindex(track_weight.index, fill_value=0.0)


def importance_plan(r_s: dict, g_mean, track_weight, fraction, budget: float,
                    processes, per_history: float, defensive: float = DEFENSIVE):
    """The 'global' draw plan of an importance round (module docstring).

    ``r_s``: :func:`stratum_rms_outcome`; ``g_mean``: DataFrame (track_index,
    stratum, g) of the posterior-mean importance Ḡ_{t,s} of each track's
    paths; ``track_weight``, ``fraction``: Series over track_index, the
    input weight and the pass fraction n_next,t / N_t of the round's
    histories; ``budget``: the draws of the round. The rates ρ_s make the
    expected draws Σ_{h,s} W_h G_{h,s} ρ_s = budget, (1 − ``defensive``) of
    them ∝ W G r_s and the rest ∝ W G with equal totals per process."""
    g = g_mean.copy()
    scale = (track_weight.reindex(g["track_index"]).to_numpy(float)
             * fraction.reindex(g["track_index"]).fillna(0.0).to_numpy(float))
    g["wg"] = np.nan_to_num(scale) * g["g"].to_numpy(float)
    g["process"] = g["stratum"].map(stratum_process)
    s_proc = g.groupby("process")["wg"].sum()
    present = [p for p in processes if s_proc.get(p, 0.0) > 0]
    if not present:
        return DrawPlan("track", per_history)
    d = float(defensive)
    r = g["stratum"].map(r_s).fillna(0.0).to_numpy(float)
    s_opt = float(np.sum(g["wg"].to_numpy() * r))
    if not s_opt > 0:
        d = 1.0
    process_rates = {p: d * budget / (len(present) * float(s_proc[p])) for p in present}
    rates = {}
    for s, rs in sorted(r_s.items()):
        p = stratum_process(s)
        base = process_rates.get(p, 0.0)
        rates[s] = base + ((1 - d) * budget * rs / s_opt if s_opt > 0 else 0.0)
    return DrawPlan("global", per_history, rates=tuple(sorted(rates.items())),
                    process_rates=tuple(sorted(process_rates.items())))


def describe(allocation, top: int = 3) -> str:
    """One line for outputs: the mode, or the largest shares."""
    if isinstance(allocation, str):
        return allocation
    if isinstance(allocation, dict) and "mode" in allocation:
        return _describe_plan(allocation, top)
    shares = dict(allocation)
    if len(set(shares.values())) == 1:
        kind = "strata" if any("@" in s for s in shares) else "processes"
        return f"equal shares over {len(shares)} {kind}"
    items = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{p} {s:.3g}" for p, s in items[:top])
    return text + (f" (+{len(items) - top} strata)" if len(items) > top else "")


def _describe_plan(plan: dict, top: int) -> str:
    mode = plan["mode"]
    if mode == "natural":
        return "natural (no strata)"
    if mode == "track":
        return "pilot: equal draws per process within each track"
    if mode == "shares":
        shares = plan.get("shares")
        return "equal shares per process" if isinstance(shares, str) \
            else describe(shares, top)
    rates = plan.get("rates", {})
    items = sorted(rates.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return (f"importance over {len(rates)} strata, highest rates "
            + ", ".join(f"{s} {v:.3g}" for s, v in items))


# ---------------------------------------------------------------------------
# Histories among the tracks
# ---------------------------------------------------------------------------
#: Share of a round's histories spread evenly over the tracks when histories
#: follow the track weights, so that light tracks keep being sampled [est:
#: 10 %, as for the strata].
TRACK_DEFENSIVE = 0.1


def track_shares(weights, defensive: float = TRACK_DEFENSIVE):
    """Target share of the histories per track: (1 − d) w_t / Σw + d / T.
    With the same relative spread per history in every track, the variance
    of Σ_t w_t Y_t for a fixed number of histories is smallest for n_t ∝ w_t
    (Neyman allocation over tracks); the defensive part keeps every track
    sampled. ``weights``: Series over track_index (≥ 0)."""
    w = weights.clip(lower=0.0).astype(float)
    total = float(w.sum())
    uniform = 1.0 / len(w)
    if not total > 0:
        return w * 0.0 + uniform
    return (1 - defensive) * w / total + defensive * uniform


def track_passes(n_hist, shares, budget: float, max_samples: int) -> list[tuple[int, int, list]]:
    """The next round when histories follow the track weights: which tracks
    double their histories (or fill up to ``max_samples``). ``n_hist``:
    histories so far per track (Series over track_index); ``shares``:
    :func:`track_shares`; ``budget``: the histories the round may add
    (e.g. the next uniform increment × tracks). Of the tracks below the
    cap, those furthest below their share (n*/n, n* = share × (Σn +
    budget), shares and Σn over these tracks) go first, while adding
    brings them closer to n* (n*/n > √2) and until the budget is spent (at
    least one track). The choice uses only the weights and the counts,
    never the sampled values, so the estimate stays unbiased. Returns
    [(first sample = n, histories added, [track indices])] grouped by the
    tracks' current count."""
    n = n_hist.astype(np.int64)
    room = n[n < max_samples]
    if room.empty:
        return []
    share = shares.reindex(room.index).fillna(0.0)
    target = share / share.sum() * (float(room.sum()) + budget) if share.sum() > 0 \
        else share * 0.0 + 1.0
    ratio = (target / room).sort_values(ascending=False, kind="stable")
    add = np.minimum(room, max_samples - room).reindex(ratio.index)
    cost = add.cumsum()
    chosen = ratio.index[(cost <= budget).to_numpy() | (np.arange(len(cost)) == 0)]
    # doubling brings n closer to n* (in ratio) when n*/n > √2
    chosen = [t for t in chosen if ratio[t] > np.sqrt(2.0)] or [ratio.index[0]]
    groups: dict[tuple[int, int], list] = {}
    for t in sorted(chosen):
        groups.setdefault((int(n[t]), int(add[t])), []).append(int(t))
    return [(first, k, tracks) for (first, k), tracks in sorted(groups.items())]
