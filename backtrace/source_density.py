"""Muon source density at the TAX exit plane, for backward weighting.

Backward Monte Carlo needs φ_src(s), the phase-space density of the muons
leaving the dump, at the end of each backward history (METHOD.md: weights
ω·φ_src(s_TAX)). It is built once from the forward source model: source
muons are transported with PUMAS from their creation point to the TAX exit
plane (TAX2 back face, z = 26.32 m), and there the density is modelled, per
charge and per bin of log kinetic energy, as the bin's yield times a 4-D
Gaussian in (x, y, t_x, t_y) (slopes t = u_x/u_z, u_y/u_z) with the
weighted mean and full covariance of the bin. Correlations between position
and angle are kept; non-Gaussian tails are not (their effect is measured by
the end-to-end closure test).

Units: muons per POT per GeV per m² per rad² (slopes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SourceDensity", "build_source_density"]

COLUMNS = ("x_m", "y_m", "tx", "ty")


@dataclass
class SourceDensity:
    """φ_src at z = plane_z_m (see module docstring)."""

    plane_z_m: float
    log_e_edges: np.ndarray          # log10 kinetic energy [GeV] bin edges
    yield_per_pot: np.ndarray        # (2, n_bins): charge -1, +1
    mean: np.ndarray                 # (2, n_bins, 4)
    cov_inv: np.ndarray              # (2, n_bins, 4, 4)
    log_norm: np.ndarray             # (2, n_bins): log of 1/sqrt((2π)^4 det Σ)
    n_entries: np.ndarray            # (2, n_bins)

    def __call__(self, x, y, tx, ty, e_gev, charge) -> np.ndarray:
        """Density at the given states (arrays)."""
        x, y, tx, ty, e, q = (np.asarray(v, float) for v in (x, y, tx, ty, e_gev, charge))
        k = np.searchsorted(self.log_e_edges, np.log10(np.maximum(e, 1e-9)),
                            side="right") - 1
        inside = (k >= 0) & (k < len(self.log_e_edges) - 1)
        k = np.clip(k, 0, len(self.log_e_edges) - 2)
        c = (q > 0).astype(int)
        d = np.stack([x, y, tx, ty], axis=-1) - self.mean[c, k]
        chi2 = np.einsum("ni,nij,nj->n", d, self.cov_inv[c, k], d)
        width = (10 ** self.log_e_edges[k + 1] - 10 ** self.log_e_edges[k])
        dens = self.yield_per_pot[c, k] / width * np.exp(self.log_norm[c, k] - 0.5 * chi2)
        ok = inside & (self.n_entries[c, k] >= 20)
        return np.where(ok, dens, 0.0)

    def energy_density(self, e_gev, charge) -> np.ndarray:
        """Marginal density in kinetic energy and charge [muons per POT per
        GeV], i.e. the source spectrum at the plane."""
        e, q = np.asarray(e_gev, float), np.asarray(charge, float)
        k = np.searchsorted(self.log_e_edges, np.log10(np.maximum(e, 1e-9)),
                            side="right") - 1
        inside = (k >= 0) & (k < len(self.log_e_edges) - 1)
        k = np.clip(k, 0, len(self.log_e_edges) - 2)
        c = (q > 0).astype(int)
        width = 10 ** self.log_e_edges[k + 1] - 10 ** self.log_e_edges[k]
        ok = inside & (self.n_entries[c, k] >= 20)
        return np.where(ok, self.yield_per_pot[c, k] / width, 0.0)

    def to_json(self) -> str:
        return json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                           for k, v in self.__dict__.items()})

    @classmethod
    def from_json(cls, text: str) -> "SourceDensity":
        d = json.loads(text)
        return cls(**{k: (np.asarray(v) if isinstance(v, list) else v)
                      for k, v in d.items()})

    def save(self, path) -> Path:
        from .io import write_text_atomic

        return write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path) -> "SourceDensity":
        return cls.from_json(Path(path).read_text())


def fit_density(states: pd.DataFrame, n_events: int, plane_z_m: float,
                log_e_edges=None) -> SourceDensity:
    """Fit from weighted states at the plane (columns x_m, y_m, ux, uy, uz,
    kinetic_energy_gev, charge, weight = muons per POT already divided by
    the number of events)."""
    if log_e_edges is None:
        log_e_edges = np.linspace(np.log10(2.0), np.log10(400.0), 25)
    tx = states["ux"] / states["uz"]
    ty = states["uy"] / states["uz"]
    data = np.column_stack([states["x_m"], states["y_m"], tx, ty])
    log_e = np.log10(states["kinetic_energy_gev"].to_numpy())
    w = states["weight"].to_numpy()
    q = (states["charge"].to_numpy() > 0).astype(int)
    nb = len(log_e_edges) - 1
    k = np.searchsorted(log_e_edges, log_e, side="right") - 1
    yld = np.zeros((2, nb))
    mean = np.zeros((2, nb, 4))
    cov_inv = np.tile(np.eye(4), (2, nb, 1, 1))
    log_norm = np.full((2, nb), -np.inf)
    n = np.zeros((2, nb), dtype=int)
    for c in (0, 1):
        for b in range(nb):
            sel = (q == c) & (k == b)
            n[c, b] = sel.sum()
            if n[c, b] < 20:
                continue
            ww = w[sel]
            yld[c, b] = ww.sum()
            mu = np.average(data[sel], axis=0, weights=ww)
            cov = np.cov(data[sel].T, aweights=ww) + np.diag([1e-8, 1e-8, 1e-10, 1e-10])
            mean[c, b] = mu
            cov_inv[c, b] = np.linalg.inv(cov)
            sign, logdet = np.linalg.slogdet(cov)
            log_norm[c, b] = -0.5 * (4 * np.log(2 * np.pi) + logdet)
    return SourceDensity(plane_z_m, np.asarray(log_e_edges), yld, mean, cov_inv,
                         log_norm, n)


def build_source_density(simulator, n_events: int, batch_size: int = 5000) -> SourceDensity:
    """Forward-sample the source to the TAX exit plane with a
    :class:`backtrace.simulate.Simulator` and fit the density."""
    from .source import sample_source_muons

    cfg = simulator.config
    parts = []
    for start in range(0, n_events, batch_size):
        events = np.arange(start, min(start + batch_size, n_events), dtype=np.int64)
        src = sample_source_muons(simulator.geometry, cfg.source, cfg.seed + 7919,
                                  events, n_events)
        if src.empty:
            continue
        key = src["event"].to_numpy(np.int64) * 4 + src["muon"].to_numpy(np.int64)
        tracks = src[["x_m", "y_m", "z_m", "px_gev", "py_gev", "pz_gev", "charge"]].copy()
        tracks.insert(0, "track_index", key)
        h = simulator.stage1.trace(tracks).histories
        ok = (h["status"] == "reached_target").to_numpy()
        h = h[ok].assign(weight=h["weight"].to_numpy()[ok] * src["weight"].to_numpy()[ok])
        parts.append(h)
    states = pd.concat(parts, ignore_index=True)
    return fit_density(states, n_events, simulator.tax_exit_z)


def upstream_digest(geometry, z_max_m: float) -> str:
    """Digest of what a forward source simulation to ``z_max_m`` sees: the
    beam, the world and the elements starting upstream of that plane (magnet
    settings downstream of the TAX do not change the source density)."""
    import hashlib
    from dataclasses import asdict

    elements = [asdict(e) for e in geometry.elements if e.z_min_m < z_max_m]
    fills = [f for f in geometry.fills if f["z_min_m"] < z_max_m]
    blob = json.dumps({"beam": geometry.beam, "world": geometry.world,
                       "fills": fills, "elements": elements},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_source_density(simulator, n_events: int) -> SourceDensity:
    """:func:`build_source_density`, cached on disk (the physics cache
    directory, ``source_density/``) by the upstream geometry, the source
    configuration, the seed and the number of events."""
    import hashlib
    from dataclasses import asdict

    from .pumas.physics import cache_dir

    cfg = simulator.config
    key = hashlib.sha256(json.dumps({
        "geometry": upstream_digest(simulator.geometry, simulator.tax_exit_z),
        "source": asdict(cfg.source), "seed": cfg.seed,
        "energy_loss": cfg.energy_loss, "events": n_events,
        "format": 1}, sort_keys=True, default=str).encode()).hexdigest()[:24]
    path = cache_dir() / "source_density" / f"{key}.json"
    if path.exists():
        try:
            return SourceDensity.load(path)
        except (ValueError, KeyError, TypeError):
            pass  # rebuilt below
    density = build_source_density(simulator, n_events)
    try:
        density.save(path)
    except OSError:
        pass  # an unwritable cache only costs time
    return density
