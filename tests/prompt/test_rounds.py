"""Rounds of new histories: how many the next round adds, and why it stops."""

from __future__ import annotations

import math

from backtrace.prompt.rounds import next_round, starts_in_time


def test_next_round_rules():
    assert next_round(4, 0.5, None, 100) == (0, "no target")
    assert next_round(4, 0.1, 0.1, 100) == (0, "target")
    assert next_round(100, 0.5, 0.1, 100) == (0, "max_samples")
    # no candidate yet: double
    assert next_round(4, math.inf, 0.1, 100) == (4, None)
    # 1/sqrt(N): 1.1 * 100 * ((0.12 / 0.1)^2 - 1) = 48.4 -> 49 more
    assert next_round(100, 0.12, 0.1, 1000) == (49, None)
    # near the target at least a quarter more (1.1 * 100 * 0.1025 = 11.3 < 25)
    assert next_round(100, 0.105, 0.1, 1000) == (25, None)
    # at most doubling, within the sample cap
    assert next_round(4, 0.2, 0.1, 100) == (4, None)
    assert next_round(100, 0.2, 0.1, 110) == (10, None)
    # a function of the error and the histories only: no clock argument


def test_a_round_starts_only_if_it_ends_within_the_time_cap():
    # 50 s for 100 histories: 100 more take 50 s -> ends at 100 s
    assert starts_in_time(50.0, 100, 100, max_time_s=100.0)
    assert not starts_in_time(50.0, 100, 101, max_time_s=100.0)
    assert starts_in_time(1e6, 1, 1, max_time_s=None)


def test_target_cells_one_several_published_or_total():
    from backtrace.prompt.rounds import PUBLISHED_CELLS, _label, cells_of, parse_target_cell

    assert parse_target_cell("outside/mu-pi") == ("outside", "mu-pi")
    both = parse_target_cell("outside/mu-mu, CR/mu-mu")
    assert both == (("outside", "mu-mu"), ("CR", "mu-mu"))
    assert _label(both) == "outside/mu-mu,CR/mu-mu" and cells_of(both) == list(both)
    assert parse_target_cell("published") == PUBLISHED_CELLS
    assert _label(PUBLISHED_CELLS) == "published"
    assert parse_target_cell("total") is None and _label(None) == "total"
    import pytest

    with pytest.raises(ValueError, match="'published': the mu-mu channel"):
        parse_target_cell("published", ("e-e", "other"))
    with pytest.raises(ValueError, match="expected REGION/CATEGORY"):
        parse_target_cell("outside/mu-mu,SR")
