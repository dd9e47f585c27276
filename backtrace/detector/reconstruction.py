"""Two-track reconstruction and the tracker response (NA62-like).

Small vectorised functions (arrays over events, SI-like units: m, GeV):

- :func:`closest_approach` of two straight lines;
- :func:`two_track_vertex`: the vertex of two tracks measured at STRAW1 is
  the midpoint of their closest approach, their distance the CDA (tracks are
  straight upstream of STRAW1: the decay volume is field-free vacuum);
- :func:`pointing`: Z_TAX and CDA_TAX — the line through the vertex along
  the total momentum is extrapolated to the beam axis (a point and a
  direction from the geometry file): Z_TAX is the z of its closest approach
  to the axis, CDA_TAX the distance there; CDA_FV likewise with respect to
  the axis inside the fiducial volume;
- :func:`invariant_mass`;
- :func:`straw_acceptance` (0.1 m < r < 1.0 m in each chamber, NA62
  detector paper, JINST 12 (2017) P05025: straw chambers of ~1 m radius
  with a central beam hole)
  and :func:`smear` (Gaussian smearing of momentum and slopes; defaults:
  σ_p/p = 0.3 % ⊕ 0.005 %·p[GeV] and σ_θ = 60 μrad × (10 GeV/p) ⊕ 20 μrad,
  NA62 STRAW performance orders of magnitude [est], configurable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["closest_approach", "two_track_vertex", "pointing", "invariant_mass",
           "straw_acceptance", "smear", "Smearing", "STRAW_R_MIN_M", "STRAW_R_MAX_M"]

STRAW_R_MIN_M = 0.1
STRAW_R_MAX_M = 1.0


def closest_approach(p1, d1, p2, d2):
    """Closest points of lines p1 + s d1 and p2 + t d2 (arrays (n, 3)).

    Returns (point on line 1, point on line 2, distance). Parallel lines
    use the foot of p1 on line 2."""
    p1, d1, p2, d2 = (np.atleast_2d(np.asarray(v, float)) for v in (p1, d1, p2, d2))
    w0 = p1 - p2
    a = np.einsum("ij,ij->i", d1, d1)
    b = np.einsum("ij,ij->i", d1, d2)
    c = np.einsum("ij,ij->i", d2, d2)
    d = np.einsum("ij,ij->i", d1, w0)
    e = np.einsum("ij,ij->i", d2, w0)
    den = a * c - b * b
    parallel = den <= 1e-15 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(parallel, 0.0, (b * e - c * d) / den)
        t = np.where(parallel, e / c, (a * e - b * d) / den)
    q1 = p1 + s[:, None] * d1
    q2 = p2 + t[:, None] * d2
    return q1, q2, np.linalg.norm(q1 - q2, axis=1)


def two_track_vertex(x1, p1, x2, p2):
    """Vertex (midpoint of the closest approach) and CDA [m] of two tracks
    given by a point (n, 3) and a momentum (n, 3) each."""
    q1, q2, cda = closest_approach(x1, p1, x2, p2)
    return 0.5 * (q1 + q2), cda


def pointing(vertex, p_total, axis_point, axis_direction):
    """Z_TAX [m] and CDA_TAX [m]: closest approach of the line through the
    vertex along the total momentum to the beam axis."""
    vertex = np.atleast_2d(np.asarray(vertex, float))
    n = len(vertex)
    ap = np.broadcast_to(np.asarray(axis_point, float), (n, 3))
    ad = np.broadcast_to(np.asarray(axis_direction, float), (n, 3))
    q_track, q_axis, cda = closest_approach(vertex, p_total, ap, ad)
    return q_axis[:, 2], cda


def invariant_mass(p1, p2, m1, m2):
    """Invariant mass [GeV] of two particles with momenta (n, 3)."""
    p1, p2 = np.atleast_2d(p1), np.atleast_2d(p2)
    e1 = np.sqrt(np.sum(p1 * p1, axis=1) + m1 * m1)
    e2 = np.sqrt(np.sum(p2 * p2, axis=1) + m2 * m2)
    p = p1 + p2
    return np.sqrt(np.maximum((e1 + e2) ** 2 - np.sum(p * p, axis=1), 0.0))


def straw_acceptance(xy_by_chamber, r_min=STRAW_R_MIN_M, r_max=STRAW_R_MAX_M):
    """True where the track is inside the active annulus of every chamber
    (``xy_by_chamber``: list of (x, y) arrays; NaN = did not reach)."""
    ok = None
    for x, y in xy_by_chamber:
        r = np.hypot(np.asarray(x, float), np.asarray(y, float))
        inside = (r > r_min) & (r < r_max)
        ok = inside if ok is None else ok & inside
    return ok


@dataclass(frozen=True)
class Smearing:
    """Gaussian resolution model [est]: σ_p/p = a ⊕ b·p, σ_θ = c/p ⊕ d."""

    momentum_const: float = 0.003
    momentum_slope_per_gev: float = 0.00005
    angle_gev_rad: float = 60e-6 * 10.0
    angle_const_rad: float = 20e-6
    enabled: bool = True


def smear(p_vec, smearing: Smearing, normals):
    """Smeared momenta (n, 3) from three standard normals per track."""
    p_vec = np.atleast_2d(np.asarray(p_vec, float))
    if not smearing.enabled:
        return p_vec.copy()
    p = np.linalg.norm(p_vec, axis=1)
    sp = p * np.hypot(smearing.momentum_const, smearing.momentum_slope_per_gev * p)
    st = np.hypot(smearing.angle_gev_rad / p, smearing.angle_const_rad)
    tx = p_vec[:, 0] / p_vec[:, 2] + st * normals[:, 0]
    ty = p_vec[:, 1] / p_vec[:, 2] + st * normals[:, 1]
    p_new = np.abs(p + sp * normals[:, 2])
    pz = p_new / np.sqrt(1 + tx * tx + ty * ty)
    return np.column_stack([pz * tx, pz * ty, pz])
