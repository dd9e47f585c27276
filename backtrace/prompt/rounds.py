"""Rounds of new histories until a target Monte Carlo uncertainty.

``backtrace run`` adds passes over the track file with new sample indices
(new, independent random streams) until the relative MC uncertainty of the
target cell (``--target-cell``, default μ-μ outside SR/CR; ``total``: all
categories and regions) reaches ``--target-rel-unc`` or a limit stops it.
Because every history's random stream depends only on (seed, track,
sample), the result equals one run over the same sample ranges with the
same draw plans (:func:`backtrace.prompt.passes.combine_passes`). With the
``auto`` allocation the first round is a pilot and every later round draws
its forced interactions with the importance allocation measured on the
rounds before it (:func:`backtrace.prompt.allocation.importance_plan`).

What a round does depends only on the rounds before it: its size comes from
the measured error and the histories budget (``max_samples_per_track``),
never from a clock. The time cap (``max_time_s``) only decides whether
another whole round starts (not when its predicted duration, at the time
per history measured so far, would end after the cap), and ``max_rounds``
caps the number of rounds. A run therefore depends on the machine's speed
only through how many rounds it completes; the document records them
(``mc.rounds``), and running the same configuration with ``max_rounds`` set
to their number reproduces it exactly (``backtrace run --rounds-from``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from backtrace.interactions.forced import DrawPlan, stratum_process
from backtrace.prompt.allocation import (
    expected_draws,
    importance_plan,
    stratum_rms_outcome,
    track_passes,
    track_shares,
)
from backtrace.prompt.estimate import POISSON_ZERO_90, mc_error, total_prompt, weighted_yield
from backtrace.prompt.passes import Combined, Pass, combine_passes

__all__ = ["RoundLimits", "RoundSpec", "Rounds", "next_round", "run_rounds", "mc_summary",
           "parse_target_cell", "cell_estimate", "stratum_table", "importance_inputs",
           "STOP_REASONS"]

#: Why the rounds stopped: the target was reached, no target was set, the
#: histories per track reached their cap, the rounds their number, or the
#: next round would have ended after the time cap.
STOP_REASONS = ("target", "no target", "max_samples", "max_rounds", "max_time")

#: Smallest growth of the histories per round [est: 0.25, range 0.1–0.5].
MIN_ROUND_GROWTH = 0.25
#: The default target cell: the published headline (μ-μ outside SR/CR).
DEFAULT_TARGET_CELL = ("outside", "mu-mu")


#: The cells NA62's μ+μ− paper quotes a prompt value for (outside SR/CR):
#: the target 'published' aims at all of them at once.
PUBLISHED_CELLS = (("outside", "mu-mu"), ("outside", "mu-pi"), ("outside", "other"))


def _one_cell(text: str, categories) -> tuple[str, str]:
    region, sep, cat = text.strip().partition("/")
    if not sep or not region or cat not in categories:
        raise ValueError(f"target cell {text!r}: expected REGION/CATEGORY (category "
                         f"{', '.join(categories)}), e.g. outside/{categories[0]}, a "
                         "comma-separated list of them, 'published' or 'total'")
    return region, cat


def parse_target_cell(text: str | None, categories=("mu-mu", "mu-pi", "other")):
    """'REGION/CATEGORY' → (region, category); several, comma-separated, or
    'published' (:data:`PUBLISHED_CELLS`) → a tuple of them, each aimed at;
    'total' → None; ``categories``: those of the run's channel
    (:data:`backtrace.regions.CHANNELS`)."""
    if text is None:
        return DEFAULT_TARGET_CELL
    if text == "total":
        return None
    if text == "published":
        missing = [c for _, c in PUBLISHED_CELLS if c not in categories]
        if missing:
            raise ValueError(f"target cell 'published': the mu-mu channel's cells "
                             f"(this selection's categories: {', '.join(categories)})")
        return PUBLISHED_CELLS
    cells = tuple(_one_cell(t, categories) for t in text.split(","))
    return cells[0] if len(cells) == 1 else cells


def cells_of(cell) -> list[tuple[str, str]] | None:
    """The cells of a target (None: every cell, 'total')."""
    if cell is None:
        return None
    return [cell] if isinstance(cell[0], str) else list(cell)


def _in_cell(c, cell):
    if cell is None or not len(c):
        return c
    mask = np.zeros(len(c), bool)
    for region, cat in cells_of(cell):
        mask |= ((c["region"] == region) & (c["category"] == cat)).to_numpy()
    return c[mask]


def _one_estimate(est: Combined, cell) -> tuple[float, float, float]:
    c = _in_cell(est.candidates, cell)
    if not len(c):
        return 0.0, 0.0, 0.0
    y = weighted_yield(c["weight"], c["track_index"])
    return y.value, y.stat, mc_error(c, est.norm, est.norm2)


def _relative(value: float, mc: float) -> float:
    return mc / value if value > 0 else math.inf


def cell_estimate(est: Combined, cell) -> tuple[float, float, float]:
    """(Σw, per-track Σw² error, MC error) of the target (None: everything;
    several cells: the one with the largest relative MC error, the one the
    target waits for)."""
    if cell is None:
        return total_prompt(est)
    each = [_one_estimate(est, c) for c in cells_of(cell)]
    return max(each, key=lambda v: _relative(v[0], v[2]))


def cell_table(est: Combined, cell) -> dict | None:
    """Per cell of a target of several cells: value, stat, MC error and the
    relative MC uncertainty (None for one cell or 'total')."""
    if cell is None or isinstance(cell[0], str):
        return None
    out = {}
    for c in cells_of(cell):
        value, stat, mc = _one_estimate(est, c)
        rel = _relative(value, mc)
        out[_label(c)] = {"value": value, "stat": stat, "mc": mc,
                          "rel_unc": rel if math.isfinite(rel) else None}
    return out


def _label(cell) -> str:
    if cell is None:
        return "total"
    if tuple(cells_of(cell)) == PUBLISHED_CELLS and not isinstance(cell[0], str):
        return "published"
    return ",".join(f"{r}/{c}" for r, c in cells_of(cell))


@dataclass(frozen=True)
class RoundLimits:
    """When the rounds stop: ``target_rel_unc`` (None: after the first
    round), ``max_samples_per_track`` (the histories budget of a track),
    ``max_rounds`` (None: no cap) and ``max_time_s`` (None: no cap; only
    decides whether another round starts, module docstring); ``replay``:
    the number of rounds and the stop reason of a recorded run."""

    target_rel_unc: float | None = None
    max_samples_per_track: int = 16384
    max_rounds: int | None = None
    max_time_s: float | None = None
    #: (rounds, stop reason) of a recorded run to replay: exactly that many
    #: rounds whatever the clock, stopped for the recorded reason
    replay: tuple[int, str] | None = None


@dataclass(frozen=True)
class RoundSpec:
    """What one round ran: its ``groups`` of histories (first sample index,
    number of samples, track indices or None for every track) and the
    forced interactions' ``draw_plan``."""

    groups: tuple
    draw_plan: DrawPlan


