"""Backward method of ``simulate-tracks``: a proposal over the detector plane,
back-traced to the TAX exit and weighted by the source density there.

Each proposal *i* draws, from its own random stream (:mod:`backtrace.rng`):

1. the charge (±1 with probability ½), the kinetic energy log-uniform in
   ``[e_min_gev, e_max_gev]`` (default upper end: the beam momentum) and the position uniform over the acceptance
   (``straw1``: the annulus ``acceptance_r_m``; ``plane``: the world's
   cross-section);
2. the slopes (t_x, t_y) = (u_x/u_z, u_y/u_z) from a proposal centred where
   the source lives. The backward map from the detector slopes to the TAX
   exit state s = (x, y, t_x, t_y) is linearised with three deterministic
   back-traces (CSDA, no scattering) at t and t + δ e_x, t + δ e_y,
   s(t') ≈ c + J (t' − t), starting from t pointing at the beam axis at the
   TAX exit and refined by ``newton_steps`` Newton steps. On that 2-D
   manifold the source of the energy bin, approximated by its moment
   Gaussian (:mod:`backtrace.source.density`, mean μ, covariance Σ), widened by the
   Fermi–Eyges covariance Σ_ms of the multiple scattering along the CSDA
   path (:func:`scattering_covariance`), is a Gaussian in t with precision
   Λ = Jᵀ (Σ + Σ_ms)⁻¹ J and mean t* = t + Λ⁻¹ Jᵀ (Σ + Σ_ms)⁻¹ (μ − c). The
   proposal is the mixture (1 − f) N(t*, k² Λ⁻¹) + f N(t*, 16 k² Λ⁻¹)
   (k = ``width_factor``, f = ``defensive_fraction``); where the
   linearisation fails (a shooting trace does not reach the TAX exit, the
   energy bin has no source, Λ is not positive definite) it is
   N(t₀, ``broad_slope_rad``² 1).

Then ``histories`` back-traces with the configured energy loss, multiple
scattering and decay from the sampled detector state to the TAX exit give
(s_TAX, ω) each, and

    w_i = mean over histories of [φ_src(s_TAX) · ω] / q_i · POT / N

[muons in the sample's POT], with q_i the proposal density (per charge
state, GeV, m², rad² of slopes; the Jacobian between slopes at the two
planes is taken as 1, exact for drifts and to O(t²) in the dipoles). The
estimator is unbiased *for the source density φ_src* whatever the proposal,
as long as the proposal covers the detector states the source feeds.
Muons below ``e_min_gev`` at the plane are not represented.

Two limits, measured (``studies/source_model.md``, "Backward method"):

- φ_src is a per-charge, per-energy-bin fit of the forward source at the
  TAX exit (a 3-Gaussian mixture in position and slopes). The source is a
  "virtual point source" a few mm wide inside the TAX with long tails; near
  the beam axis the fit is within ~5 % in total above 3 GeV and 5–20 % low
  in some energy bins; the backward method inherits that (the forward
  method does not use φ_src).
- Behind the K12 magnets the method converges very slowly: multiple
  scattering in ~19 m of (magnetised) iron spreads the backward histories
  over tens of cm at the TAX exit, while the source needs them within a few
  mm, and the map from detector slopes to the TAX state is far from linear
  (paths cross magnet aperture/yoke boundaries, where the field changes
  sign), so the proposal cannot aim: one proposal in ~10³–10⁴ carries the
  weight. Use the forward method
  for samples at STRAW1; the backward method is a cross-check and a tool
  for planes close to the dump.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from backtrace.beamline.line import BeamLine
from backtrace.beamline.materials import properties
from backtrace.rng import proposal_key, uniforms
from backtrace.source.forward import resolved
from backtrace.tracks import momentum_gev
from backtrace.transport import TraceConfig, Tracer

__all__ = ["ProposalConfig", "BackwardSimulator", "scattering_covariance"]

#: Finite-difference step in the detector slopes for the linearisation [rad].
SHOOT_DELTA_RAD = 1e-4


@dataclass(frozen=True)
class ProposalConfig:
    """The detector-plane proposal of the backward method (module docstring)."""

    e_min_gev: float = 3.0
    #: None: the geometry's beam momentum
    e_max_gev: float | None = None
    width_factor: float = 2.0
    defensive_fraction: float = 0.2
    broad_slope_rad: float = 0.02
    newton_steps: int = 3
    histories: int = 4

    def __post_init__(self):
        if not 0 < self.e_min_gev < (self.e_max_gev or float("inf")):
            raise ValueError("proposal energy range: need 0 < e_min < e_max")
        if not 0 <= self.defensive_fraction < 1:
            raise ValueError("defensive_fraction must be in [0, 1)")
        if self.histories < 1 or self.newton_steps < 1:
            raise ValueError("histories and newton_steps must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


class BackwardSimulator:
    """Proposal, linearisation and weighted back-tracing for one process."""

    def __init__(self, config, density, proposal: ProposalConfig | None = None,
                 beamline=None):
        from dataclasses import replace

        self.beamline = BeamLine.for_config(config, beamline)
        self.config = resolved(config, self.beamline)
        self.density = density
        self.proposal = proposal or ProposalConfig()
        if self.proposal.e_max_gev is None:
            self.proposal = replace(self.proposal,
                                    e_max_gev=self.beamline.beam_momentum_gev)
        self.physics = self.beamline.physics
        self.geometry = self.beamline.geometry
        self.tax_exit_z = density.plane_z_m
        common = dict(geometry_file=config.geometry_file,
                      overrides=tuple(config.overrides), direction="backward",
                      to_z_m=self.tax_exit_z, seed=config.seed,
                      energy_limit_gev=self.geometry.beam_momentum_gev)

        def tracer(**kw):
            return Tracer(TraceConfig(**common, **kw), self.beamline)

        self.shooter = tracer(energy_loss="csda", decay=False, record=False, scattering=False)
        self.recorder = tracer(energy_loss="csda", decay=False, record=True, scattering=False)
        self.tracer = tracer(energy_loss=config.energy_loss, record=False,
                             samples_per_track=self.proposal.histories)
        self.world_half_m = (float(self.geometry.world["half_x_m"]),
                             float(self.geometry.world["half_y_m"]))
        self._x0 = {m: properties(m).radiation_length_kg_m2
                    for m in self.recorder.compiled.material_names.values()}
        self._x0["outside"] = np.inf

    # ------------------------------------------------------------------
    def _detector_states(self, index: np.ndarray) -> dict:
        """Charge, energy, position and their proposal log-density."""
        cfg, prop = self.config, self.proposal
        u = uniforms(cfg.seed, index, 4, stream="proposal")
        charge = np.where(u[:, 0] < 0.5, -1.0, 1.0)
        log_ratio = np.log(prop.e_max_gev / prop.e_min_gev)
        energy = prop.e_min_gev * np.exp(u[:, 1] * log_ratio)
        if cfg.acceptance == "straw1":  # uniform in the annulus
            r_lo, r_hi = cfg.acceptance_r_m
            r = np.sqrt(r_lo ** 2 + u[:, 2] * (r_hi ** 2 - r_lo ** 2))
            phi = 2 * np.pi * u[:, 3]
            x, y = r * np.cos(phi), r * np.sin(phi)
            area = np.pi * (r_hi ** 2 - r_lo ** 2)
        else:  # uniform over the world's cross-section
            hx, hy = self.world_half_m
            x, y = hx * (2 * u[:, 2] - 1), hy * (2 * u[:, 3] - 1)
            area = 4 * hx * hy
        log_q = np.log(0.5) - np.log(energy * log_ratio) - np.log(area)
        return {"charge": charge, "energy": energy, "x": x, "y": y, "log_q": log_q}

    def _tracks(self, track_index, det, t) -> pd.DataFrame:
        """Track rows at the plane from detector states and slopes t."""
        p = momentum_gev(det["energy"])
        norm = np.sqrt(1 + t[:, 0] ** 2 + t[:, 1] ** 2)
        return pd.DataFrame({
            "track_index": np.asarray(track_index, np.int64),
            "x_m": det["x"], "y_m": det["y"],
            "z_m": np.full(len(t), self.config.plane_z_m),
            "px_gev": p * t[:, 0] / norm, "py_gev": p * t[:, 1] / norm,
            "pz_gev": p / norm, "charge": det["charge"]})

    def _trace(self, tracer, index, det, t, sample=0):
        return tracer.trace(self._tracks(proposal_key(index, sample), det, t))

    def _scattering(self, result) -> np.ndarray:
        """Fermi–Eyges covariance (n, 4, 4) at the TAX exit of the multiple
        scattering along each recorded scattering-free path (module doc)."""
        h = result.histories
        return scattering_covariance(result.states, h["track_index"].to_numpy(),
                                     self.tax_exit_z, self._x0)

    def _source_gaussian(self, e_gev, charge, cov_ms):
        """Yield density [per POT per GeV], mean and precision of the source
        Gaussian of each state's energy bin convolved with ``cov_ms``."""
        d = self.density
        c, k, known, per_gev = d.bins(e_gev, charge)
        cov_src = np.linalg.inv(np.where(known[:, None, None], d.cov_inv[c, k],
                                         np.eye(4)))
        return per_gev, d.mean[c, k], np.linalg.inv(cov_src + cov_ms), known

    def slope_proposal(self, index, det) -> dict:
        """Mean, covariance and defensive fraction of the slope proposal
        (module docstring, step 2), per proposal."""
        n = len(index)
        dz = self.config.plane_z_m - self.tax_exit_z
        t0 = np.column_stack([-det["x"] / dz, -det["y"] / dz])
        t = t0.copy()
        lam_inv = np.broadcast_to(np.eye(2), (n, 2, 2))
        ok = np.zeros(n, bool)
        for _ in range(self.proposal.newton_steps):
            base = self._trace(self.recorder, index, det, t, 0)
            offsets = [self._trace(self.shooter, index, det, t + dt, k + 1).histories
                       for k, dt in enumerate(([SHOOT_DELTA_RAD, 0], [0, SHOOT_DELTA_RAD]))]
            runs = [base.histories] + offsets
            ok = np.logical_and.reduce([(h["status"] == "reached_target").to_numpy()
                                        for h in runs])
            st = [_state(h) for h in runs]
            jac = np.stack([(st[1] - st[0]) / SHOOT_DELTA_RAD,
                            (st[2] - st[0]) / SHOOT_DELTA_RAD], axis=-1)
            _, mu, prec, known = self._source_gaussian(
                runs[0]["kinetic_energy_gev"].to_numpy(),
                runs[0]["charge"].to_numpy(), self._scattering(base))
            ok &= known & np.isfinite(jac).all(axis=(1, 2))
            jac = np.where(ok[:, None, None], jac, 0.0)
            lam = np.einsum("nia,nij,njb->nab", jac, prec, jac)
            det_lam = lam[:, 0, 0] * lam[:, 1, 1] - lam[:, 0, 1] * lam[:, 1, 0]
            ok &= (lam[:, 0, 0] > 0) & (det_lam > 0)
            lam_inv = _inv2(np.where(ok[:, None, None], lam, np.eye(2)))
            rhs = np.einsum("nia,nij,nj->na", jac, prec, np.nan_to_num(mu - st[0]))
            step = np.einsum("nab,nb->na", lam_inv, rhs)
            ok &= np.isfinite(step).all(axis=1)
            t = np.where(ok[:, None], t + step, t)
        prop = self.proposal
        cov = prop.width_factor ** 2 * lam_inv
        broad = np.broadcast_to(prop.broad_slope_rad ** 2 * np.eye(2), (n, 2, 2))
        ok &= np.isfinite(cov).all(axis=(1, 2))
        return {"mean": np.where(ok[:, None], t, t0),
                "cov": np.where(ok[:, None, None], cov, broad),
                "fraction": np.where(ok, prop.defensive_fraction, 0.0),
                "linearised": ok}

    def _start(self, index: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Sampled detector states of proposals ``index`` (track schema
        columns), their proposal log-density log q and whether the slope
        proposal was linearised."""
        cfg = self.config
        det = self._detector_states(index)
        sp = self.slope_proposal(index, det)
        u = uniforms(cfg.seed, index, 3, stream="proposal", sample=np.ones_like(index))
        radius = np.sqrt(-2 * np.log(u[:, 0]))  # Box–Muller pair
        z = radius[:, None] * np.column_stack([np.cos(2 * np.pi * u[:, 1]),
                                               np.sin(2 * np.pi * u[:, 1])])
        wide = u[:, 2] < sp["fraction"]
        chol = np.linalg.cholesky(sp["cov"] * np.where(wide, 16.0, 1.0)[:, None, None])
        t = sp["mean"] + np.einsum("nab,nb->na", chol, z)
        log_q = det["log_q"] + _log_mixture(t, sp["mean"], sp["cov"], sp["fraction"])
        return self._tracks(index, det, t), log_q, sp["linearised"]

    def run(self, index: np.ndarray) -> tuple[pd.DataFrame, Counter]:
        """Weighted tracks at the plane for proposals ``index`` (int64), and
        counts. Proposals whose histories all miss the source are left out
        (zero weight)."""
        cfg = self.config
        index = np.asarray(index, np.int64)
        start, log_q, linearised = self._start(index)
        # histories use sample indices 4.. (0–3 are the shooting traces)
        h = self.tracer.trace(start, first_sample=4).histories
        reached = (h["status"] == "reached_target").to_numpy()
        st = _state(h)
        phi = self.density(st[:, 0], st[:, 1], st[:, 2], st[:, 3],
                           h["kinetic_energy_gev"].to_numpy(), h["charge"].to_numpy())
        k = self.proposal.histories
        per_history = np.where(reached, np.nan_to_num(phi * h["weight"].to_numpy()), 0.0)
        mean = per_history.reshape(len(index), k).mean(axis=1)
        w = mean * np.exp(-log_q) * cfg.pot / cfg.n_events
        counts = Counter({"proposals": len(index), "linearised": int(linearised.sum()),
                          "histories": len(h), "reached_tax": int(reached.sum()),
                          "nonzero_weight": int((w > 0).sum())})
        out = start.drop(columns=["track_index"]).assign(
            weight=w, event_id=index)[w > 0].reset_index(drop=True)
        return out, counts


def scattering_covariance(states: pd.DataFrame, track_index: np.ndarray,
                          z_end_m: float, x0_kg_m2: dict) -> np.ndarray:
    """Fermi–Eyges covariance (n, 4, 4) of (x, y, t_x, t_y) at z_end_m from
    multiple scattering along recorded paths (drift approximation: kicks are
    propagated as straight lines; Rossi's dθ²/dX = (13.6 MeV/p)²/X0 per
    plane, without Highland's logarithmic term). Segment i → i+1 of a
    history crosses the material of state i (the region entered there)."""
    s = states
    same = s["track_index"].to_numpy()[1:] == s["track_index"].to_numpy()[:-1]
    z = s["z_m"].to_numpy()
    e = s["kinetic_energy_gev"].to_numpy()
    dx = np.diff(s["grammage_kg_m2"].to_numpy())
    x0 = s["material"].map(x0_kg_m2).to_numpy(float)[:-1]
    p = momentum_gev(0.5 * (e[1:] + e[:-1]))
    theta2 = np.where(same, (0.0136 / p) ** 2 * dx / x0, 0.0)
    a, b = z[1:] - z_end_m, z[:-1] - z_end_m
    span = b - a
    with np.errstate(invalid="ignore", divide="ignore"):
        m2 = np.where(np.abs(span) > 1e-12, (b ** 3 - a ** 3) / (3 * span), a * a)
    m1 = 0.5 * (a + b)
    key = s["track_index"].to_numpy()[:-1]
    sums = pd.DataFrame({"k": key, "xx": theta2 * m2, "xt": -theta2 * m1,
                         "tt": theta2}).groupby("k").sum()
    sums = sums.reindex(track_index, fill_value=0.0)
    cov = np.zeros((len(track_index), 4, 4))
    for i, j in ((0, 2), (1, 3)):
        cov[:, i, i] = sums["xx"].to_numpy()
        cov[:, i, j] = cov[:, j, i] = sums["xt"].to_numpy()
        cov[:, j, j] = sums["tt"].to_numpy()
    return cov


def _state(h: pd.DataFrame) -> np.ndarray:
    """(n, 4) TAX-exit states (x, y, t_x, t_y) of shooting histories."""
    uz = h["uz"].to_numpy()
    return np.column_stack([h["x_m"], h["y_m"], h["ux"] / uz, h["uy"] / uz])


def _inv2(m: np.ndarray) -> np.ndarray:
    det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    inv = np.empty_like(m)
    inv[:, 0, 0], inv[:, 1, 1] = m[:, 1, 1], m[:, 0, 0]
    inv[:, 0, 1], inv[:, 1, 0] = -m[:, 0, 1], -m[:, 1, 0]
    return inv / det[:, None, None]


def _log_gauss2(t, mean, cov):
    d = t - mean
    inv = _inv2(cov)
    chi2 = np.einsum("na,nab,nb->n", d, inv, d)
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] * cov[:, 1, 0]
    return -0.5 * chi2 - np.log(2 * np.pi) - 0.5 * np.log(det)


def _log_mixture(t, mean, cov, fraction):
    """log[(1 − f) N(t; mean, cov) + f N(t; mean, 16 cov)]."""
    a = np.log1p(-fraction) + _log_gauss2(t, mean, cov)
    with np.errstate(divide="ignore"):
        b = np.log(fraction) + _log_gauss2(t, mean, 16.0 * cov)
    return np.logaddexp(a, b)
