"""Muon source density at the TAX exit plane, for backward weighting.

Backward Monte Carlo needs φ_src(s), the phase-space density of the muons
leaving the dump, at the end of each backward history (weights
ω·φ_src(s_TAX), ``docs/method.md``). It is built once from the forward source model: source
muons are transported with PUMAS from their creation point to the TAX exit
plane (TAX2 back face, z = 26.32 m), and there the density is modelled, per
charge and per bin of log kinetic energy, as the bin's yield times a 4-D
density in (x, y, t_x, t_y) (slopes t = u_x/u_z, u_y/u_z): a mixture of
``components`` Gaussians fitted by weighted expectation–maximisation
(default 3; 1 gives the single Gaussian with the bin's weighted mean and
covariance). The source is more peaked than one Gaussian — a "virtual
point source" a few mm wide inside the TAX with long tails, x–t_x
correlation 0.93–0.96 — and near the beam axis a single Gaussian is
10–45 % low, a 3-Gaussian mixture 6–20 % low (``studies/source_model.md``,
"Backward method"). The bin's moments (``mean``, ``cov_inv``) are kept
either way: the backward method's proposal uses them.

Units: muons per POT per GeV per m² per rad² (slopes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backtrace.beamline.line import BeamLine
from backtrace.io import write_text_atomic
from backtrace.pumas.physics import cache_dir
from backtrace.rng import DENSITY_EVENTS_SEED_OFFSET, DENSITY_SOURCE_SEED
from backtrace.source.forward import SimulationConfig, Simulator

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
    #: the mixture (None: the single Gaussian above): fractions (2, n_bins, K),
    #: means (…, K, 4), precisions (…, K, 4, 4), log normalisations (…, K)
    mix_fraction: np.ndarray | None = None
    mix_mean: np.ndarray | None = None
    mix_cov_inv: np.ndarray | None = None
    mix_log_norm: np.ndarray | None = None

    def bins(self, e_gev, charge):
        """Charge row c, energy bin k, whether the source is modelled there
        (inside the edges, ≥ 20 fitted muons) and the bin's yield per GeV."""
        e, q = np.asarray(e_gev, float), np.asarray(charge, float)
        k = np.searchsorted(self.log_e_edges, np.log10(np.maximum(e, 1e-9)),
                            side="right") - 1
        inside = (k >= 0) & (k < len(self.log_e_edges) - 1)
        k = np.clip(k, 0, len(self.log_e_edges) - 2)
        c = (q > 0).astype(int)
        known = inside & (self.n_entries[c, k] >= 20)
        width = 10 ** self.log_e_edges[k + 1] - 10 ** self.log_e_edges[k]
        return c, k, known, np.where(known, self.yield_per_pot[c, k] / width, 0.0)

    def __call__(self, x, y, tx, ty, e_gev, charge) -> np.ndarray:
        """Density at the given states (arrays)."""
        c, k, known, per_gev = self.bins(e_gev, charge)
        point = np.stack([np.asarray(v, float) for v in (x, y, tx, ty)], axis=-1)
        if self.mix_fraction is None:
            shape = np.exp(_log_gauss(point, self.mean[c, k], self.cov_inv[c, k],
                                      self.log_norm[c, k]))
        else:
            shape = sum(self.mix_fraction[c, k, j] * np.exp(_log_gauss(
                point, self.mix_mean[c, k, j], self.mix_cov_inv[c, k, j],
                self.mix_log_norm[c, k, j])) for j in range(self.mix_fraction.shape[-1]))
        return np.where(known, per_gev * shape, 0.0)

    def energy_density(self, e_gev, charge) -> np.ndarray:
        """Marginal density in kinetic energy and charge [muons per POT per
        GeV], i.e. the source spectrum at the plane."""
        return self.bins(e_gev, charge)[3]

    def to_json(self) -> str:
        return json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                           for k, v in self.__dict__.items()})

    @classmethod
    def from_json(cls, text: str) -> "SourceDensity":
        d = json.loads(text)
        return cls(**{k: (np.asarray(v) if isinstance(v, list) else v)
                      for k, v in d.items()})

    def save(self, path) -> Path:
        return write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path) -> "SourceDensity":
        return cls.from_json(Path(path).read_text())