@dataclass
class Rounds:
    """What :func:`run_rounds` returns: the combined ``estimate``, a record
    per round (``records``, written to ``mc.rounds``), the most histories
    of one track (``samples_per_track``), why it stopped (``stopped_by``,
    one of :data:`STOP_REASONS`), the rounds' :class:`RoundSpec` and their
    passes."""

    estimate: Combined
    records: list[dict]
    samples_per_track: int
    stopped_by: str
    specs: list[RoundSpec] = field(default_factory=list)
    passes: list[Pass] = field(default_factory=list)


def next_round(n_total: int, rel_unc: float, target: float | None,
               max_samples: int) -> tuple[int, str | None]:
    """Histories per track of the next round, or (0, why it stops).

    The relative error falls as 1/√N: the round adds 1.1 × N((r/target)² − 1)
    histories (at least :data:`MIN_ROUND_GROWTH` × N, at most N: at most
    doubling per round), within the histories budget ``max_samples``. A
    function of the error and the histories only (no clock)."""
    if target is None:
        return 0, "no target"
    if rel_unc <= target:
        return 0, "target"
    if n_total >= max_samples:
        return 0, "max_samples"
    want = n_total if not math.isfinite(rel_unc) else \
        math.ceil(1.1 * n_total * ((rel_unc / target) ** 2 - 1))
    # at least a quarter more: near the target a smaller step costs a round
    # and moves the error by less than its own noise
    want = max(want, math.ceil(MIN_ROUND_GROWTH * n_total))
    return max(1, min(want, n_total, max_samples - n_total)), None


def starts_in_time(elapsed_s: float, histories_done: int, histories_next: int,
                   max_time_s: float | None) -> bool:
    """Whether a round of ``histories_next`` histories, at the time per
    history measured so far, ends within ``max_time_s`` (None: no cap)."""
    if max_time_s is None:
        return True
    predicted = elapsed_s / max(histories_done, 1) * histories_next
    return elapsed_s + predicted <= max_time_s


