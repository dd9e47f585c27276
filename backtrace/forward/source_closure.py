"""End-to-end closure of the back-tracing chain.

Muons generated at the dump and transported forward to the detector
(:mod:`backtrace.source.simulate`, which keeps each muon's true state at the TAX
exit plane) are back-traced from their detector state to the same plane,
``n_samples`` histories each, and weighted by ω·φ_src(s_TAX) normalised per
track (:mod:`backtrace.prompt.posterior`, with the source density of
:mod:`backtrace.source.density`, built from independent source events).
The weighted distributions of the back-traced states must reproduce the
true ones of the detected muons (energy, slopes, position at the TAX exit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtrace.prompt.posterior import posterior_weights
from backtrace.transport import TraceConfig, Tracer

__all__ = ["backtrace_sample", "compare", "QUANTITIES"]

#: quantity -> (truth column builder, posterior column builder)
QUANTITIES = {
    "e_gev": (lambda t: t["true_tax_e_gev"], lambda h: h["kinetic_energy_gev"]),
    "tx": (lambda t: t["true_tax_ux"] / t["true_tax_uz"], lambda h: h["ux"] / h["uz"]),
    "ty": (lambda t: t["true_tax_uy"] / t["true_tax_uz"], lambda h: h["uy"] / h["uz"]),
    "x_m": (lambda t: t["true_tax_x_m"], lambda h: h["x_m"]),
    "y_m": (lambda t: t["true_tax_y_m"], lambda h: h["y_m"]),
}


def backtrace_sample(sample: pd.DataFrame, density, *, n_samples: int = 16,
                     seed: int = 1, beamline=None, geometry_file=None,
                     overrides=(), prior: str = "energy") -> pd.DataFrame:
    """Backward histories of every track of ``sample`` to the density's
    plane, with ``posterior_weight`` (track weight included)."""
    tracer = Tracer(TraceConfig(geometry_file=geometry_file,
                                overrides=tuple(overrides), to_z_m=density.plane_z_m,
                                samples_per_track=n_samples, seed=seed,
                                record=False), beamline)
    tracks = sample[["x_m", "y_m", "z_m", "px_gev", "py_gev", "pz_gev", "charge"]].copy()
    # start just upstream of the plane the tracks were recorded on
    tracks["z_m"] = tracks["z_m"] - 1e-6
    tracks.insert(0, "track_index", np.arange(len(sample)))
    histories = tracer.trace(tracks).histories
    weights = pd.Series(sample["weight"].to_numpy(), index=np.arange(len(sample)))
    return posterior_weights(histories, density, weights, prior=prior)


def compare(sample: pd.DataFrame, histories: pd.DataFrame, quantity: str, bins):
    """Weighted histograms (truth, posterior) and their errors.

    The truth error is from Σw² over tracks; the posterior's from the
    per-track sums (histories of one track are correlated)."""
    truth_of, post_of = QUANTITIES[quantity]
    t = truth_of(sample).to_numpy()
    w = sample["weight"].to_numpy()
    ht, _ = np.histogram(t, bins, weights=w)
    vt, _ = np.histogram(t, bins, weights=w * w)
    v = post_of(histories).to_numpy()
    pw = histories["posterior_weight"].to_numpy()
    hp, _ = np.histogram(v, bins, weights=pw)
    k = np.clip(np.digitize(v, bins) - 1, -1, len(bins) - 1)
    valid = (k >= 0) & (k < len(bins) - 1)
    per = pd.DataFrame({"track": histories["track_index"].to_numpy()[valid],
                        "bin": k[valid], "w": pw[valid]})
    sums = per.groupby(["track", "bin"])["w"].sum().reset_index()
    vp = np.bincount(sums["bin"], weights=sums["w"] ** 2, minlength=len(bins) - 1)
    n_tracks = np.bincount(np.clip(np.digitize(t, bins) - 1, 0, len(bins) - 2),
                           minlength=len(bins) - 1)
    return {"bins": np.asarray(bins), "truth": ht, "truth_err": np.sqrt(vt),
            "posterior": hp, "posterior_err": np.sqrt(vp), "n_tracks": n_tracks}
