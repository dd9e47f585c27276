"""Runs of recorded states inside named volumes (entry points, crossings)."""

from __future__ import annotations

import pandas as pd

from backtrace.paths import crossing_runs, entry_points


def _states():
    # one history: outside -> A (two states) -> B -> A; a second starts in A
    return pd.DataFrame({"track_index": [1, 1, 1, 1, 1, 2, 2],
                         "sample_index": [0, 0, 0, 0, 0, 0, 0],
                         "state_index": [0, 1, 2, 3, 4, 0, 1],
                         "volume": ["out", "A", "A", "B", "A", "A", "out"],
                         "x_m": 0.0, "y_m": 0.0,
                         "z_m": [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0]})


def test_entry_points_are_the_first_state_of_each_run():
    e = entry_points(_states(), ["A"])
    assert list(zip(e["track_index"], e["z_m"], e["at_start"])) == \
        [(1, 9.0, False), (1, 6.0, False), (2, 5.0, True)]
    assert entry_points(_states(), ["C"]).empty


def test_a_crossing_extends_to_the_state_that_ends_it():
    r = crossing_runs(_states(), {"A": 0.0, "B": 0.0})
    assert list(r["volume"]) == ["A", "B", "A", "A"]
    # A from 9 to 7 (B's first state ends it), B from 7 to 6, the last A
    # state is the end of its history, the second history's A ends at 4
    assert list(zip(r["z_lo_m"], r["z_hi_m"])) == [(7.0, 9.0), (6.0, 7.0), (6.0, 6.0),
                                                  (4.0, 5.0)]
    assert list(r["at_start"]) == [False, False, False, True]
