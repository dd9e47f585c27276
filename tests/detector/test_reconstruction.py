"""Two-track reconstruction and pointing: exact geometry checks."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.detector import (Smearing, closest_approach, invariant_mass, pointing,
                                smear, straw_acceptance, two_track_vertex)

AXIS_POINT = np.array([0.0, -0.022, 23.07])
AXIS_DIR = np.array([0.0, 0.0, 1.0])


def _event(rng, z_tax, cda, vertex_z):
    """Two tracks from a vertex whose total-momentum line passes at distance
    ``cda`` from the beam axis at z = z_tax, the offset being along the
    common perpendicular d × ẑ (so Z_TAX = z_tax and CDA_TAX = cda exactly)."""
    slope = rng.uniform(-0.003, 0.003, 2)
    direction = np.array([slope[0], slope[1], 1.0])
    perp = np.cross(direction, AXIS_DIR)
    perp /= np.linalg.norm(perp)
    target = AXIS_POINT + [0.0, 0.0, z_tax - AXIS_POINT[2]] + cda * perp
    vertex = target + (vertex_z - target[2]) * direction
    p_total = 80.0 * direction / np.linalg.norm(direction)
    kick = np.array([0.4, -0.3, 0.0])
    p1, p2 = 0.6 * p_total + kick, 0.4 * p_total - kick
    # points of each track at STRAW1 (z = 183.508)
    x1 = vertex + (183.508 - vertex[2]) / p1[2] * p1
    x2 = vertex + (183.508 - vertex[2]) / p2[2] * p2
    return x1, p1, x2, p2, vertex


def test_vertex_and_pointing_exact_to_1mm(rng):
    for z_tax, cda in [(23.07, 0.0005), (38.2, 0.012), (10.0, 0.08), (-5.0, 0.05)]:
        x1, p1, x2, p2, vertex = _event(rng, z_tax, cda, vertex_z=140.0)
        v, cda_tracks = two_track_vertex(x1[None], p1[None], x2[None], p2[None])
        assert np.allclose(v[0], vertex, atol=1e-6) and cda_tracks[0] < 1e-9
        zt, ct = pointing(v, (p1 + p2)[None], AXIS_POINT, AXIS_DIR)
        assert zt[0] == pytest.approx(z_tax, abs=1e-3)
        assert ct[0] == pytest.approx(cda, abs=1e-3)


def test_closest_approach_of_skew_lines():
    q1, q2, d = closest_approach([[0, 0, 0]], [[1, 0, 0]], [[0, 1, 5]], [[0, 0, 1]])
    assert np.allclose(q1, [[0, 0, 0]]) and np.allclose(q2, [[0, 1, 0]])
    assert d[0] == pytest.approx(1.0)
    # parallel lines
    _, _, d = closest_approach([[0, 0, 0]], [[0, 0, 1]], [[0, 2, 0]], [[0, 0, 2]])
    assert d[0] == pytest.approx(2.0)


def test_invariant_mass_of_a_dimuon():
    m = 0.1056583755
    # back-to-back in the rest frame of a 411 MeV state: |p*| from M
    p_star = np.sqrt((0.411 / 2) ** 2 - m * m)
    m_rec = invariant_mass([[p_star, 0, 0]], [[-p_star, 0, 0]], m, m)
    assert m_rec[0] == pytest.approx(0.411, rel=1e-12)


def test_straw_acceptance_boundaries():
    ok = straw_acceptance([(np.array([0.05, 0.5, 1.2, np.nan]), np.zeros(4))] * 4)
    assert ok.tolist() == [False, True, False, False]


def test_smearing_resolution(rng):
    n = 20000
    p = np.tile([0.0, 0.0, 50.0], (n, 1))
    s = smear(p, Smearing(), rng.normal(size=(n, 3)))
    rel = np.linalg.norm(s, axis=1) / 50 - 1
    assert rel.std() == pytest.approx(np.hypot(0.003, 0.00005 * 50), rel=0.05)
    assert np.allclose(smear(p, Smearing(enabled=False), rng.normal(size=(n, 3))), p)
