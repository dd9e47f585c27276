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
- :func:`in_fiducial_volume`: the vertex cuts of a selection (z range,
  optional radius from the beam axis, optional union of cones with their
  tip on the beam axis, :func:`in_cones`);
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
           "straw_acceptance", "smear", "Smearing", "STRAW_R_MIN_M", "STRAW_R_MAX_M",
           "radius_from_axis", "in_cones", "in_fiducial_volume"]

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

    def scaled(self, factor: float) -> "Smearing":
        """Every resolution term × ``factor`` (a sensitivity study's knob)."""
        return Smearing(self.momentum_const * factor, self.momentum_slope_per_gev * factor,
                        self.angle_gev_rad * factor, self.angle_const_rad * factor,
                        self.enabled)


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


def radius_from_axis(points, axis_point, axis_direction) -> np.ndarray:
    """Distance [m] of points (n, 3) from the beam axis line."""
    d = np.asarray(axis_direction, float)
    d = d / np.linalg.norm(d)
    rel = np.atleast_2d(np.asarray(points, float)) - np.asarray(axis_point, float)
    along = rel @ d
    return np.linalg.norm(rel - along[:, None] * d, axis=1)


def in_cones(points, cones, tip_z_m: float, axis_point, axis_direction) -> np.ndarray:
    """True inside the union of cones with a common tip on the beam axis at
    z = ``tip_z_m`` and bases ``cones`` = [(z_base [m], r_base [m]), …]:
    tip_z ≤ z ≤ z_base and r ≤ r_base (z − tip_z)/(z_base − tip_z)."""
    pts = np.atleast_2d(np.asarray(points, float))
    z = pts[:, 2]
    r = radius_from_axis(pts, axis_point, axis_direction)
    inside = np.zeros(len(pts), bool)
    for z_base, r_base in cones:
        frac = (z - tip_z_m) / (float(z_base) - tip_z_m)
        inside |= (z >= tip_z_m) & (z <= z_base) & (r <= float(r_base) * frac)
    return inside


def in_fiducial_volume(vertex, selection: dict, axis_point, axis_direction) -> np.ndarray:
    """The fiducial cuts of a regions file's ``[selection]`` on vertices
    (n, 3): ``fiducial_z_min_m`` ≤ z ≤ ``fiducial_z_max_m``, optionally the
    radius from the beam axis below ``fiducial_r_max_m`` and the union of
    ``fiducial_cones`` (tip on the axis at ``fiducial_cone_tip_z_m``)."""
    v = np.atleast_2d(np.asarray(vertex, float))
    ok = (selection["fiducial_z_min_m"] <= v[:, 2]) & (v[:, 2] <= selection["fiducial_z_max_m"])
    if selection.get("fiducial_r_max_m") is not None:
        ok &= radius_from_axis(v, axis_point, axis_direction) <= selection["fiducial_r_max_m"]
    if selection.get("fiducial_cones"):
        ok &= in_cones(v, selection["fiducial_cones"], selection["fiducial_cone_tip_z_m"],
                       axis_point, axis_direction)
    return ok