def _log_gauss(point, mean, prec, log_norm) -> np.ndarray:
    """log N(point; mean, prec⁻¹) row by row ((n, 4) arrays, (n, 4, 4))."""
    d = point - mean
    return log_norm - 0.5 * np.einsum("ni,nij,nj->n", d, prec, d)


#: Diagonal added to every fitted covariance [m², m², rad², rad²]: keeps
#: components from collapsing onto a few heavy-weight muons.
COVARIANCE_FLOOR = np.array([1e-8, 1e-8, 1e-10, 1e-10])


def fit_mixture(data: np.ndarray, weight: np.ndarray, components: int,
                iterations: int = 200):
    """Weighted EM fit of a Gaussian mixture to (n, d) points.

    Deterministic start: all components at the weighted mean, with the
    weighted covariance scaled by factors log-spaced over [0.1, 3] (the
    source is a narrow core plus broad tails). Returns fractions (K,),
    means (K, d), covariances (K, d, d)."""
    w = np.asarray(weight, float) / np.sum(weight)
    mean0 = np.average(data, axis=0, weights=w)
    cov0 = np.cov(data.T, aweights=w) + np.diag(COVARIANCE_FLOOR)
    frac = np.full(components, 1.0 / components)
    means = np.tile(mean0, (components, 1))
    covs = np.array([f * cov0 for f in np.geomspace(0.1, 3.0, components)])
    previous = -np.inf
    for _ in range(iterations):
        logp = np.column_stack([np.log(frac[j]) + _log_pdf(data, means[j], covs[j])
                                for j in range(components)])
        top = logp.max(axis=1, keepdims=True)
        resp = np.exp(logp - top)
        total = resp.sum(axis=1, keepdims=True)
        loglik = float(np.sum(w * (np.log(total[:, 0]) + top[:, 0])))
        resp *= w[:, None] / total
        nk = np.maximum(resp.sum(axis=0), 1e-300)
        frac = nk / nk.sum()
        means = resp.T @ data / nk[:, None]
        for j in range(components):
            d = data - means[j]
            covs[j] = (resp[:, j, None] * d).T @ d / nk[j] + np.diag(COVARIANCE_FLOOR)
        if abs(loglik - previous) < 1e-9 * max(1.0, abs(loglik)):
            break
        previous = loglik
    return frac, means, covs


def _log_pdf(data, mean, cov) -> np.ndarray:
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (data - mean).T)
    return (-0.5 * np.sum(z * z, axis=0) - np.log(np.diag(chol)).sum()
            - 0.5 * data.shape[1] * np.log(2 * np.pi))


#: Lowest kinetic energy [GeV] of the density's energy bins.
E_MIN_GEV = 2.0
#: Number of log-spaced energy bins, from E_MIN_GEV to the beam momentum.
N_ENERGY_BINS = 24


def energy_edges(e_max_gev: float) -> np.ndarray:
    """Default log10 kinetic-energy bin edges up to ``e_max_gev``."""
    return np.linspace(np.log10(E_MIN_GEV), np.log10(e_max_gev), N_ENERGY_BINS + 1)