def _relative_outcomes(candidates: pd.DataFrame, cell) -> pd.DataFrame:
    """The target's candidates; for several cells, each outcome divided by
    its cell's value, so that the allocation weighs every cell's relative
    variance alike (an empty cell has no candidate to guide it: the draws
    kept on the pilot rule reach it)."""
    c = _in_cell(candidates, cell)
    if cell is None or isinstance(cell[0], str) or not len(c):
        return c
    value = c.groupby(["region", "category"])["weight"].transform("sum").to_numpy(float)
    return c.assign(outcome=c["outcome"].to_numpy(float) / np.where(value > 0, value, 1.0))


def importance_inputs(passes, est, cell) -> tuple[dict, pd.DataFrame]:
    """(r_s, Ḡ): the target cell's root-mean-square outcome per draw of each
    stratum over every pass so far, and each track's posterior-mean
    importance per stratum (DataFrame track_index, stratum, g)."""
    drawn = pd.concat([p.strata for p in passes]).groupby(level=0).sum()
    r_s = stratum_rms_outcome(_relative_outcomes(est.candidates, cell), drawn)
    parts = [p.g_sums for p in passes if len(p.g_sums)]
    if not parts:
        return r_s, pd.DataFrame(columns=["track_index", "stratum", "g"])
    g = pd.concat(parts).groupby(["track_index", "stratum"], sort=True)["g"].sum() \
        .reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        g["g"] = g["g"].to_numpy(float) / est.norm.reindex(g["track_index"]).to_numpy(float)
    return r_s, g[np.isfinite(g["g"]) & (g["g"] > 0)].reset_index(drop=True)


def _next_plan(config, inputs, todo, track_weights):
    """The importance plan (:func:`backtrace.prompt.allocation.importance_plan`)
    for the histories ``todo`` adds: their pass fractions n / N_t and the
    round's draw budget K × (histories added)."""
    fraction = pd.Series(dtype=float)
    budget = 0.0
    for first, n, subset in todo:
        idx = track_weights.index if subset is None else pd.Index(subset)
        fraction = pd.concat([fraction, pd.Series(n / (first + n), index=idx)])
        budget += n * len(idx)
    k = float(config.interactions_per_history)
    return importance_plan(*inputs, track_weights, fraction, k * budget,
                           config.forced_processes(), k)


def _track_importance(config, inputs, track_weights) -> pd.Series:
    """Each track's expected draws under the importance plan if every one of
    its histories were new (pass fraction 1): what the track weighs in the
    estimate, its paths' importance included (a path-aware track weight)."""
    ones = pd.Series(1.0, index=track_weights.index)
    plan = importance_plan(*inputs, track_weights, ones, 1.0, config.forced_processes(),
                           float(config.interactions_per_history))
    return expected_draws(plan, inputs[1], track_weights, ones)


def _round_passes(n_hist, n_next, track_weights, max_samples):
    """[(first sample, n samples, tracks or None)] of the next round: every
    track gets ``n_next`` more histories, or, with ``track_weights``, the
    tracks furthest below their weight share double theirs (or fill up
    to the cap; :func:`backtrace.prompt.allocation.track_passes`, same budget)."""
    if track_weights is None:
        return [(int(n_hist.max()), n_next, None)]
    return track_passes(n_hist, track_shares(track_weights.reindex(n_hist.index)),
                        float(n_next * len(n_hist)), max_samples)


def run_rounds(collect: Callable, config, limits: RoundLimits, *,
               target_cell=DEFAULT_TARGET_CELL, track_weights=None, log=None,
               clock: Callable[[], float] = time.perf_counter) -> Rounds:
    """Passes ``collect(groups, label, draw_plan)`` of new histories, one per
    round (groups: (first sample, n samples, track indices or None for all))
    until the target or a limit (:class:`RoundLimits`, module docstring).
    ``track_weights`` (Series over track_index, the input weights): the
    importance plans use them, and with ``track_allocation='weight'`` rounds
    after the first give histories in proportion to them. ``clock``: the
    time in seconds (it only decides whether another round starts)."""
    t0 = clock()
    passes, records, specs = [], [], []
    n_hist = None                       # histories per track so far
    todo = [(0, config.samples_per_track, None)]
    draw_plan = config.first_plan()
    by_weight = track_weights if config.track_allocation == "weight" else None
    while True:
        label = "estimating" if not records else f"round {len(records) + 1}"
        passes.append(collect(todo, label, draw_plan))
        specs.append(RoundSpec(tuple(todo), draw_plan))
        n_hist = _histories_per_track(n_hist, todo, passes[-1].row_status.index)
        est = combine_passes(passes)
        records.append(_round_record(est, n_hist, todo, passes[-1], draw_plan, target_cell,
                                     clock() - t0))
        stopped_by, todo, draw_plan = _plan_next(
            config, limits, records, passes, est, n_hist, draw_plan, target_cell,
            track_weights, by_weight)
        if log is not None and limits.target_rel_unc is not None:
            log(_round_line(records[-1], len(records), n_hist, by_weight, target_cell))
        if stopped_by is not None:
            return Rounds(est, records, int(n_hist.max()) if len(n_hist) else 0,
                          stopped_by, specs, passes)


