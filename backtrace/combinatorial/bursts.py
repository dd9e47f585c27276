"""Measured times: accidental pairs of single tracks within a burst.

A single-track file of real data (or a data-like simulation) that gives
every track its burst (``burst_id``, the spill it belongs to) and its time
(``t_ns``, within the burst) needs no spill model: the rate and the time
structure of the beam are in the times themselves. Two tracks are paired
when they belong to the same burst and their measured times differ by less
than the coincidence window W (``window_ns`` of the spill-model file):
|t₁ − t₂| < W. Tracks of different bursts are never paired.

**Expected number of pairs.** For N tracks in a burst whose times follow
the profile f (∫f dt = 1), each pair is in time with the probability P₂ of
:mod:`backtrace.combinatorial.spill` (the resolution is inside the measured
times, so σ_t = 0 there), and the burst gives N(N−1)/2 · P₂ pairs on
average: N(N−1)/2 · (2W/T − W²/T²) for a flat burst of length T, about
N²/2 · 2W ∫f² dt for W ≪ T. :func:`expected_pairs` computes it with
:func:`~backtrace.combinatorial.spill.pairing_probability_profile` (the test
of this module compares it with the pairs counted in synthetic bursts,
flat and not).

**Pairing without forming every pair.** The tracks are sorted by (burst,
time); for track i, :func:`window_ends` finds by binary search the first
track of its burst at or after t_i + W, and the pairs are (i, j) for j
between: O(N log N + pairs), never N². The sort key is the complex number
burst + i·t (numpy orders complex numbers by real, then imaginary part),
so one search serves every burst exactly, with no floating offset.

**Third tracks.** With ``exactly_two_tracks`` a pair is an event only if no
further reconstructable track of its burst is within W of the pair's mean
time t̄ = (t₁ + t₂)/2: :func:`third_tracks` gives, per pair, the number k of
such tracks and the distance d₃ of the nearest one (k = 0 ⟺ d₃ ≥ W), so
that the window can be moved afterwards. This is the measured counterpart
of the spill model's exp(−μ₃), μ₃ = n_reco P₂.

**Normalisation.** Each pair is one event, weighted by its identification
and veto factors; the sum is normalised to the target POT by
N_POT / N_POT(counted bursts), the POT of the counted bursts coming from the
file (its metadata or ``--pot``: every burst of the file) or from a burst
table (:func:`read_burst_table`: columns ``burst_id``, ``pot``; every burst
of the table, with or without tracks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from backtrace.combinatorial.spill import pairing_probability_profile

__all__ = ["BurstError", "burst_codes", "time_keys", "window_ends", "pairs_from_ends",
           "blocks_by_pairs", "third_tracks", "read_burst_table", "expected_pairs",
           "BURST_COLUMNS", "BLOCK_PAIRS"]

#: Columns of a burst table.
BURST_COLUMNS = ("burst_id", "pot")
#: Pairs (formed in the widest window) per block of first tracks (fixed:
#: results never depend on it or on --jobs).
BLOCK_PAIRS = 1 << 20


class BurstError(ValueError):
    """Raised when burst identifiers, times or a burst table are unusable."""


def burst_codes(burst_id, known=None) -> tuple[np.ndarray, np.ndarray]:
    """(codes 0…B−1 of ``burst_id`` in the sorted order of the identifiers,
    the sorted identifiers). ``known``: the identifiers to code against
    (a burst table); an identifier outside them is a :class:`BurstError`."""
    values = pd.Series(np.asarray(burst_id, dtype=object))
    if values.isna().any():
        raise BurstError("burst_id: missing value(s)")
    labels = np.asarray(sorted(set(values.tolist()) if known is None else set(known)),
                        dtype=object)
    codes = pd.Index(labels).get_indexer(values.to_numpy())
    if np.any(codes < 0):
        missing = sorted(set(values[codes < 0].tolist()))[:5]
        raise BurstError(f"burst_id: {len(set(values[codes < 0]))} burst(s) of the tracks "
                         f"are not in the burst table (e.g. {', '.join(map(str, missing))})")
    return codes.astype(np.int64), labels


def time_keys(code, t_ns) -> np.ndarray:
    """The sort key burst + i·t (lexicographic order: burst, then time)."""
    return np.asarray(code, float) + 1j * np.asarray(t_ns, float)


def window_ends(code, t_ns, window_ns: float) -> np.ndarray:
    """For tracks sorted by (burst, time): the index of the first track of
    the same burst at or after t_i + W (pairs (i, j), i < j < end_i, have
    0 <= t_j − t_i < W)."""
    key = time_keys(code, t_ns)
    return np.searchsorted(key, time_keys(code, np.asarray(t_ns, float) + window_ns),
                           side="left").astype(np.int64)


def pairs_from_ends(i0: int, i1: int, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (a, b), a < b, of the pairs whose first track is in
    [i0, i1) (:func:`window_ends`), in order of a then b."""
    first = np.arange(i0, i1, dtype=np.int64)
    n = np.maximum(np.asarray(ends[i0:i1], np.int64) - first - 1, 0)
    a = np.repeat(first, n)
    offset = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    return a, a + 1 + offset


