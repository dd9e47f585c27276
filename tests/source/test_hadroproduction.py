"""Hadron production shared by the source model and the photonuclear final
state: BMPT, Barton A-scaling, σ_inel from λ_I, meson absorption, √s."""

from __future__ import annotations

import pytest

from backtrace.kinematics import sqrt_s_gev
from backtrace.source.hadroproduction import (
    BERYLLIUM,
    absorption_length_g_cm2,
    barton_alpha,
    bmpt_invariant,
    inelastic_cross_section_mb,
    meson_yield_per_interaction,
    target_constants,
    x_radial,
)


def test_inelastic_cross_sections_from_interaction_lengths():
    # σ = A / (N_A λ_I): Fe 55.845 / (6.022e23 × 132.1 g/cm²) = 702 mb
    assert inelastic_cross_section_mb("iron") == pytest.approx(702.0, rel=1e-3)
    assert inelastic_cross_section_mb("copper") == pytest.approx(768.5, rel=1e-3)


def test_bmpt_shape_and_ratios():
    # falls with x_R and p_T; π−/π+ = 1/(1.05 (1 + x_R)^2.65)
    assert bmpt_invariant("pion", 0.1, 0.3) > bmpt_invariant("pion", 0.5, 0.3)
    assert bmpt_invariant("pion", 0.2, 0.2) > bmpt_invariant("pion", 0.2, 1.0)
    ratio = bmpt_invariant("pion", 0.3, 0.4, -1) / bmpt_invariant("pion", 0.3, 0.4, +1)
    assert ratio == pytest.approx(1 / (1.05 * 1.3 ** 2.65), rel=1e-12)
    assert bmpt_invariant("kaon", 1.2, 0.3) == 0.0  # beyond the kinematic limit


def test_radial_scaling_variable():
    x_r, x_f = x_radial(200.0, 0.0, 0.13957, 400.0)
    assert 0 < x_r < 1 and 0 < x_f < 1
    # a pion at rest in the CM frame has x_R ~ m/E*max
    assert x_radial(14.5, 0.0, 0.13957, 400.0)[0] < 0.05


def test_barton_alpha_reference_values():
    assert barton_alpha(0.0, 0.0) == pytest.approx(0.74 * 0.98)
    assert barton_alpha(0.5, 1.0) == pytest.approx((0.74 - 0.275 + 0.065) * 1.19)


def test_pion_multiplicity_is_physical():
    """Forward π+ per inelastic p–Cu interaction at 400 GeV: a few."""
    n = meson_yield_per_interaction("pion", "copper", +1, 400.0, p_min=1.0)
    assert 2.0 < n < 6.0
    k = meson_yield_per_interaction("kaon", "copper", +1, 400.0, p_min=1.0)
    assert 0.05 < k / n < 0.2  # K/π ~ 0.1


def test_sqrt_s_of_400_gev_protons():
    # s = 2 m_p² + 2 m_p E_beam, m_p = 0.93827208816 GeV: √s = 27.4296 GeV
    assert sqrt_s_gev(400.0) == pytest.approx(27.4296, abs=1e-4)
    assert sqrt_s_gev(450.0) == pytest.approx(29.0896, abs=1e-4)


def test_target_constants_from_the_material_table():
    assert target_constants("iron") == (55.845, 132.1)
    assert target_constants("beryllium") == (BERYLLIUM["mass_number"], 77.8)
    # pions: λ_I / 0.77 (Carroll et al.); iron 171.6 g/cm²
    assert absorption_length_g_cm2("iron", "pion") == pytest.approx(171.56, rel=1e-3)
    # no tabulated λ_I: the PDG rule 35 A^(1/3) g/cm² (tungsten: 199.6)
    assert target_constants("tungsten")[1] == pytest.approx(35 * 183.84 ** (1 / 3))