def _histories_per_track(n_hist, todo, tracks) -> pd.Series:
    """Histories per track after the round ``todo`` (``tracks``: the track
    indices of the first round's pass)."""
    for first, n, subset in todo:
        if n_hist is None:
            n_hist = pd.Series(n, index=tracks)
        elif subset is None:
            n_hist += n
        else:
            n_hist[subset] += n
    return n_hist


def _round_record(est: Combined, n_hist, todo, last: Pass, draw_plan, target_cell,
                  elapsed_s: float) -> dict:
    """The record of a round (``mc.rounds[]``): histories, the totals and
    the target cell's value, errors and relative MC uncertainty."""
    total, stat, total_mc = total_prompt(est)
    value, cell_stat, mc_err = (total, stat, total_mc) if target_cell is None \
        else cell_estimate(est, target_cell)
    if int(n_hist.min() if len(n_hist) else 0) < 2 and value > 0:
        # one history per track: the self-normalised estimate of a track
        # is its one history's value, whose spread (forced interaction,
        # products) the delta method cannot see — not estimable
        mc_err = total_mc = math.inf
    rel = mc_err / value if value > 0 else math.inf
    cells = cell_table(est, target_cell)
    return {**({"cells": cells} if cells is not None else {}),
            "samples_per_track": int(n_hist.max()) if len(n_hist) else 0,
            "histories": int(n_hist.sum()),
            "histories_per_track_mean": float(n_hist.mean()) if len(n_hist) else 0.0,
            "tracks_in_round": len(n_hist) if todo[0][2] is None
            else sum(len(s) for _, _, s in todo),
            "interactions": int(last.interactions),
            "total_prompt": total,
            "stat": stat, "mc": total_mc if math.isfinite(total_mc) else None,
            "target_value": value, "target_stat": cell_stat,
            "target_mc": mc_err if math.isfinite(mc_err) else None,
            "rel_unc": rel if math.isfinite(rel) else None,
            "allocation": draw_plan.describe(),
            "elapsed_s": elapsed_s}


def _plan_next(config, limits: RoundLimits, records, passes, est, n_hist, draw_plan,
               target_cell, track_weights, by_weight):
    """(why the rounds stop or None, the next round's groups, its draw
    plan): the size from the error and the histories budget, then
    ``max_rounds``, then whether the round would end within the time cap."""
    rec = records[-1]
    rel = math.inf if rec["rel_unc"] is None else rec["rel_unc"]
    n_base = max(int(round(rec["histories_per_track_mean"])), 1) if by_weight is not None \
        else rec["samples_per_track"]
    n_next, why = next_round(n_base, rel, limits.target_rel_unc,
                             limits.max_samples_per_track)
    if why is not None:
        return why, [], draw_plan
    if limits.replay is not None and len(records) >= limits.replay[0]:
        return limits.replay[1], [], draw_plan
    if limits.max_rounds is not None and len(records) >= limits.max_rounds:
        return "max_rounds", [], draw_plan
    inputs = importance_inputs(passes, est, target_cell) \
        if config.allocation == "auto" else None
    weights = by_weight if inputs is None or by_weight is None \
        else _track_importance(config, inputs, track_weights)
    todo = _round_passes(n_hist, n_next, weights, limits.max_samples_per_track)
    if not todo:
        return "max_samples", [], draw_plan
    if inputs is not None:
        draw_plan = _next_plan(config, inputs, todo, track_weights)
    added = sum(n * (len(n_hist) if subset is None else len(subset))
                for _, n, subset in todo)
    if limits.replay is None and not starts_in_time(rec["elapsed_s"], rec["histories"],
                                                    added, limits.max_time_s):
        return "max_time", [], draw_plan
    return None, todo, draw_plan


def _round_line(rec: dict, number: int, n_hist, by_weight, target_cell) -> str:
    """The log line of a round."""
    n_max = rec["samples_per_track"]
    spread = "" if by_weight is None else \
        f" (mean {rec['histories_per_track_mean']:.3g}, {int(n_hist.min())}–{n_max})"
    mc = math.inf if rec["target_mc"] is None else rec["target_mc"]
    rel = math.inf if rec["rel_unc"] is None else rec["rel_unc"]
    return (f"round {number}: {n_max} histories/track{spread}, "
            f"{_label(target_cell)} {rec['target_value']:.3g} ± {mc:.2g} "
            f"(MC, rel. {rel:.2g}), {rec['elapsed_s']:.0f} s")


