"""Bremsstrahlung photons converting to e+e−: the conversion weight and the
Bethe–Heitler energy sharing."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.interactions import CHANNEL_PROCESSES, PROCESSES, photon_conversion


@pytest.fixture(scope="module")
def iron(physics):
    return photon_conversion.table(physics, "iron", 1.0)


def test_the_photon_converts_with_seven_ninths_per_radiation_length(iron):
    """20 mm of iron (157.5 kg/m², X0 = 138.4 kg/m²): P = 1 − e^(−7/9 × 1.138)
    = 0.587; a thick volume converts every photon, none is left in vacuum."""
    p = photon_conversion.conversion_probability(iron, [0.020 * 7874.0, 1e5, 0.0])
    np.testing.assert_allclose(p, [1 - np.exp(-7 / 9 * 157.5 / 138.4), 1.0, 0.0], rtol=1e-3)


def test_the_pair_shares_the_photon_energy_as_bethe_heitler(iron):
    """x₊ density ∝ 1 − (4/3)x(1 − x): mean 1/2, P(x₊ < 0.1) = 0.0938/(7/9) =
    0.121 (0.1 if flat); e⁺ + e⁻ carry the photon energy."""
    rng = np.random.default_rng(4)
    n = 60000
    k = np.full(n, 100.0)
    fs = photon_conversion.sample(iron, k, np.tile([0.0, 0.0, 1.0], (n, 1)), np.ones(n),
                                  rng.random((n, 6)), grammage_left_kg_m2=50.0)
    (n1, q1, p1), (n2, q2, p2) = fs.particles
    assert (n1, n2) == ("e+", "e-") and np.all(q1 == 1) and np.all(q2 == -1)
    q = p1[:, 0] + p2[:, 0]
    x = p1[:, 0] / q
    assert x.mean() == pytest.approx(0.5, abs=0.005)
    # exact: ∫0^0.1 (1 − 4/3 x + 4/3 x²) dx / ∫0^1 = (0.1 − 0.00667 + 0.000444) / (7/9)
    assert (x < 0.1).mean() == pytest.approx(0.09378 / (7 / 9), abs=0.006)
    np.testing.assert_allclose(fs.weight, 1 - np.exp(-7 / 9 * 50.0 / 138.4), rtol=1e-6)


def test_the_conversion_is_forced_in_the_ee_channel_only():
    assert "photon_conversion" in PROCESSES
    assert "photon_conversion" in CHANNEL_PROCESSES["ee"]
    assert "photon_conversion" not in CHANNEL_PROCESSES["mumu"]
