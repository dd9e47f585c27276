"""Recorded paths: the states a trace records along each history
(``track_index``, ``sample_index``, ``state_index``, ``volume``, position
[m]; :mod:`backtrace.transport`), read as runs of consecutive states inside
named volumes. The forced interactions (the incoming muon's veto
survival), the detector response (veto hits, upstream activity) and the
combinatorial (single-track vetoes) all read paths this way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["entry_points", "crossing_runs"]

_ENTRY_COLUMNS = ["track_index", "sample_index", "volume", "x_m", "y_m", "z_m", "at_start"]
_RUN_COLUMNS = ["track_index", "sample_index", "volume", "z_lo_m", "z_hi_m", "at_start"]


def _runs_inside(states: pd.DataFrame, volumes):
    """The states in history order and, per state, whether it is inside one
    of ``volumes``, starts its history, and starts a run inside a volume;
    None when no state is inside."""
    s = states.sort_values(["track_index", "sample_index", "state_index"], kind="stable")
    inside = s["volume"].isin(list(volumes)).to_numpy()
    if not inside.any():
        return None
    track = s["track_index"].to_numpy()
    sample = s["sample_index"].to_numpy()
    volume = s["volume"].to_numpy(object)
    first = np.r_[True, (track[1:] != track[:-1]) | (sample[1:] != sample[:-1])]
    starts = inside & (first | np.r_[True, volume[1:] != volume[:-1]])
    return s, inside, first, starts


def entry_points(states: pd.DataFrame, volumes) -> pd.DataFrame:
    """Where each history enters one of ``volumes``: the first state of each
    run of consecutive states inside one (track_index, sample_index,
    volume, x_m, y_m, z_m, at_start = the run starts the history)."""
    found = _runs_inside(states, volumes)
    if found is None:
        return pd.DataFrame(columns=_ENTRY_COLUMNS)
    s, _, first, starts = found
    return s[starts].assign(at_start=first[starts])[_ENTRY_COLUMNS].reset_index(drop=True)


def crossing_runs(states: pd.DataFrame, volumes: dict) -> pd.DataFrame:
    """Runs of consecutive states of a history in one of ``volumes``
    ({volume name: value}): track_index, sample_index, volume, the run's z
    extent [m] (including the state that ends it), whether it starts at the
    history's first state."""
    found = _runs_inside(states, volumes)
    if found is None:
        return pd.DataFrame(columns=_RUN_COLUMNS)
    s, inside, first, starts = found
    track = s["track_index"].to_numpy()
    sample = s["sample_index"].to_numpy()
    volume = s["volume"].to_numpy(object)
    z = s["z_m"].to_numpy(float)
    run = np.cumsum(starts) - 1
    rows = np.flatnonzero(inside)
    # the state after a run (same history) ends it: its z bounds the crossing
    nxt = np.minimum(rows + 1, len(z) - 1)
    same = ~first[nxt] & (nxt != rows)
    z_end = np.where(same, z[nxt], z[rows])
    frame = pd.DataFrame({"run": run[rows], "track_index": track[rows],
                          "sample_index": sample[rows], "volume": volume[rows],
                          "z_lo": np.minimum(z[rows], z_end),
                          "z_hi": np.maximum(z[rows], z_end), "at_start": first[rows]})
    g = frame.groupby("run", sort=True)
    return pd.DataFrame({"track_index": g["track_index"].first(),
                         "sample_index": g["sample_index"].first(),
                         "volume": g["volume"].first(), "z_lo_m": g["z_lo"].min(),
                         "z_hi_m": g["z_hi"].max(),
                         "at_start": g["at_start"].first()}).reset_index(drop=True)
