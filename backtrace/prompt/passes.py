"""The data a pass over the tracks hands on, and the combination of passes.

A :class:`Pass` is what :meth:`backtrace.prompt.pipeline.Pipeline.process`
returns for a batch of tracks and one range of sample indices, and what
batches joined into one pass over the file hold (:func:`join_passes`).
Weights are *unnormalised*: candidates and interactions carry ω·φ·(track
weight); ``norm`` is each track's Σ ω·φ over the pass's histories.
:func:`combine_passes` normalises them per track over every pass, so that
passes over disjoint sample ranges give exactly the estimate of one pass
over their union (:class:`Combined`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backtrace.detector.candidates import empty_pairs
from backtrace.prompt.estimate import concat
from backtrace.transport import HISTORY_STATUSES

__all__ = ["Pass", "Combined", "join_passes", "combine_passes", "empty_g_sums",
           "empty_candidates", "track_statuses"]


def empty_candidates() -> pd.DataFrame:
    """The (empty) layout of the selected candidates."""
    return pd.DataFrame(columns=["region", "category", "zone", "process", "stratum", "weight",
                                 "track_index", "sample_index", "history_raw",
                                 "z_tax_m", "cda_tax_m"])


def track_statuses(row_status: pd.Series, history_status: pd.Series) -> Counter:
    """Status per input row: validation failures as they are; a traced
    track 'reached_target' if any of its histories did, else its most common
    history status (ties: HISTORY_STATUSES order) — as
    :meth:`backtrace.transport.Tracer.trace`, over the histories of all passes."""
    status = row_status.copy()
    if len(history_status):
        table = history_status.groupby(level=[0, 1]).sum().unstack(fill_value=0)
        table = table[[s for s in HISTORY_STATUSES if s in table.columns]]
        best = table.idxmax(axis=1)
        if "reached_target" in table.columns:
            best[table["reached_target"] > 0] = "reached_target"
        status.loc[best.index] = best.to_numpy()
    return Counter(status.tolist())


def empty_g_sums() -> pd.DataFrame:
    """The (empty) layout of :attr:`Pass.g_sums`."""
    return pd.DataFrame({"track_index": pd.Series(dtype=np.int64),
                         "stratum": pd.Series(dtype=object), "g": pd.Series(dtype=float)})


def _series(dtype) -> pd.Series:
    return pd.Series(dtype=dtype)


@dataclass
class Pass:
    """One pass (or one batch of a pass) of the prompt pipeline.

    Per track (Series over ``track_index``): ``row_status`` (input-row
    validation or trace status), ``norm`` / ``norm2`` (Σ ω φ and Σ (ω φ)²
    over the pass's histories), ``interaction_weight`` (the forced
    interactions' summed weight); per (track, status): ``history_status``
    counts; ``candidates`` (selected two-track candidates, one row each) and
    ``pairs`` (two-track pairs before the cuts, for the upper limits);
    ``interactions``: forced draws made; ``strata``: draws per stratum;
    ``g_sums``: Σ_h ω_h φ_h G_{h,s} per (track, stratum), the allocation's
    path importance; ``process_weight`` per (track, process) and
    ``history_interaction_weight`` per (track, sample) of the forced
    interactions."""

    row_status: pd.Series = field(default_factory=lambda: _series(object))
    history_status: pd.Series = field(default_factory=lambda: _series(np.int64))
    norm: pd.Series = field(default_factory=lambda: _series(float))
    norm2: pd.Series = field(default_factory=lambda: _series(float))
    candidates: pd.DataFrame = field(default_factory=empty_candidates)
    pairs: pd.DataFrame = field(default_factory=empty_pairs)
    interactions: int = 0
    strata: pd.Series = field(default_factory=lambda: _series(np.int64))
    g_sums: pd.DataFrame = field(default_factory=empty_g_sums)
    process_weight: pd.Series = field(default_factory=lambda: _series(float))
    interaction_weight: pd.Series = field(default_factory=lambda: _series(float))
    history_interaction_weight: pd.Series = field(default_factory=lambda: _series(float))


def join_passes(parts: list[Pass]) -> Pass:
    """Batches over disjoint tracks (or groups of tracks) as one pass."""
    def joined(name):
        return concat([getattr(p, name) for p in parts], getattr(Pass(), name))
    return Pass(row_status=joined("row_status"), history_status=joined("history_status"),
                norm=joined("norm"), norm2=joined("norm2"),
                candidates=joined("candidates"), pairs=joined("pairs"),
                interactions=sum(p.interactions for p in parts),
                strata=joined("strata").groupby(level=0).sum(),
                g_sums=joined("g_sums"), process_weight=joined("process_weight"),
                interaction_weight=joined("interaction_weight"),
                history_interaction_weight=joined("history_interaction_weight"))


@dataclass
class Combined:
    """Passes over disjoint sample ranges, normalised per track.

    ``candidates`` and ``pairs`` carry normalised weights (the estimate);
    ``norm``/``norm2`` per track over all passes; ``status``: tracks per
    status; ``interactions``: forced draws; ``interaction_weight``: the
    forced interactions' summed normalised weight (and per track);
    ``drawn``: draws per stratum; ``process_weight``: {process: summed
    normalised interaction weight}; ``no_support``: tracks whose histories
    all have zero source weight."""

    status: Counter
    candidates: pd.DataFrame
    pairs: pd.DataFrame
    norm: pd.Series
    norm2: pd.Series
    interactions: int
    interaction_weight: float
    interaction_weight_by_track: pd.Series
    drawn: pd.Series
    process_weight: dict
    no_support: int


def _ordered(frame: pd.DataFrame, keys) -> pd.DataFrame:
    if not len(frame):
        return frame
    return frame.sort_values([k for k in keys if k in frame], kind="stable")


def _normalised(frame: pd.DataFrame, norm: pd.Series) -> pd.DataFrame:
    """``frame`` with its weights divided by its track's ``norm``."""
    if not len(frame):
        return frame.reset_index(drop=True)
    f = frame.reset_index(drop=True)
    return f.assign(weight=f["weight"].to_numpy(float)
                    / norm.reindex(f["track_index"]).to_numpy())


def _per_process(pw: pd.Series, norm: pd.Series) -> dict:
    """{process: Σ over tracks of the normalised interaction weight}."""
    if not len(pw):
        return {}
    pw = pw.groupby(level=[0, 1]).sum()
    normed = pw / norm.reindex(pw.index.get_level_values(0)).to_numpy()
    return normed.groupby(level=1).sum().to_dict()


def combine_passes(passes: list[Pass]) -> Combined:
    """Merge passes over disjoint sample ranges: posterior weights normalised
    per track over the histories of all passes (equal to one pass over the
    union of the sample ranges, by construction)."""
    joined = join_passes(passes)
    norm = joined.norm.groupby(level=0).sum()
    norm2 = joined.norm2.groupby(level=0).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        # one order whatever the batching and the passes (sums are then
        # bit-identical for any --jobs / --batch-size / track allocation)
        c = _normalised(_ordered(joined.candidates,
                                 ["track_index", "sample_index", "weight"]), norm)
        pairs = _normalised(_ordered(joined.pairs, ["track_index", "category", "weight"]),
                            norm)
        iw = joined.interaction_weight.groupby(level=0).sum()
        iw_track = iw / norm.reindex(iw.index) if len(iw) else pd.Series(dtype=float)
        per_process = _per_process(joined.process_weight, norm)
    return Combined(
        status=track_statuses(passes[0].row_status, joined.history_status),
        candidates=c, pairs=pairs, norm=norm, norm2=norm2,
        interactions=joined.interactions,
        interaction_weight=float(iw_track.sum()) if len(iw) else 0.0,
        interaction_weight_by_track=iw_track, drawn=joined.strata,
        process_weight=per_process, no_support=int((norm <= 0).sum()))
