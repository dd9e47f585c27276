"""Shared fixtures: one PUMAS physics per test session (cached on disk)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def physics():
    from backtrace.pumas import Physics

    return Physics()


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1)
