"""Allocation of the forced interactions among strata (stratified forcing) and of
the histories among the tracks.

A stratum is a process, or a process in one z slice of the forcing window
(``forcing_slice_m``, default 5 m: 'mumu_pair@100-105'). Each forced
interaction first draws a stratum s with probability q_s (the allocation,
restricted to the strata the history can undergo), then a point of it in
proportion to σ_p ΔX, and carries the weight P_s / q_s (P_s = Σ σ_p ΔX over
the stratum's segments of the path): the estimate is unbiased for any
allocation with q_s > 0 wherever P_s > 0, which only moves the Monte Carlo
variance (:class:`backtrace.interactions.forced.ForcedSampler`).

Allocations of a run (``--allocation``):

- ``natural``: no stratification, a process in proportion to its cross
  section (q_p = P_p / P). The trident, ~1e-4 of the forced cross section,
  is then almost never forced although it makes the μ-μ yield.
- ``uniform``: every process gets the same share (the slice within a
  process then follows σ ΔX).
- ``auto`` (default): ``uniform`` for the first round; with
  ``--target-rel-unc``, each later round uses the Neyman allocation of the
  strata (:func:`neyman`) measured on the rounds before it for the target
  cell, mixed with a uniform share (:data:`DEFENSIVE`) so that every stratum
  stays sampled and its contribution measured.

Whatever the allocation, a share :data:`NATURAL_DEFENSIVE` of every
stratified draw follows the natural one, which bounds every weight.
- explicit shares, ``STRATUM=SHARE,...`` with processes or
  'process@z0-z1' strata (normalised; strata not named get none and are
  not forced).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ALLOCATION_MODES", "DEFENSIVE", "NATURAL_DEFENSIVE", "parse_allocation",
           "neyman", "describe", "track_shares", "track_passes"]

ALLOCATION_MODES = ("auto", "uniform", "natural")
#: Share of the forced interactions that a Neyman allocation spreads evenly
#: over all strata (a defensive mixture), so that no stratum goes unsampled
#: and a wrong pilot cannot remove one [est: 10 %; it costs at most ~10 % of
#: the optimal variance and keeps every stratum at >= 0.1 / n_strata].
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


def neyman(parts, strata, defensive: float = DEFENSIVE) -> tuple:
    """The allocation that minimises the variance of Σw over the target
    cell's candidates. ``parts``: (candidates, draws per stratum) of each
    earlier pass; ``strata``: the strata to share. A stratum's contribution
    to the second moment is A_s / q_s with A_s = P_s² E_s[f²]; a pass that
    drew stratum s with frequency q⁰_s (its draws over all draws, which
    includes the restriction to the strata each path allows) measures
    N A_s ≈ q⁰_s Σ_{candidates of s} w² over its N draws: the optimum is
    q_s ∝ √A_s, pooled over the passes (the sum over passes of q⁰_s Σw²
    weights each by its draws), here mixed with ``defensive`` spread evenly
    over the strata. Without candidates: None (keep the allocation)."""
    a_s = dict.fromkeys(strata, 0.0)
    for candidates, drawn in parts:
        if candidates is None or not len(candidates) or drawn is None or not len(drawn):
            continue
        n = float(drawn.sum())
        # a fixed summation order: the shares (and so the next round) must not
        # depend on how the tracks were batched (--jobs, --batch-size)
        c = candidates.sort_values([k for k in ("track_index", "sample_index", "weight")
                                    if k in candidates], kind="stable")
        w2 = (c["weight"].astype(float) ** 2).groupby(c["stratum"], sort=True).sum()
        for s, v in w2.items():
            if s in a_s:
                # pooled over passes in proportion to their draws
                a_s[s] += float(drawn.get(s, 0.0)) / n * float(v)
    if not any(v > 0 for v in a_s.values()):
        return None
    raw = {s: float(np.sqrt(v)) for s, v in a_s.items()}
    norm = sum(raw.values())
    return tuple((s, (1 - defensive) * v / norm + defensive / len(strata))
                 for s, v in raw.items())


def describe(allocation, top: int = 3) -> str:
    """One line for outputs: the mode, or the largest shares."""
    if isinstance(allocation, str):
        return allocation
    shares = dict(allocation)
    if len(set(shares.values())) == 1:
        kind = "strata" if any("@" in s for s in shares) else "processes"
        return f"equal shares over {len(shares)} {kind}"
    items = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{p} {s:.3g}" for p, s in items[:top])
    return text + (f" (+{len(items) - top} strata)" if len(items) > top else "")


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
