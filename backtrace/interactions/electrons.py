"""Electrons and positrons on their way to the LKr: bremsstrahlung energy loss.

PUMAS transports muons; an electron is transported as a muon of the same
momentum (ionisation, multiple scattering and magnetic bending are those of
a β ≈ 1 particle of that momentum) and its radiative energy loss is added
here. After t radiation lengths the fraction z = E/E₀ of its energy that an
electron keeps follows the Bethe–Heitler distribution

    f(z) = (−ln z)^(c − 1) / Γ(c),   c = t / ln 2

(H. Bethe & W. Heitler, Proc. R. Soc. A 146 (1934) 83; the form used by
electron track fits, R. Frühwirth, Comput. Phys. Commun. 154 (2003) 131):
−ln z is Gamma(c, 1)-distributed, so ⟨z⟩ = 2^(−c) = e^(−t), the mean loss
of the radiation length's definition, and the losses of consecutive
layers add (the sum of Gamma variables is Gamma with the summed shape).
One draw per electron gives −ln z over its whole path to STRAW1; along the
path it is shared in proportion to the radiation lengths crossed, so that
its momentum falls where the matter is (``momentum_profile``).

Approximations [est]: the electron's multiple scattering upstream of STRAW1
is PUMAS's at its initial momentum (a lower momentum after a hard photon
scatters it more); the photons are not followed (in NA62's e+e− analysis the
electron's cluster in the LKr is separated from its bremsstrahlung photons:
its energy there is the electron's); positron annihilation and the shower
of an electron that stops are not simulated — an electron whose momentum
falls below :data:`STOP_P_GEV` is absorbed there and its states after that
point are dropped (it fires no veto beyond it). Downstream of STRAW1 the
matter before the LKr (the chambers, 0.46 % X0 each, the RICH) is not given
a radiative loss: photons emitted after the spectrometer magnet travel with
the electron into its LKr cluster, and the 0.9 % X0 of STRAW1 and STRAW2
lower the momentum in the magnet by 0.9 % on average.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaincinv

__all__ = ["bethe_heitler_log_loss", "radiation_lengths", "momentum_profile", "STOP_P_GEV",
           "ELECTRON_NAMES"]

#: Below this momentum [GeV/c] an electron is taken as stopped (its shower
#: ends within a few mm of lead glass) [est, range 5-50 MeV; the same cut as
#: the transport of products, backtrace.interactions.products].
STOP_P_GEV = 0.01
#: Product names transported as electrons.
ELECTRON_NAMES = ("e+", "e-")


def bethe_heitler_log_loss(t_x0, u) -> np.ndarray:
    """−ln z after ``t_x0`` radiation lengths from uniforms ``u`` (inverse
    CDF of Gamma(t/ln 2, 1)); 0 where t = 0."""
    t = np.asarray(t_x0, float)
    c = t / np.log(2.0)
    with np.errstate(invalid="ignore"):
        out = gammaincinv(np.where(c > 0, c, 1.0), np.asarray(u, float))
    return np.where(c > 0, out, 0.0)


def radiation_lengths(states: pd.DataFrame, x0_kg_m2) -> pd.Series:
    """Radiation lengths crossed up to each recorded state of its history
    (same index as ``states``, sorted by track and state); ``x0_kg_m2``:
    material name → X0 [kg/m²] (a segment is in the material of the state
    that starts it)."""
    s = states.sort_values(["track_index", "state_index"], kind="stable")
    g = s.groupby("track_index", sort=False)
    dx = g["grammage_kg_m2"].diff().fillna(0.0).clip(lower=0.0)
    material = g["material"].shift(1).fillna(s["material"])
    x0 = material.map({m: x0_kg_m2(m) for m in material.unique()}).astype(float)
    t = (dx / x0).where(np.isfinite(x0), 0.0)
    return t.groupby(s["track_index"], sort=False).cumsum()


def momentum_profile(t_cum: pd.Series, track: pd.Series, log_loss: pd.Series) -> np.ndarray:
    """Fraction of its momentum an electron keeps at each state: exp(−L t/T),
    L its sampled −ln z over the path (``log_loss`` by track), t the
    radiation lengths crossed so far, T those of the whole path."""
    total = t_cum.groupby(track.to_numpy()).transform("max").to_numpy(float)
    loss = log_loss.reindex(track.to_numpy()).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, t_cum.to_numpy(float) / total, 0.0)
    return np.exp(-loss * share)
