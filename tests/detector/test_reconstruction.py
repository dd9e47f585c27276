"""Two-track reconstruction and pointing: exact geometry checks."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.detector import (
    Smearing,
    closest_approach,
    invariant_mass,
    pointing,
    smear,
    straw_acceptance,
    two_track_vertex,
)

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


# NA62's e+e- fiducial volume (arXiv:2312.12055): the union of two cones with
# tips at the TAX and bases at LAV5 (z = 152.393 m, R = 536.5 mm) and LAV8
# (z = 180.923 m, R = 767.5 mm).
CONES = [(152.393, 0.5365), (180.923, 0.7675)]
AXIS_P, AXIS_D = np.array([0.0, -0.022, 23.07]), np.array([0.0, 0.0, 1.0])


def test_union_of_cones():
    from backtrace.detector import in_cones

    def r_at(z, base):
        return base[1] * (z - 23.07) / (base[0] - 23.07)
    z = 140.0
    inside = [[r_at(z, CONES[0]) * 0.99, -0.022, z],            # inside the LAV5 cone
              [0.0, -0.022 + r_at(z, CONES[1]) * 0.99, z],      # inside only the LAV8 cone
              [r_at(170.0, CONES[1]) * 0.99, -0.022, 170.0]]    # beyond LAV5: LAV8 cone
    outside = [[r_at(z, CONES[1]) * 1.01, -0.022, z],           # outside both
               [0.1, -0.022, 181.0],                            # beyond both bases
               [0.0, -0.022, 20.0]]                             # upstream of the tip
    assert in_cones(inside, CONES, 23.07, AXIS_P, AXIS_D).all()
    assert not in_cones(outside, CONES, 23.07, AXIS_P, AXIS_D).any()
    # the radius is measured from the beam axis (y = -22 mm), not from z
    assert not in_cones([[0.0, 0.5, 100.0]], CONES, 23.07, AXIS_P, AXIS_D)[0]


def test_fiducial_volume_applies_every_given_cut():
    from backtrace.detector import in_fiducial_volume

    sel = {"fiducial_z_min_m": 105.0, "fiducial_z_max_m": 180.0}
    v = np.array([[0.3, 0.0, 150.0], [0.3, 0.0, 100.0], [0.9, 0.0, 150.0]])
    assert list(in_fiducial_volume(v, sel, AXIS_P, AXIS_D)) == [True, False, True]
    sel_r = dict(sel, fiducial_r_max_m=0.5)
    assert list(in_fiducial_volume(v, sel_r, AXIS_P, AXIS_D)) == [True, False, False]
    sel_c = dict(sel, fiducial_cones=CONES, fiducial_cone_tip_z_m=23.07)
    # r = 0.3 m at 150 m is inside (LAV5 cone radius there: 0.537 m)
    assert list(in_fiducial_volume(v, sel_c, AXIS_P, AXIS_D)) == [True, False, False]


@pytest.mark.parametrize("cone", [0, 1])
def test_each_cone_of_the_ee_fiducial_volume_alone(cone):
    """Points just inside / just outside each cone (LAV5: z 152.393 m,
    R 536.5 mm; LAV8: z 180.923 m, R 767.5 mm; tips at the TAX, 23.07 m):
    at 1 % of the edge radius, at the base plane and past it."""
    from backtrace.detector import in_cones

    z_base, r_base = CONES[cone]
    one = [CONES[cone]]
    for z in (60.0, 105.0, 140.0, z_base - 0.01):
        edge = r_base * (z - 23.07) / (z_base - 23.07)
        for phi in (0.0, 1.0, 2.5):
            dx, dy = np.cos(phi), np.sin(phi)
            inside = [edge * 0.99 * dx, -0.022 + edge * 0.99 * dy, z]
            outside = [edge * 1.01 * dx, -0.022 + edge * 1.01 * dy, z]
            assert in_cones([inside], one, 23.07, AXIS_P, AXIS_D)[0]
            assert not in_cones([outside], one, 23.07, AXIS_P, AXIS_D)[0]
    assert not in_cones([[0.0, -0.022, z_base + 0.01]], one, 23.07, AXIS_P, AXIS_D)[0]


def test_the_packaged_ee_fiducial_volume():
    """The ee selection's vertex cuts with the shipped geometry's beam axis:
    the union of the two cones within 105 m <= z <= 180.923 m; the LAV8
    cone holds the LAV5 one (4.86 vs 4.15 mm of radius per metre), so a
    point outside the LAV5 cone but inside the LAV8 one is in."""
    from backtrace.beamline.geometry import load_geometry
    from backtrace.detector import in_fiducial_volume
    from backtrace.regions import load_regions

    sel = load_regions(channel="ee").selection
    point, direction = load_geometry().beam_axis
    r5 = 0.5365 * (140.0 - 23.07) / (152.393 - 23.07)
    r8 = 0.7675 * (140.0 - 23.07) / (180.923 - 23.07)
    y0 = point[1]
    v = np.array([[0.0, y0 + 0.9 * r5, 140.0],              # in both cones
                  [0.0, y0 + 0.5 * (r5 + r8), 140.0],       # LAV8 cone only: in
                  [0.0, y0 + 1.01 * r8, 140.0],             # outside both
                  [0.0, y0 + 0.5 * 0.7675, 170.0],          # past LAV5: LAV8 cone
                  [0.0, y0, 104.0],                         # upstream of 105 m
                  [0.0, y0, 181.0]])                        # past the LAV8 base
    assert list(in_fiducial_volume(v, sel, point, direction)) == [
        True, True, False, True, False, False]