def stratum_table(est: Combined, cell=DEFAULT_TARGET_CELL) -> dict:
    """What the forcing did, for outputs: per process and per stratum the
    draws, the target cell's MC entries and yield, and the root-mean-square
    outcome per draw (the importance allocation's r_s, unshrunk); for a
    process with no entry in the cell, the 90 % CL bound on what it could
    still contribute: 2.303 × its mean interaction weight per draw (what an
    entry would weigh before the product factors, all ≤ 1: the Poisson
    limit of zero entries in its draws)."""
    c = _in_cell(est.candidates, cell)
    drawn = est.drawn
    if not len(drawn):
        return {"processes": [], "strata": []}
    r_s = stratum_rms_outcome(c, drawn, pseudo_draws=0.0)
    by_stratum = c.groupby("stratum")["weight"].agg(["size", "sum"]) if len(c) \
        else pd.DataFrame(columns=["size", "sum"])
    strata = [{"stratum": s, "draws": int(n),
               "entries": int(by_stratum["size"].get(s, 0)),
               "yield": float(by_stratum["sum"].get(s, 0.0)),
               "rms_outcome": r_s.get(s, 0.0)}
              for s, n in drawn.sort_index().items()]
    procs = []
    for p in sorted({stratum_process(s) for s in drawn.index}):
        mine = [r for r in strata if stratum_process(r["stratum"]) == p]
        n = sum(r["draws"] for r in mine)
        row = {"process": p, "draws": n, "entries": sum(r["entries"] for r in mine),
               "yield": sum(r["yield"] for r in mine)}
        if not row["entries"]:
            w = est.process_weight.get(p)
            row["upper_limit_90"] = POISSON_ZERO_90 * w / n if w is not None and n else None
        procs.append(row)
    return {"cell": _label(cell), "processes": procs, "strata": strata}


def track_sample_term(last: dict, target: float | None) -> dict | None:
    """The part of the target cell's per-track error that more histories
    cannot remove (the finite number of observed tracks): √(stat² − MC²),
    relative, and the tracks a sample would need for ``target`` (it falls
    as 1/√tracks)."""
    value, stat, mc = last["target_value"], last["target_stat"], last["target_mc"]
    if not value or mc is None:
        return None
    rel = math.sqrt(max(stat ** 2 - mc ** 2, 0.0)) / value
    return {"rel_unc": rel, "tracks_needed_factor":
            (rel / target) ** 2 if target else None}


def mc_summary(rounds: Rounds, limits: RoundLimits, elapsed: float,
               target_cell=DEFAULT_TARGET_CELL) -> dict:
    """The ``mc`` block of the document: the target cell's precision, the
    limits, why the rounds stopped and a record per round."""
    records, n_total = rounds.records, rounds.samples_per_track
    target = limits.target_rel_unc
    return {"target_rel_unc": target, "target_cell": _label(target_cell),
            **({"cells": records[-1]["cells"]} if "cells" in records[-1] else {}),
            "target_value": records[-1]["target_value"],
            "target_mc": records[-1]["target_mc"], "rel_unc": records[-1]["rel_unc"],
            "track_sample": track_sample_term(records[-1], target),
            "total_prompt": records[-1]["total_prompt"],
            "total_prompt_stat": records[-1]["stat"], "total_prompt_mc": records[-1]["mc"],
            "samples_per_track": n_total,
            "histories": records[-1]["histories"],
            "histories_per_track_mean": records[-1]["histories_per_track_mean"],
            "max_samples_per_track": limits.max_samples_per_track,
            "max_time_s": limits.max_time_s, "max_rounds": limits.max_rounds,
            "stopped_by": rounds.stopped_by, "rounds": records, "elapsed_s": elapsed,
            "definition": "rel_unc = MC error / value of the target cell (target_cell: "
                          "REGION/CATEGORY, or total = all categories and regions); MC "
                          "error: delta-method error of the per-track self-normalised "
                          "estimates (falls as 1/sqrt(histories)); total_prompt_stat: "
                          "per-track sum-w2 error, which also holds the finite number of "
                          "observed tracks",
            "note": "rounds add new sample indices; the numbers equal one run over the "
                    "same sample ranges with the same allocations (rounds[].allocation); "
                    f"samples_per_track: the most histories of one track ({n_total}), "
                    "histories: over all tracks"}
