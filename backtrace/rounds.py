"""Rounds of new histories until a target Monte Carlo uncertainty.

``backtrace run --target-rel-unc R`` adds passes over the track file with
new sample indices (new, independent random streams) until the relative MC
uncertainty of the total prompt estimate reaches R or a cap stops it
(histories per track, time). Because every history's random stream depends
only on (seed, track, sample), the result equals one run with the total
number of histories (:func:`backtrace.estimate.combine_passes`).
"""

from __future__ import annotations

import math
import time

from .estimate import combine_passes, total_prompt

__all__ = ["next_round", "run_rounds", "mc_summary"]


def next_round(n_total: int, rel_unc: float, target: float | None, max_samples: int,
               elapsed_s: float = 0.0, max_time_s: float | None = None,
               s_per_sample: float | None = None) -> tuple[int, str | None]:
    """Histories per track of the next round, or (0, why it stops).

    The relative error falls as 1/√N: the round adds 1.1 × N((r/target)² − 1)
    histories (at least 1, at most N: at most doubling per round), within
    the sample cap and, from the measured time per history, the time cap."""
    if target is None:
        return 0, "no target"
    if rel_unc <= target:
        return 0, "target"
    if n_total >= max_samples:
        return 0, "max_samples"
    if max_time_s is not None and elapsed_s >= max_time_s:
        return 0, "max_time"
    want = n_total if not math.isfinite(rel_unc) else \
        math.ceil(1.1 * n_total * ((rel_unc / target) ** 2 - 1))
    n = max(1, min(want, n_total, max_samples - n_total))
    if max_time_s is not None and s_per_sample:
        fit = int((max_time_s - elapsed_s) / s_per_sample)
        if fit < 1:
            return 0, "max_time"
        n = min(n, fit)
    return n, None


def run_rounds(collect, config, target_rel_unc, max_samples_per_track, max_time_s,
               log, t0) -> tuple[dict, list, int, str | None]:
    """Passes ``collect(first_sample, n_samples, label)`` of new histories
    until the target, a cap or no target; returns (combined estimate,
    rounds, histories per track, what stopped it)."""
    passes, rounds, n_total, n_next = [], [], 0, config.samples_per_track
    while n_next:
        passes.append(collect(n_total, n_next, "estimating" if not rounds
                              else f"round {len(rounds) + 1}"))
        n_total += n_next
        est = combine_passes(passes)
        total, stat, mc_err = total_prompt(est, config.interactions_per_history)
        if n_total < 2 and total > 0:
            # one history per track: the self-normalised estimate of a track
            # is its one history's value, whose spread (forced interaction,
            # products) the delta method cannot see — not estimable
            mc_err = math.inf
        rel = mc_err / total if total > 0 else math.inf
        elapsed = time.perf_counter() - t0
        rounds.append({"samples_per_track": n_total, "total_prompt": total,
                       "stat": stat, "mc": mc_err if math.isfinite(mc_err) else None,
                       "rel_unc": rel if math.isfinite(rel) else None,
                       "elapsed_s": elapsed})
        n_next, stopped_by = next_round(n_total, rel, target_rel_unc,
                                        max_samples_per_track, elapsed, max_time_s,
                                        elapsed / n_total)
        if log is not None and target_rel_unc is not None:
            log(f"round {len(rounds)}: {n_total} histories/track, total prompt "
                f"{total:.3g} ± {mc_err:.2g} (MC, rel. {rel:.2g}), {elapsed:.0f} s")
    return est, rounds, n_total, stopped_by


def mc_summary(rounds, n_total, stopped_by, target, max_samples, max_time_s,
                elapsed) -> dict:
    return {"target_rel_unc": target, "rel_unc": rounds[-1]["rel_unc"],
            "total_prompt": rounds[-1]["total_prompt"],
            "total_prompt_stat": rounds[-1]["stat"], "total_prompt_mc": rounds[-1]["mc"],
            "samples_per_track": n_total,
            "max_samples_per_track": max_samples, "max_time_s": max_time_s,
            "stopped_by": stopped_by, "rounds": rounds, "elapsed_s": elapsed,
            "definition": "rel_unc = MC error / total prompt (all categories and "
                          "regions); MC error: delta-method error of the per-track "
                          "self-normalised estimates (falls as 1/sqrt(histories)); "
                          "total_prompt_stat: per-track sum-w2 error, which also holds "
                          "the finite number of observed tracks",
            "note": "rounds add new sample indices; the numbers equal one run with "
                    f"--samples-per-track {n_total}"}
