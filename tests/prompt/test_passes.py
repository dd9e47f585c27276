"""Passes over disjoint history ranges and their combination."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.prompt.passes import Pass, combine_passes, join_passes


def _pass(track_w, norm, cands):
    """A pass as Pipeline.process returns it (unnormalised weights)."""
    idx = list(norm)
    return Pass(row_status=pd.Series("ok", index=idx),
                history_status=pd.Series(1, index=pd.MultiIndex.from_tuples(
                    [(t, "reached_target") for t in idx])),
                norm=pd.Series(norm), norm2=pd.Series({t: v * v for t, v in norm.items()}),
                candidates=pd.DataFrame(cands), pairs=pd.DataFrame(
                    {"track_index": pd.Series(dtype=np.int64),
                     "category": pd.Series(dtype=object), "weight": pd.Series(dtype=float)}),
                interactions=len(cands["weight"]),
                interaction_weight=pd.Series(track_w))


def test_combined_passes_normalise_over_all_histories():
    """Two passes over disjoint history ranges: a candidate's weight is
    divided by the track's summed ω·φ over both (one run over the union)."""
    a = _pass({1: 2.0}, {1: 1.0}, {"track_index": [1], "sample_index": [0],
                                   "weight": [0.6], "region": ["SR"],
                                   "category": ["mu-mu"]})
    b = _pass({1: 1.0}, {1: 3.0}, {"track_index": [1], "sample_index": [5],
                                   "weight": [0.9], "region": ["CR"],
                                   "category": ["mu-mu"]})
    est = combine_passes([a, b])
    assert est.norm[1] == pytest.approx(4.0)
    assert list(est.candidates["weight"]) == pytest.approx([0.15, 0.225])
    assert est.interaction_weight == pytest.approx(3.0 / 4.0)
    assert est.interactions == 2 and est.status == {"reached_target": 1}


def test_joined_batches_are_one_pass_and_an_empty_pass_joins_as_nothing():
    a = _pass({1: 2.0}, {1: 1.0}, {"track_index": [1], "sample_index": [0],
                                   "weight": [0.6], "region": ["SR"], "category": ["mu-mu"]})
    b = _pass({2: 1.0}, {2: 3.0}, {"track_index": [2], "sample_index": [0],
                                   "weight": [0.9], "region": ["CR"], "category": ["mu-mu"]})
    joined = join_passes([a, Pass(), b])
    assert list(joined.norm.index) == [1, 2] and joined.interactions == 2
    assert list(joined.candidates["weight"]) == [0.6, 0.9]
    est = combine_passes([joined])
    assert list(est.candidates["weight"]) == pytest.approx([0.6, 0.3])
    assert est.interaction_weight == pytest.approx(2.0 + 1.0 / 3.0)
