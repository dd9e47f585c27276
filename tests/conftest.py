"""Shared fixtures: one PUMAS physics per test session (cached on disk),
and small synthetic single-muon samples at STRAW1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def physics():
    from backtrace.beamline.materials import load_physics

    return load_physics()


@pytest.fixture(scope="session")
def beamline(physics):
    """The shipped NA62 K12 beam line (process-wide instance)."""
    from backtrace.beamline.line import BeamLine

    return BeamLine.shared(physics=physics)


@pytest.fixture
def rng():
    return np.random.default_rng(1)


def synthetic_tracks(n: int, seed: int = 1, z_m: float = 183.52) -> pd.DataFrame:
    """Muons on the STRAW1 annulus pointing back to the dump (test input,
    not physics: a smooth stand-in for a measured sample)."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.15, 0.9, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    x, y = r * np.cos(phi), r * np.sin(phi)
    p = 10 ** rng.uniform(1, 2.3, n)
    dz = z_m - 23.07
    tx = x / dz + rng.normal(0, 0.002, n)
    ty = (y + 0.022) / dz + rng.normal(0, 0.002, n)
    pz = p / np.sqrt(1 + tx ** 2 + ty ** 2)
    return pd.DataFrame(dict(
        x_m=x, y_m=y, z_m=np.full(n, z_m), px_gev=pz * tx, py_gev=pz * ty,
        pz_gev=pz, charge=rng.choice([-1.0, 1.0], n)))


@pytest.fixture(scope="session")
def sample_file(tmp_path_factory):
    from backtrace.tracks import write_tracks

    path = tmp_path_factory.mktemp("tracks") / "sample.parquet"
    write_tracks(path, synthetic_tracks(300), pot=1e10)
    return path
