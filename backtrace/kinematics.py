"""Relativistic kinematics as small vectorised functions (GeV, c = 1).

Four-vectors are arrays (..., 4) ordered (E, px, py, pz). Random inputs are
uniform numbers in (0, 1) passed explicitly, so callers control the stream
(see :mod:`backtrace.rng`).
"""

from __future__ import annotations

import numpy as np

from backtrace.constants import PROTON_MASS_GEV

__all__ = ["sqrt_s_gev", "two_body_momentum", "boost", "isotropic_directions",
           "two_body_decay", "three_body_decay", "lab_muon_energy_range",
           "invariant_mass"]


def two_body_momentum(m_parent, m1, m2):
    """Momentum of the daughters in the parent rest frame,
    p* = sqrt((M² − (m1+m2)²)(M² − (m1−m2)²)) / 2M."""
    m_parent = np.asarray(m_parent, float)
    a = m_parent ** 2 - (m1 + m2) ** 2
    b = m_parent ** 2 - (m1 - m2) ** 2
    return np.sqrt(np.maximum(a * b, 0.0)) / (2 * m_parent)


def isotropic_directions(u1, u2):
    """Unit vectors uniform on the sphere from two uniforms."""
    cos_t = 2 * np.asarray(u1) - 1
    sin_t = np.sqrt(np.maximum(1 - cos_t ** 2, 0.0))
    phi = 2 * np.pi * np.asarray(u2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=-1)


def boost(p4, beta):
    """Lorentz boost of four-vectors p4 (n, 4) by velocity beta (n, 3)."""
    p4 = np.asarray(p4, float)
    beta = np.asarray(beta, float)
    b2 = np.sum(beta * beta, axis=-1)
    gamma = 1 / np.sqrt(1 - b2)
    bp = np.sum(beta * p4[..., 1:], axis=-1)
    safe = np.where(b2 > 0, b2, 1.0)
    coef = np.where(b2 > 0, (gamma - 1) * bp / safe, 0.0) + gamma * p4[..., 0]
    e = gamma * (p4[..., 0] + bp)
    p = p4[..., 1:] + coef[..., None] * beta
    return np.concatenate([e[..., None], p], axis=-1)


def _rest_frame_pair(m_parent, m1, m2, u1, u2):
    p = two_body_momentum(m_parent, m1, m2)
    n = isotropic_directions(u1, u2)
    e1 = np.sqrt(p ** 2 + m1 ** 2)
    e2 = np.sqrt(p ** 2 + m2 ** 2)
    d1 = np.concatenate([e1[..., None], p[..., None] * n], axis=-1)
    d2 = np.concatenate([e2[..., None], -p[..., None] * n], axis=-1)
    return d1, d2


def two_body_decay(parent_p4, m1, m2, u1, u2):
    """Decay parents (n, 4) into two daughters, isotropic in the rest frame.
    Returns the two daughters' lab four-vectors."""
    parent_p4 = np.asarray(parent_p4, float)
    m_parent = invariant_mass(parent_p4)
    d1, d2 = _rest_frame_pair(m_parent, m1, m2, u1, u2)
    beta = parent_p4[..., 1:] / parent_p4[..., :1]
    return boost(d1, beta), boost(d2, beta)


def three_body_decay(parent_p4, m1, m2, m3, uniforms):
    """Phase-space three-body decays (flat Dalitz plot) of parents (n, 4).

    ``uniforms``: (n, 2k + 4) uniforms; the first 2k are k accept-reject
    tries of (m12², m23²) in the Dalitz box, the last 4 orient the decay.
    Returns (daughter 1, 2, 3) lab four-vectors and the accepted mask (False
    when all k tries failed; the last try is then used, which happens with
    probability (1 − acceptance)^k).
    """
    parent_p4 = np.asarray(parent_p4, float)
    M = invariant_mass(parent_p4)
    u = np.asarray(uniforms, float)
    k = (u.shape[1] - 4) // 2
    lo12, hi12 = (m1 + m2) ** 2, (M - m3) ** 2
    lo23, hi23 = (m2 + m3) ** 2, (M - m1) ** 2
    chosen12 = np.zeros_like(M)
    chosen23 = np.zeros_like(M)
    done = np.zeros(M.shape, bool)
    for j in range(k):
        s12 = lo12 + u[:, 2 * j] * (hi12 - lo12)
        s23 = lo23 + u[:, 2 * j + 1] * (hi23 - lo23)
        ok = _in_dalitz(M, m1, m2, m3, s12, s23) & ~done
        chosen12 = np.where(ok | (~done & (j == k - 1)), s12, chosen12)
        chosen23 = np.where(ok | (~done & (j == k - 1)), s23, chosen23)
        done |= ok
    m12 = np.sqrt(chosen12)
    # daughters 1, 2 in the (12) frame, then (12) and 3 in the parent frame
    d12, d3 = _rest_frame_pair(M, m12, m3, u[:, -4], u[:, -3])
    d1, d2 = _rest_frame_pair(m12, m1, m2, u[:, -2], u[:, -1])
    beta12 = d12[:, 1:] / d12[:, :1]
    d1, d2 = boost(d1, beta12), boost(d2, beta12)
    beta = parent_p4[:, 1:] / parent_p4[:, :1]
    return boost(d1, beta), boost(d2, beta), boost(d3, beta), done


def _in_dalitz(M, m1, m2, m3, s12, s23):
    """Inside the Dalitz region (PDG kinematics review, eq. 49.23)."""
    m12 = np.sqrt(s12)
    e2 = (s12 - m1 ** 2 + m2 ** 2) / (2 * m12)
    e3 = (M ** 2 - s12 - m3 ** 2) / (2 * m12)
    p2 = np.sqrt(np.maximum(e2 ** 2 - m2 ** 2, 0))
    p3 = np.sqrt(np.maximum(e3 ** 2 - m3 ** 2, 0))
    lo = (e2 + e3) ** 2 - (p2 + p3) ** 2
    hi = (e2 + e3) ** 2 - (p2 - p3) ** 2
    return (s23 >= lo) & (s23 <= hi) & (e3 >= m3)


def invariant_mass(p4):
    p4 = np.asarray(p4, float)
    m2 = p4[..., 0] ** 2 - np.sum(p4[..., 1:] ** 2, axis=-1)
    return np.sqrt(np.maximum(m2, 0.0))


def lab_muon_energy_range(e_parent, m_parent, m_mu, m_nu=0.0):
    """[E_min, E_max] of the muon of a two-body decay of a parent of energy
    E: γ(E* ∓ β p*)."""
    e_parent = np.asarray(e_parent, float)
    gamma = e_parent / m_parent
    beta = np.sqrt(np.maximum(1 - 1 / gamma ** 2, 0))
    p_star = two_body_momentum(m_parent, m_mu, m_nu)
    e_star = np.sqrt(p_star ** 2 + m_mu ** 2)
    return gamma * (e_star - beta * p_star), gamma * (e_star + beta * p_star)


def sqrt_s_gev(p_beam_gev: float) -> float:
    """√s [GeV] of a proton of momentum ``p_beam_gev`` on a nucleon at rest."""
    e_beam = float(np.hypot(p_beam_gev, PROTON_MASS_GEV))
    return float(np.sqrt(2 * PROTON_MASS_GEV ** 2 + 2 * PROTON_MASS_GEV * e_beam))