def fit_density(states: pd.DataFrame, n_events: int, plane_z_m: float,
                log_e_edges=None, components: int = 3,
                e_max_gev: float | None = None) -> SourceDensity:
    """Fit from weighted states at the plane (columns x_m, y_m, ux, uy, uz,
    kinetic_energy_gev, charge, weight = muons per POT already divided by
    the number of events); ``components`` Gaussians per (charge, energy
    bin), 1 for the single moment Gaussian. Bins: ``log_e_edges``, else
    :func:`energy_edges` up to ``e_max_gev`` (the beam momentum)."""
    if components < 1:
        raise ValueError("components must be >= 1")
    if log_e_edges is None:
        if e_max_gev is None:
            raise ValueError("fit_density needs log_e_edges or e_max_gev")
        log_e_edges = energy_edges(e_max_gev)
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
    K = components
    mix = {"mix_fraction": np.zeros((2, nb, K)), "mix_mean": np.zeros((2, nb, K, 4)),
           "mix_cov_inv": np.tile(np.eye(4), (2, nb, K, 1, 1)),
           "mix_log_norm": np.full((2, nb, K), -np.inf)}
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
            if K > 1:
                frac, means, covs = fit_mixture(data[sel], ww, K)
                mix["mix_fraction"][c, b] = frac
                mix["mix_mean"][c, b] = means
                mix["mix_cov_inv"][c, b] = np.linalg.inv(covs)
                mix["mix_log_norm"][c, b] = -0.5 * (4 * np.log(2 * np.pi)
                                                    + np.linalg.slogdet(covs)[1])
    if K == 1:
        mix = {}
    return SourceDensity(plane_z_m, np.asarray(log_e_edges), yld, mean, cov_inv,
                         log_norm, n, **mix)


def build_source_density(simulator, n_events: int, batch_size: int = 5000,
                         components: int = 3) -> SourceDensity:
    """Forward-sample the source to the TAX exit plane with a
    :class:`backtrace.source.forward.Simulator` and fit the density (its own
    events: seed + :data:`backtrace.rng.DENSITY_EVENTS_SEED_OFFSET`)."""
    parts = []
    seed = simulator.config.seed + DENSITY_EVENTS_SEED_OFFSET
    for start in range(0, n_events, batch_size):
        events = np.arange(start, min(start + batch_size, n_events), dtype=np.int64)
        src, _, h = simulator.to_tax_exit(seed, events, n_events)
        if src.empty:
            continue
        ok = (h["status"] == "reached_target").to_numpy()
        h = h[ok].assign(weight=h["weight"].to_numpy()[ok] * src["weight"].to_numpy()[ok])
        parts.append(h)
    states = pd.concat(parts, ignore_index=True)
    return fit_density(states, n_events, simulator.tax_exit_z, components=components,
                       e_max_gev=simulator.geometry.beam_momentum_gev)


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


def cached_source_density(beamline, config, n_events: int,
                          components: int = 3) -> SourceDensity:
    """:func:`build_source_density` for the beam line and a
    :class:`backtrace.source.forward.SimulationConfig` (its source model, seed and
    energy loss), cached on disk (the physics cache directory,
    ``source_density/``) by the upstream geometry, the source configuration,
    the seed and the number of events. The simulator is built only on a
    cache miss."""
    import hashlib
    from dataclasses import asdict

    key = hashlib.sha256(json.dumps({
        "geometry": upstream_digest(beamline.geometry, beamline.tax_exit_z_m),
        "source": asdict(config.source), "seed": config.seed,
        "energy_loss": config.energy_loss, "events": n_events,
        "components": components, "format": 2}, sort_keys=True, default=str).encode()).hexdigest()[:24]
    path = cache_dir() / "source_density" / f"{key}.json"
    if path.exists():
        try:
            return SourceDensity.load(path)
        except (ValueError, KeyError, TypeError):
            pass  # rebuilt below

    density = build_source_density(Simulator(config, beamline), n_events,
                                   components=components)
    try:
        density.save(path)
    except OSError:
        pass  # an unwritable cache only costs time
    return density


def density_for_run(config, beamline=None) -> SourceDensity:
    """The source density at the TAX exit (cached on disk by the geometry
    upstream of the TAX exit: magnet settings downstream reuse it), for the
    nominal source geometry (``config.source_overrides``)."""
    overrides = tuple(config.overrides if config.source_overrides is None
                      else config.source_overrides)
    if beamline is None or overrides != beamline.overrides:
        beamline = BeamLine.shared(config.geometry_file, overrides)
    sim_cfg = SimulationConfig(geometry_file=config.geometry_file, overrides=overrides,
                               seed=DENSITY_SOURCE_SEED)
    return cached_source_density(beamline, sim_cfg, config.density_events)
