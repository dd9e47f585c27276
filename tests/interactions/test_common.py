"""Shared pieces of the interaction modules: the transfer tables built from a
per-element density, the row-wise inverse-CDF cells and atoms per kg."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.constants import AVOGADRO_PER_MOL
from backtrace.interactions._common import (
    ENERGY_GRID_GEV,
    N_Q,
    atoms_per_kg,
    cdf_cells,
    transfer_table,
)


def test_atoms_per_kg_of_pure_iron():
    assert atoms_per_kg(1.0, 55.845) == pytest.approx(AVOGADRO_PER_MOL / 0.055845)


def test_transfer_table_integrates_a_flat_density():
    """A density of 1 m²/kg/GeV on q in [1, K] gives σ = K − 1 and a linear CDF;
    energies without room for a transfer get σ = 0 and a flat grid at q_lo,
    their CDF zeros or uniform (``uniform_empty_cdf``)."""
    def flat(z, a, w, k, q):
        return w * np.ones_like(q)

    elements = [(26.0, 55.845, 0.75), (6.0, 12.011, 0.25)]
    for uniform in (False, True):
        tab = transfer_table("flat", "iron", 1.0, elements, lambda k: (1.0, k), flat,
                             uniform_empty_cdf=uniform)
        full = ENERGY_GRID_GEV > 1.0
        np.testing.assert_allclose(tab.sigma[full], ENERGY_GRID_GEV[full] - 1.0, rtol=1e-12)
        np.testing.assert_allclose(tab.cdf[full], (tab.q_grid[full] - 1.0)
                                   / (ENERGY_GRID_GEV[full, None] - 1.0), atol=1e-12)
        assert np.all(tab.sigma[~full] == 0.0)
        np.testing.assert_allclose(tab.q_grid[~full], np.linspace(1.0, 1.0001, N_Q)[None, :])
        empty = np.linspace(0, 1, N_Q) if uniform else np.zeros(N_Q)
        np.testing.assert_array_equal(tab.cdf[~full], np.broadcast_to(empty, (1, N_Q)))


def test_cdf_cells_finds_the_cell_and_fraction():
    cdf = np.array([[0.0, 0.25, 0.5, 1.0], [0.0, 0.0, 1.0, 1.0]])
    j, frac = cdf_cells(cdf, [0.375, 0.5])
    np.testing.assert_array_equal(j, [1, 1])
    np.testing.assert_allclose(frac, [0.5, 0.5])
    # u = 0 and u = 1 land on the ends of the first and last cells
    j, frac = cdf_cells(cdf[[0, 0]], [0.0, 1.0])
    np.testing.assert_array_equal(j, [0, 2])
    np.testing.assert_allclose(frac, [0.0, 1.0])