def blocks_by_pairs(ends: np.ndarray, budget: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ranges [i0, i1) of first tracks with at most ``budget``
    pairs each (:data:`BLOCK_PAIRS`; one track per block at least), fixed by
    the data alone."""
    budget = budget or BLOCK_PAIRS
    n = np.maximum(np.asarray(ends, np.int64) - np.arange(len(ends)) - 1, 0)
    blocks, start, total = [], 0, 0
    for i, k in enumerate(n.tolist()):
        if i > start and total + k > budget:
            blocks.append((start, i))
            start, total = i, 0
        total += k
    if len(n):
        blocks.append((start, len(n)))
    return blocks


def third_tracks(reco_key, reco_track, code, t_a_ns, t_b_ns, track_a, track_b,
                 window_ns: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (tracks a, b of burst ``code`` at t_a, t_b): (k, d₃), k the
    number of reconstructable tracks of its burst other than a and b within W
    of its mean time t̄ = (t_a + t_b)/2, d₃ the distance to the nearest of
    them (inf without one). ``reco_key``: the sorted :func:`time_keys` of the
    reconstructable tracks, ``reco_track`` their track indices; a and b are
    among them (a paired track crosses at least as many chambers as a
    reconstructable one: the selection file's loader checks it)."""
    key, rt = np.asarray(reco_key), np.asarray(reco_track)
    code = np.asarray(code, float)
    t_a, t_b = np.asarray(t_a_ns, float), np.asarray(t_b_ns, float)
    t_mid = (t_a + t_b) / 2
    hi = np.searchsorted(key, code + 1j * (t_mid + window_ns), side="left")
    lo = np.searchsorted(key, code + 1j * (t_mid - window_ns), side="right")
    own = (np.abs(t_a - t_mid) < window_ns).astype(np.int64) \
        + (np.abs(t_b - t_mid) < window_ns).astype(np.int64)
    nearest = np.full(len(t_mid), np.inf)
    if len(key):
        at = np.searchsorted(key, code + 1j * t_mid, side="left")
        for offset in (-3, -2, -1, 0, 1, 2):   # a and b are at most two of them
            idx = at + offset
            j = np.clip(idx, 0, len(key) - 1)
            other = (idx >= 0) & (idx < len(key)) & (key.real[j] == code) \
                & (rt[j] != track_a) & (rt[j] != track_b)
            nearest = np.where(other, np.minimum(nearest, np.abs(key.imag[j] - t_mid)),
                               nearest)
    return (hi - lo - own).astype(np.int64), nearest


def read_burst_table(path) -> pd.DataFrame:
    """A burst table (CSV or Parquet): one row per counted burst, columns
    ``burst_id`` and ``pot`` (> 0), identifiers unique."""
    path = Path(path)
    if not path.is_file():
        raise BurstError(f"{path}: no such burst table")
    try:
        df = pd.read_csv(path, comment="#") if path.suffix.lower() == ".csv" \
            else pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
        raise BurstError(f"{path}: cannot read the burst table ({type(err).__name__})") \
            from None
    missing = [c for c in BURST_COLUMNS if c not in df]
    if missing:
        raise BurstError(f"{path}: missing column(s) {', '.join(missing)} "
                         f"(expected {', '.join(BURST_COLUMNS)})")
    pot = pd.to_numeric(df["pot"], errors="coerce").to_numpy(float)
    if not len(df) or not np.all(np.isfinite(pot) & (pot > 0)):
        raise BurstError(f"{path}: column pot must hold one finite number > 0 per burst")
    if df["burst_id"].isna().any() or df["burst_id"].duplicated().any():
        raise BurstError(f"{path}: column burst_id must be unique and not empty")
    return pd.DataFrame({"burst_id": df["burst_id"].to_numpy(object), "pot": pot})


def expected_pairs(tracks_per_burst, t_s, intensity, window_s: float) -> float:
    """Σ_bursts N(N−1)/2 · P₂: the expected number of pairs within the window
    of bursts of N tracks each following the tabulated profile (bins starting
    at ``t_s``, uniform width), the times measured exactly."""
    n = np.asarray(tracks_per_burst, float)
    p2 = pairing_probability_profile(t_s, intensity, window_s, 0.0)
    return float(np.sum(n * (n - 1) / 2) * p2)
