"""Per-track posterior weights of backward histories (``docs/method.md``, "Weights").

For an observed track, the upstream state is a posterior
p(s_TAX | s_det) ∝ p(s_det | s_TAX) φ_src(s_TAX). Each of the N backward
histories of the track carries PUMAS's weight ω; weighting it by
ω·φ_src(s_TAX) and normalising over the track's histories (self-normalised
importance sampling) makes each observed track count once. Histories that do
not reach the source plane carry zero weight; a track none of whose
histories lands where the source lives gets status ``no_source_support``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["posterior_weights"]


PRIORS = ("full", "energy", "none")


def posterior_weights(histories: pd.DataFrame, density, track_weight=None,
                      prior: str = "energy", normalise: bool = True) -> pd.DataFrame:
    """Add ``source_density`` and ``posterior_weight`` to backward histories
    (columns of :class:`backtrace.transport.BatchResult.histories`).

    ``prior``: 'full' weights by the 5-D source density (position, slopes,
    energy, charge) — exact but slow to converge: the dump source is a few cm
    and mrad wide while multiple scattering spreads backward histories over
    tens of cm, so one history per track usually carries all the weight;
    'energy' (default) weights by the source spectrum in energy and charge
    at the plane, leaving the transverse variables prior-free, which removes
    the straggling bias of the energy (``docs/method.md``) with every history useful;
    'none' is the prior-free normalisation of ω (a systematic variation).
    ``track_weight``: optional Series indexed by track_index (default 1).
    ``normalise=False`` leaves out the division by the per-track sum of
    ω·φ (column ``posterior_raw``, always present): for histories of one
    track gathered over several calls, whose normaliser is the sum over all
    of them.
    """
    if prior not in PRIORS:
        raise ValueError(f"prior={prior!r} (expected one of {PRIORS})")
    h = histories
    reached = (h["status"] == "reached_target").to_numpy()
    tx = (h["ux"] / h["uz"]).to_numpy()
    ty = (h["uy"] / h["uz"]).to_numpy()
    if prior == "full":
        phi = density(h["x_m"], h["y_m"], tx, ty, h["kinetic_energy_gev"], h["charge"])
    elif prior == "energy":
        phi = density.energy_density(h["kinetic_energy_gev"], h["charge"])
    else:
        phi = np.ones(len(h))
    phi = np.where(reached, phi, 0.0)
    raw = h["weight"].to_numpy() * phi
    norm = pd.Series(raw).groupby(h["track_index"].to_numpy()).transform("sum").to_numpy()
    if normalise:
        with np.errstate(invalid="ignore", divide="ignore"):
            post = np.where(norm > 0, raw / norm, 0.0)
    else:
        post = raw
    if track_weight is not None:
        post = post * track_weight.reindex(h["track_index"]).to_numpy()
    return h.assign(source_density=phi, posterior_raw=raw, posterior_weight=post)
