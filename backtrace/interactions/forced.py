"""Forced secondary interactions along back-traced muon paths.

A back-traced history is a chain of recorded states (every volume boundary
and every 25 cm of dense matter, :mod:`backtrace.transport`). Between two
consecutive states the muon crosses ΔX of grammage [kg/m²] of one material
at a kinetic energy K (taken at the segment's mid point); the expected
number of secondaries of energy above ``q_min`` there is
σ_p(K) ΔX per process p (σ in m²/kg, scaled by the process scale). Analog
sampling would almost never interact (~10⁻³ per metre of iron), so
interactions are *forced*: drawn along the path and weighted by what they
represent. Only segments with their mid point between ``z_min_m`` and
``z_max_m`` (STRAW1's entry face in a run) are forced: products of
interactions further upstream never reach the spectrometer.

**What one history contributes.** The quantity estimated per history is
I_h = Σ_seg Σ_p σ_p ΔX · S_in · F, with S_in the probability that the
incoming muon was not vetoed upstream of the point (the selection's vetoes
it crossed before interacting, each failing with its inefficiency) and F
the expected selection outcome of the final state. Every estimator below
is unbiased for I_h; they differ only in their Monte Carlo variance.

**Draws.** A history receives n_h draws; each draw picks a stratum s, then
a (segment, process) of the stratum in proportion to the importance
g = σ_p ΔX · V(segment), then a point uniform in grammage along the segment
and a final state (:func:`draw_weights`):

- strata are (process, volume, band of the muon's kinetic energy,
  :data:`ENERGY_BANDS_GEV`), labelled 'mumu_pair@TRIM5@100+GeV';
- V is the veto-aware importance: S_in × (δ + (1 − δ) S_out), with S_out
  the survival of the rest of the observed path downstream of the segment
  (the scattered muon and the products follow it within milliradians, so
  a path that crosses a LAV after the point will most likely be vetoed)
  and δ = ``veto_floor`` (:data:`VETO_FLOOR`, a defensive floor that bounds
  the weight of the draws whose products avoid that veto); V = 1 for the
  'natural' plan (the former method);
- the expected number of draws m_{h,s} in each stratum comes from the
  :class:`DrawPlan` (fixed shares, per-track pilot, or the importance
  allocation of :mod:`backtrace.prompt.allocation`); n_h is m_h = Σ_s m_{h,s}
  rounded stochastically (capped at ``MAX_INTERACTIONS_PER_HISTORY − 1``),
  the stratum of a draw is chosen with probability m_{h,s} / m_h;
- the weight of a draw is
  w = h_w · G_{h,s} m_h / (E[n_h] m_{h,s}) · S_in(point) / V · (final-state
  weight) · (transfer-bias weight), G_{h,s} = Σ g over the stratum and h_w
  the history weight (posterior × track weight). E[Σ_draws w f] = h_w I_h
  for every plan with m_{h,s} > 0 wherever G_{h,s} > 0 (Wald's identity:
  the number of draws is independent of their outcomes);
- ``final_states_per_point`` F > 1 splits each drawn point into F final
  states (consecutive draws share the point's random numbers): each draw
  keeps its marginal distribution, so the weights are unchanged.

**Energy-transfer importance sampling** (``transfer_bias = (q_c, δ_q)``):
a selected two-track pair needs a product of momentum ≥ the selection's
track minimum, which a transfer q below it cannot give. The uniform u that
the process module turns into q by inverse CDF is drawn from the mixture
δ_q U(0, 1) + (1 − δ_q) U(u_c, 1), u_c the quantile of q_c at the muon's
energy; the draw carries 1 / (δ_q + (1 − δ_q) 1{u ≥ u_c} / (1 − u_c)) ≤
1/δ_q. Soft transfers stay sampled (δ_q of the draws) for the pre-selection
pairs and the vetoes.

P = Σ_seg Σ_p σ_p ΔX (``probability``) is the expected number of forced-type
interactions along the path (not a probability: it can exceed 1 behind
metres of iron). Neglected: the change of the muon's state by one
interaction before a later one (the back-traced path already includes the
average effect of all energy losses).

Zone: 'prompt' when the interaction is at or downstream of ``prompt_z_min_m``
(a run sets it to the geometry's decay-volume entrance, 105.095 m for NA62:
the decay volume, its end cap and walls, the LAVs), 'upstream_prompt'
otherwise (final collimator, TRIM5, beam pipe, ANTI0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backtrace.interactions import CHANNEL_PROCESSES, DEFAULT_Q_MIN_GEV, PROCESSES
from backtrace.interactions._common import FinalState, transfer_quantile
from backtrace.paths import crossing_runs
from backtrace.rng import MAX_INTERACTIONS_PER_HISTORY, interaction_sample, uniforms

__all__ = ["ForcedConfig", "ForcedSampler", "DrawPlan", "segments", "ENERGY_BANDS_GEV",
           "VETO_FLOOR", "stratum_process", "PLAN_MODES"]

#: Edges [GeV] of the muon kinetic-energy bands of the strata [est]: the
#: selection's 10 GeV tracks come from muons above ~20 GeV, and the
#: selected share rises with the energy (measured on the shipped example:
#: selected tridents at 24–290 GeV); three bands keep each populated.
ENERGY_BANDS_GEV = (30.0, 100.0)
#: Floor δ of the downstream-veto factor of the importance V [est: 0.1,
#: range 0.03–0.3]: a draw whose observed path crosses a used veto after the
#: point is sampled at least δ as often as without it, so its weight is at
#: most 1/δ of the others'.
VETO_FLOOR = 0.1
#: Plans (:class:`DrawPlan`): 'natural', 'shares', 'track', 'global'.
PLAN_MODES = ("natural", "shares", "track", "global")
#: Most draws one history can receive in one pass (the random-key layout).
MAX_DRAWS_PER_HISTORY = MAX_INTERACTIONS_PER_HISTORY - 1


@dataclass(frozen=True)
class ForcedConfig:
    """Where and what to force (recorded in outputs)."""

    q_min_gev: float = DEFAULT_Q_MIN_GEV
    processes: tuple[str, ...] = CHANNEL_PROCESSES["mumu"]
    scales: dict = field(default_factory=dict)
    prompt_z_min_m: float = 105.0
    #: Upstream end of the forcing window [m]: from B4A (80.48 m) on. Products
    #: of interactions further upstream are swept or absorbed before the
    #: detector; forcing there would waste the samples.
    z_min_m: float = 80.0
    #: Downstream end [m] (None: no limit; the estimate uses STRAW1's entry face).
    z_max_m: float | None = None
    #: materials lighter than this [kg/m³] are not forced (the model vacuum)
    min_density_kg_m3: float = 1e-3
    #: Default plan of :meth:`ForcedSampler.sample` and of ``plan=None``:
    #: None ('natural': a point in proportion to σ ΔX), 'uniform' (equal
    #: shares per process) or {process or stratum: share}.
    allocation: dict | str | None = None
    #: Share of each history's draws that follows the natural proportions
    #: in a 'shares' plan (a defensive mixture: no weight exceeds 1/defensive
    #: of the natural one).
    defensive: float = 0.0
    energy_bands_gev: tuple[float, ...] = ENERGY_BANDS_GEV
    #: ((active volume, log inefficiency), ...) of the selection's vetoes:
    #: the incoming muon's survival S_in (always in the weight) and the
    #: veto-aware importance of the stratified plans.
    veto_log_inefficiency: tuple = ()
    veto_floor: float = VETO_FLOOR
    #: (q_c [GeV], δ_q) of the energy-transfer importance sampling, or None.
    transfer_bias: tuple | None = None
    #: Final states per drawn point (splitting at the interaction point).
    final_states_per_point: int = 1

    def scale(self, name: str) -> float:
        return float(self.scales.get(name, 1.0))


@dataclass(frozen=True)
class DrawPlan:
    """How many draws each history gets, and in which strata (the expected
    number m_{h,s} of draws of history h in stratum s).

    - 'natural': ``per_history`` (K) draws, m_{h,s} = K P_{h,s} / P_h, no
      veto-aware importance (the former method);
    - 'shares': K draws, m_{h,s} = K [(1 − d) q_{h,s} + d G_{h,s} / G_h],
      q from ``shares`` ((process or stratum, share), ...; empty: equal per
      process) restricted to the strata the path allows, a process's share
      spread over its strata in proportion to G, d = ``defensive``;
    - 'track' (a pilot): every track gets K × (its histories in the pass)
      draws, each of its processes the same number, spread over histories
      and strata in proportion to π_h G_{h,s} (π_h its posterior share);
    - 'global': m_{h,s} = W_h G_{h,s} ρ_s, W_h the history's importance
      (track weight × posterior share × pass fraction), ρ_s from ``rates``
      ((stratum, ρ), ...) or, for strata not listed, ``process_rates``
      (:func:`backtrace.prompt.allocation.importance_plan`)."""

    mode: str = "shares"
    per_history: float = 4.0
    shares: tuple = ()
    defensive: float = 0.0
    rates: tuple = ()
    process_rates: tuple = ()

    def __post_init__(self):
        if self.mode not in PLAN_MODES:
            raise ValueError(f"draw plan {self.mode!r}: expected one of {PLAN_MODES}")
        if not self.per_history > 0:
            raise ValueError("draws per history must be > 0")

    def describe(self) -> dict:
        d = {"mode": self.mode, "per_history": float(self.per_history)}
        if self.mode == "shares":
            d["shares"] = {k: float(v) for k, v in self.shares} or "equal per process"
            d["defensive"] = float(self.defensive)
        if self.mode == "global":
            d["rates"] = {k: float(v) for k, v in self.rates}
            d["process_rates"] = {k: float(v) for k, v in self.process_rates}
        return d


def stratum_process(label: str) -> str:
    """The process of a stratum label ('mumu_pair@TRIM5@100+GeV' → 'mumu_pair')."""
    return str(label).partition("@")[0]


def segments(states: pd.DataFrame) -> pd.DataFrame:
    """Consecutive-state segments of each history: start/end positions,
    directions and energies, material, volume, grammage ΔX [kg/m²], and
    ``grammage_exit_kg_m2``, the path grammage at the downstream exit of the
    segment's volume (histories run upstream: the exit is the first state
    of the run of segments in the same volume)."""
    s = states.sort_values(["track_index", "sample_index", "state_index"],
                           kind="stable").reset_index(drop=True)
    same = ((s["track_index"].to_numpy()[1:] == s["track_index"].to_numpy()[:-1])
            & (s["sample_index"].to_numpy()[1:] == s["sample_index"].to_numpy()[:-1]))
    i = np.flatnonzero(same)
    a, b = s.iloc[i].reset_index(drop=True), s.iloc[i + 1].reset_index(drop=True)
    dx = np.abs(b["grammage_kg_m2"].to_numpy() - a["grammage_kg_m2"].to_numpy())
    volume = a["volume"].to_numpy()
    # a new run of one volume starts at a new history or a volume change
    new_run = np.r_[True, (i[1:] != i[:-1] + 1) | (volume[1:] != volume[:-1])] \
        if len(i) else np.zeros(0, bool)
    run = np.cumsum(new_run) - 1
    g_a = a["grammage_kg_m2"].to_numpy()
    out = pd.DataFrame({
        "track_index": a["track_index"].to_numpy(),
        "sample_index": a["sample_index"].to_numpy(),
        "material": a["material"].to_numpy(), "volume": volume,
        "dgrammage_kg_m2": dx,
        "grammage_a_kg_m2": g_a, "grammage_b_kg_m2": b["grammage_kg_m2"].to_numpy(),
        "grammage_exit_kg_m2": g_a[np.flatnonzero(new_run)][run] if len(i) else g_a,
    })
    for c in ("x_m", "y_m", "z_m", "ux", "uy", "uz", "kinetic_energy_gev"):
        out[c + "_a"] = a[c].to_numpy()
        out[c + "_b"] = b[c].to_numpy()
    return out[dx > 0].reset_index(drop=True)


class ForcedSampler:
    """Tables per material and the forced draws along back-traced paths."""

    def __init__(self, physics, config: ForcedConfig | None = None):
        self.physics = physics
        self.config = config or ForcedConfig()
        unknown = [p for p in self.config.processes if p not in PROCESSES]
        if unknown:
            raise KeyError(f"unknown process(es) {unknown} (known: {', '.join(PROCESSES)})")
        if int(self.config.final_states_per_point) < 1:
            raise ValueError("final states per point must be >= 1")
        self._tables: dict = {}

    # -- tables ---------------------------------------------------------------
    def tables(self, material: str) -> dict:
        if material not in self._tables:
            self._tables[material] = {
                p: PROCESSES[p].table(self.physics, material, self.config.q_min_gev)
                for p in self.config.processes}
        return self._tables[material]

    def segment_sigma(self, seg: pd.DataFrame) -> np.ndarray:
        """(n_segments, n_processes) scaled σ [m²/kg] at the mid energy."""
        k_mid = 0.5 * (seg["kinetic_energy_gev_a"] + seg["kinetic_energy_gev_b"]).to_numpy()
        out = np.zeros((len(seg), len(self.config.processes)))
        for material, rows in seg.groupby("material", sort=True).indices.items():
            tabs = self.tables(material)
            for j, p in enumerate(self.config.processes):
                out[rows, j] = PROCESSES[p].cross_section(tabs[p], k_mid[rows]) \
                    * self.config.scale(p)
        return out

    def _window(self, states: pd.DataFrame) -> pd.DataFrame:
        """Segments in dense matter with their mid point in the forcing window."""
        cfg = self.config
        seg = segments(states)
        z_mid = 0.5 * (seg["z_m_a"] + seg["z_m_b"]).to_numpy()
        densities = {m: self.physics.material_density(m) for m in seg["material"].unique()}
        dense = seg["material"].map(densities) >= cfg.min_density_kg_m3
        z_max = np.inf if cfg.z_max_m is None else cfg.z_max_m
        return seg[(z_mid >= cfg.z_min_m) & (z_mid <= z_max)
                   & dense.to_numpy(bool)].reset_index(drop=True)

    # -- plans ----------------------------------------------------------------
    def default_plan(self, per_history: float = 1.0) -> DrawPlan:
        """The plan of the configuration's ``allocation`` with K draws per history."""
        a = self.config.allocation
        if a is None:
            return DrawPlan("natural", per_history)
        shares = () if a == "uniform" else tuple((str(k), float(v)) for k, v in a.items())
        return DrawPlan("shares", per_history, shares, float(self.config.defensive))

    def band_labels(self) -> list[str]:
        e = (0.0, *self.config.energy_bands_gev)
        return [f"{lo:g}-{hi:g}GeV" for lo, hi in zip(e[:-1], e[1:])] \
            + [f"{e[-1]:g}+GeV"]

    # -- sampling -------------------------------------------------------------
    def sample(self, states: pd.DataFrame, seed: int, history_weight=None,
               repeat: int = 0):
        """One draw per history with P > 0, from the configuration's
        allocation (:meth:`default_plan` with K = 1), using the random
        streams of draw number ``repeat`` (0 … MAX_INTERACTIONS_PER_HISTORY
        − 1): repeats are independent. Returns (interactions, products)."""
        if not 0 <= repeat < MAX_INTERACTIONS_PER_HISTORY:
            raise ValueError(f"repeat must be in [0, {MAX_INTERACTIONS_PER_HISTORY})")
        inter, prods, _ = self.draws(states, seed, history_weight,
                                     plan=self.default_plan(1.0), repeat_offset=repeat)
        return inter, prods

    def draws(self, states: pd.DataFrame, seed: int, history_weight=None, plan=None,
              histories: pd.DataFrame | None = None, repeat_offset: int = 0):
        """The forced draws of every history under ``plan`` (module docstring).

        ``history_weight``: Series over (track_index, sample_index), the weight
        each history carries (default 1). ``histories``: DataFrame over the
        same index with ``share`` (posterior share π_h of the history among
        its track's histories of this pass) and ``importance`` (W_h), needed
        by the 'track' and 'global' plans. Returns (interactions, products,
        info), info = {'drawn': draws per stratum, 'g_sums': Σ_h h_w G_{h,s}
        per (track, stratum) … see :meth:`_info`}."""
        plan = plan or self.default_plan(1.0)
        seg = self._window(states)
        if seg.empty:
            return _empty_interactions(), _empty_products(), _empty_info()
        t = _Table.build(self, seg, states, plan)
        m = self._expected(t, plan, histories)
        n_draw, e_n, m_h = self._draw_counts(t, m, seed, plan)
        if not n_draw.sum():
            return _empty_interactions(), _empty_products(), self._info(t, m, [])
        h_of, rep = _expand(n_draw)
        rep = rep + int(repeat_offset)
        fps = int(self.config.final_states_per_point)
        point_rep = rep - rep % fps
        track, sample = t.track[h_of], t.sample[h_of]
        u_pt = uniforms(seed, track, 12, stream="interaction",
                        sample=interaction_sample(sample, point_rep))
        u_fs = u_pt if fps == 1 else uniforms(seed, track, 12, stream="interaction",
                                              sample=interaction_sample(sample, rep))
        # stratum ∝ m_{h,s}, then (segment, process) of it ∝ g
        key = _grouped_choice(t.key_hist, m, h_of, u_pt[:, 2])
        cell = _grouped_choice(t.cell_key, t.cell_g, key, u_pt[:, 0])
        seg_i, proc_i = t.cell_seg[cell], t.cell_proc[cell]
        chosen = seg.iloc[seg_i].reset_index(drop=True)
        point = _interaction_points(chosen, u_pt[:, 1])
        hw = np.ones(len(h_of)) if history_weight is None else history_weight.reindex(
            pd.MultiIndex.from_arrays([track, sample])).to_numpy(float)
        draw_weight = hw * t.key_g[key] * m_h[h_of] / (e_n[h_of] * m[key])
        log_in = _log_before(t.runs, h_of, point["xyz"][:, 2])
        veto = np.exp(log_in) / t.seg_v[seg_i]
        info, products = self._final_states(proc_i, point, t.charge[h_of], u_fs)
        zone = np.where(point["xyz"][:, 2] >= self.config.prompt_z_min_m, "prompt",
                        "upstream_prompt")
        xyz = point["xyz"]
        interactions = pd.DataFrame({
            "interaction": np.arange(len(h_of)), "track_index": track,
            "sample_index": sample, "repeat": rep,
            "process": info["process"].to_numpy(),
            "stratum": t.key_label[key],
            "category": info["category"].to_numpy(), "zone": zone,
            "volume": point["volume"], "material": point["material"],
            "x_m": xyz[:, 0], "y_m": xyz[:, 1], "z_m": xyz[:, 2],
            "kinetic_energy_gev": point["k"], "probability": t.p_total[h_of],
            "history_draws": n_draw[h_of], "draw_weight": draw_weight,
            "weight": draw_weight * veto * info["weight_extra"].to_numpy(),
        })
        prods = products.merge(interactions[["interaction", "x_m", "y_m", "z_m"]],
                               on="interaction", how="left")
        return interactions, prods, self._info(t, m, key)

    def _expected(self, t: "_Table", plan: DrawPlan, histories) -> np.ndarray:
        """m_{h,s} per (history, stratum) key of the table (class docstring of
        :class:`DrawPlan`)."""
        k = float(plan.per_history)
        g, h = t.key_g, t.key_hist
        g_h = np.bincount(h, weights=g, minlength=t.n_hist)
        natural = np.divide(g, g_h[h], out=np.zeros_like(g), where=g_h[h] > 0)
        if plan.mode == "natural":
            return k * natural
        proc = t.key_proc
        if plan.mode == "shares":
            q = _share_per_key(t, dict(plan.shares), self.config.processes)
            d = float(plan.defensive)
            return k * ((1 - d) * q + d * natural) if d > 0 else k * q
        if histories is None:
            raise ValueError(f"a {plan.mode!r} draw plan needs the histories' shares")
        idx = pd.MultiIndex.from_arrays([t.track, t.sample])
        if plan.mode == "track":
            share = histories["share"].reindex(idx).to_numpy(float)
            pg = share[h] * g
            # per track and process: Σ_h π_h G_{h,p}; every process the same draws
            tk = t.track_code[h]
            n_proc = len(self.config.processes)
            tp = np.zeros(t.n_track * n_proc)
            np.add.at(tp, tk * n_proc + proc, pg)
            has = (tp.reshape(t.n_track, n_proc) > 0).sum(axis=1)
            n_t = np.bincount(t.track_code, minlength=t.n_track).astype(float)
            denom = tp[tk * n_proc + proc] * has[tk]
            return np.divide(k * n_t[tk] * pg, denom, out=np.zeros_like(g), where=denom > 0)
        w_h = histories["importance"].reindex(idx).to_numpy(float)
        rates = dict(plan.rates)
        default = dict(plan.process_rates)
        names = np.asarray(self.config.processes, dtype=object)
        rho = np.array([rates.get(lab, default.get(names[p], 0.0))
                        for lab, p in zip(t.key_label, proc)], float)
        return np.nan_to_num(w_h[h]) * g * rho

    def _draw_counts(self, t, m, seed, plan):
        """n_h (stochastic rounding of m_h, capped), E[n_h] and m_h. The
        fixed plans ('natural', 'shares') give every history with a forcing
        stratum exactly m_h = K (their m_{h,s} sum to K up to rounding)."""
        m_h = np.bincount(t.key_hist, weights=m, minlength=t.n_hist)
        fixed = plan.mode in ("natural", "shares")
        if fixed:
            m_h = np.where(m_h > 0, float(plan.per_history), 0.0)
        e_n = np.minimum(m_h, MAX_DRAWS_PER_HISTORY)
        whole = np.floor(e_n)
        frac = e_n - whole
        if fixed and float(plan.per_history).is_integer():
            u = np.ones(t.n_hist)
        else:
            u = uniforms(seed, t.track, 1, stream="allocation", sample=t.sample)[:, 0]
        n = (whole + (u < frac)).astype(np.int64)
        return n, e_n, m_h

    def _info(self, t, m, key) -> dict:
        """What a pass reports about its draws: 'drawn' (draws per stratum),
        'g_sums' (Σ_h h_raw G_{h,s} per (track, stratum), with h_raw the
        history weight: the coordinator turns it into the posterior mean of
        G per track), 'expected' (Σ m per stratum)."""
        labels = pd.Series(t.key_label)
        drawn = labels.iloc[np.asarray(key, np.int64)].value_counts() if len(key) \
            else pd.Series(dtype=np.int64)
        expected = pd.Series(m).groupby(labels.to_numpy()).sum()
        return {"drawn": drawn.sort_index(), "expected": expected,
                "keys": pd.DataFrame({"track_index": t.track[t.key_hist],
                                      "sample_index": t.sample[t.key_hist],
                                      "stratum": t.key_label, "g": t.key_g})}

    # -- final states -----------------------------------------------------------
    def _final_states(self, proc_idx, point, charge, u):
        """Per process: the final states of its draws; returns the
        (process, category, extra weight) table and the products, both in
        draw order. The extra weight holds the final-state weight (e.g. the
        γ → μμ conversion probability) and the transfer-bias weight."""
        rows, products = [], []
        for j, name in enumerate(self.config.processes):
            sel = np.flatnonzero(proc_idx == j)
            if len(sel) == 0:
                continue
            fs, bias = self._sample_by_material(name, point["material"][sel],
                                                point["k"][sel], point["direction"][sel],
                                                charge[sel], u[sel, 3:12],
                                                point["grammage_left"][sel])
            extra = bias if fs.weight is None else fs.weight * bias
            rows.append(pd.DataFrame({
                "interaction": sel, "process": name,
                "category": PROCESSES[name].CATEGORY, "weight_extra": extra}))
            products.append(_products(sel, fs))
        info = pd.concat(rows).sort_values("interaction").reset_index(drop=True)
        prods = pd.concat(products).sort_values(["interaction", "particle"],
                                                kind="stable").reset_index(drop=True)
        return info, prods

    def _sample_by_material(self, name, materials, k, direction, charge, u,
                            grammage_left):
        module = PROCESSES[name]
        parts = {}
        bias = np.ones(len(k))
        for m in np.unique(materials):
            sel = np.flatnonzero(materials == m)
            tab = self.tables(m)[name]
            us = u[sel].copy()
            if self.config.transfer_bias is not None:
                us[:, 0], bias[sel] = biased_transfer_uniform(
                    tab, k[sel], us[:, 0], *self.config.transfer_bias)
            extra = {"grammage_left_kg_m2": grammage_left[sel]} \
                if getattr(module, "USES_PATH_LEFT", False) else {}
            parts[m] = (sel, module.sample(tab, k[sel], direction[sel], charge[sel], us,
                                           **extra))
        n = len(k)
        muon = np.zeros((n, 4))
        mq = np.zeros(n)
        weight = np.ones(n)
        plist = None
        for m, (sel, fs) in parts.items():
            muon[sel] = fs.muon
            mq[sel] = fs.muon_charge
            if fs.weight is not None:
                weight[sel] = fs.weight
            if plist is None:
                plist = [(pn, np.zeros(n), np.zeros((n, 4))) for pn, _, _ in fs.particles]
            for (pn, q_all, p_all), (_, q, p4) in zip(plist, fs.particles):
                q_all[sel] = q
                p_all[sel] = p4
        return FinalState(muon, mq, plist or [], weight), bias


def biased_transfer_uniform(tab, kinetic_gev, u, q_c_gev: float, defensive: float):
    """(u', weight): the uniform of the transfer's inverse CDF drawn from
    δ U(0, 1) + (1 − δ) U(u_c, 1), u_c the CDF quantile of ``q_c_gev`` at each
    kinetic energy, and the weight natural/mixture density (module
    docstring). Where no transfer reaches q_c (u_c ≥ 1) the uniform is kept."""
    u = np.asarray(u, float)
    d = float(defensive)
    u_c = transfer_quantile(tab, kinetic_gev, q_c_gev)
    biased = u_c < 1.0 - 1e-9
    low = u < d
    u_new = np.where(low, u / d, u_c + (1 - u_c) * (u - d) / (1 - d))
    u_new = np.where(biased, u_new, u)
    density = d + (1 - d) * (u_new >= u_c) / np.maximum(1 - u_c, 1e-300)
    return u_new, np.where(biased, 1.0 / density, 1.0)


class _Table:
    """Per batch: the segments' importance g per (segment, process) cell and
    its sums G per (history, stratum) key."""

    @classmethod
    def build(cls, sampler: ForcedSampler, seg: pd.DataFrame, states, plan: DrawPlan):
        t = cls()
        cfg = sampler.config
        sigma_dx = sampler.segment_sigma(seg) * seg["dgrammage_kg_m2"].to_numpy()[:, None]
        key = pd.MultiIndex.from_arrays([seg["track_index"], seg["sample_index"]])
        seg_hist, hist_keys = pd.factorize(key)
        t.n_hist = len(hist_keys)
        t.track = hist_keys.get_level_values(0).to_numpy(np.int64)
        t.sample = hist_keys.get_level_values(1).to_numpy(np.int64)
        t.track_code, tracks = pd.factorize(t.track)
        t.n_track = len(tracks)
        t.charge = _history_charge(states, t.track, t.sample)
        t.p_total = np.bincount(seg_hist, weights=sigma_dx.sum(axis=1), minlength=t.n_hist)
        t.runs = _veto_runs(states, dict(cfg.veto_log_inefficiency), hist_keys)
        z_mid = 0.5 * (seg["z_m_a"] + seg["z_m_b"]).to_numpy()
        if plan.mode == "natural" or not cfg.veto_log_inefficiency:
            t.seg_v = np.ones(len(seg))
        else:
            log_in = _log_before(t.runs, seg_hist, z_mid)
            log_all = _log_before(t.runs, seg_hist, np.full(len(seg), np.inf))
            delta = float(cfg.veto_floor)
            t.seg_v = np.exp(log_in) * (delta + (1 - delta) * np.exp(log_all - log_in))
        g = sigma_dx * t.seg_v[:, None]
        # stratum = (process, volume, energy band)
        bands = np.asarray(sampler.band_labels(), dtype=object)
        k_mid = 0.5 * (seg["kinetic_energy_gev_a"] + seg["kinetic_energy_gev_b"]).to_numpy()
        band = np.searchsorted(np.asarray(cfg.energy_bands_gev, float), k_mid, side="right")
        place = seg["volume"].astype(str).to_numpy(object) + "@" + bands[band]
        place_code, places = pd.factorize(place, sort=True)
        n_proc = sigma_dx.shape[1]
        n_strata = n_proc * len(places)
        cell_seg, cell_proc = np.nonzero(g > 0)
        t.cell_g = g[cell_seg, cell_proc]
        stratum = cell_proc * len(places) + place_code[cell_seg]
        cell_full = seg_hist[cell_seg].astype(np.int64) * n_strata + stratum
        keys, t.cell_key = np.unique(cell_full, return_inverse=True)
        t.cell_seg, t.cell_proc = cell_seg, cell_proc
        t.key_g = np.bincount(t.cell_key, weights=t.cell_g, minlength=len(keys))
        t.key_hist = (keys // n_strata).astype(np.int64)
        st = keys % n_strata
        t.key_proc = (st // len(places)).astype(np.int64)
        names = np.asarray(cfg.processes, dtype=object)
        t.key_label = names[t.key_proc] + "@" + np.asarray(places, dtype=object)[
            st % len(places)]
        return t


def _share_per_key(t: _Table, shares: dict, processes) -> np.ndarray:
    """'shares' plan: q_{h,s}, the allocation restricted to the strata the
    history allows (equal per process when ``shares`` is empty), a process's
    share spread over its strata in proportion to G."""
    n_proc = len(processes)
    names = np.asarray(processes, dtype=object)
    g, h, p = t.key_g, t.key_hist, t.key_proc
    by_label = np.array([float(shares.get(lab, 0.0)) for lab in t.key_label]) \
        if shares else np.zeros(len(g))
    hp = h * n_proc + p
    g_hp = np.bincount(hp, weights=g, minlength=t.n_hist * n_proc)
    spread = np.divide(g, g_hp[hp], out=np.zeros_like(g), where=g_hp[hp] > 0)
    per_proc = np.array([float(shares.get(n, 0.0)) for n in names]) if shares \
        else np.ones(n_proc)
    raw = per_proc[p] * spread + by_label
    raw = np.where(g > 0, raw, 0.0)
    norm = np.bincount(h, weights=raw, minlength=t.n_hist)
    return np.divide(raw, norm[h], out=np.zeros_like(raw), where=norm[h] > 0)


def _expand(n_draw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(history of each draw, draw number within the history)."""
    h_of = np.repeat(np.arange(len(n_draw)), n_draw)
    first = np.repeat(np.cumsum(n_draw) - n_draw, n_draw)
    return h_of, np.arange(len(h_of)) - first


def _grouped_choice(item_group, item_weight, draw_group, u, chunk: int = 4096) -> np.ndarray:
    """For each draw, an item of its group chosen with probability ∝ weight
    (inverse CDF on the group's own cumulative sum, so the same numbers
    whatever else is in the batch)."""
    item_group = np.asarray(item_group, np.int64)
    order = np.argsort(item_group, kind="stable")
    gs = item_group[order]
    ws = np.asarray(item_weight, float)[order]
    start = np.searchsorted(gs, draw_group, side="left")
    length = np.searchsorted(gs, draw_group, side="right") - start
    out = np.empty(len(draw_group), np.int64)
    for lo in range(0, len(draw_group), chunk):
        s, n = start[lo:lo + chunk], length[lo:lo + chunk]
        width = int(n.max()) if len(n) else 0
        col = np.arange(width)[None, :]
        idx = np.minimum(s[:, None] + col, len(ws) - 1)
        c = np.cumsum(np.where(col < n[:, None], ws[idx], 0.0), axis=1)
        j = (c < u[lo:lo + chunk, None] * c[:, -1:]).sum(axis=1)
        out[lo:lo + chunk] = order[s + np.minimum(j, n - 1)]
    return out


def _veto_runs(states: pd.DataFrame, log_eps: dict, hist_keys) -> dict:
    """The crossings of the used vetoes by each history's path: per history
    (code in ``hist_keys`` order) its runs' upstream z and log ε, padded
    (:func:`_log_before`)."""
    n = len(hist_keys)
    empty = {"z_lo": np.full((n, 1), np.inf), "log": np.zeros((n, 1))}
    if not log_eps:
        return empty

    runs = crossing_runs(states, log_eps)
    if runs.empty:
        return empty
    code = pd.MultiIndex.from_arrays([runs["track_index"], runs["sample_index"]]) \
        .map(pd.Series(np.arange(n), index=hist_keys))
    keep = ~pd.isna(code)
    runs = runs[np.asarray(keep, bool)]
    code = np.asarray(code[np.asarray(keep, bool)], np.int64)
    rank = pd.Series(code).groupby(code).cumcount().to_numpy()
    width = int(rank.max()) + 1 if len(rank) else 1
    z_lo = np.full((n, width), np.inf)
    log = np.zeros((n, width))
    z_lo[code, rank] = runs["z_lo_m"].to_numpy(float)
    log[code, rank] = runs["volume"].map(log_eps).to_numpy(float)
    return {"z_lo": z_lo, "log": log}


def _log_before(runs: dict, hist, z) -> np.ndarray:
    """Σ log ε over the veto crossings of each history that start upstream
    of z (z_lo < z): the incoming muon's log survival at z."""
    before = runs["z_lo"][hist] < np.asarray(z, float)[:, None]
    with np.errstate(invalid="ignore"):
        return np.where(before, runs["log"][hist], 0.0).sum(axis=1)


def _interaction_points(c: pd.DataFrame, t) -> dict:
    """Position, direction and kinetic energy at fraction ``t`` of each
    chosen segment (linear interpolation), with its volume and material."""
    def lerp(name):
        return (1 - t) * c[name + "_a"].to_numpy() + t * c[name + "_b"].to_numpy()
    direction = np.column_stack([lerp("ux"), lerp("uy"), lerp("uz")])
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    g_point = (1 - t) * c["grammage_a_kg_m2"].to_numpy() + t * c["grammage_b_kg_m2"].to_numpy()
    return {"xyz": np.column_stack([lerp("x_m"), lerp("y_m"), lerp("z_m")]),
            "direction": direction, "k": lerp("kinetic_energy_gev"),
            "volume": c["volume"].to_numpy(), "material": c["material"].to_numpy(),
            # matter the muon crosses from here to the volume's downstream exit
            "grammage_left": np.maximum(g_point - c["grammage_exit_kg_m2"].to_numpy(), 0.0)}


def _history_charge(states, track, sample):
    if "charge" not in states:
        raise KeyError("states need a 'charge' column (backtrace.transport output)")
    first = states.drop_duplicates(["track_index", "sample_index"])
    idx = pd.MultiIndex.from_arrays([first["track_index"], first["sample_index"]])
    return pd.Series(first["charge"].to_numpy(), index=idx).reindex(
        pd.MultiIndex.from_arrays([track, sample])).to_numpy()


def _products(rows, fs) -> pd.DataFrame:
    frames = [pd.DataFrame({"interaction": rows, "particle": 0, "name": "mu",
                            "charge": fs.muon_charge, "e_gev": fs.muon[:, 0],
                            "px_gev": fs.muon[:, 1], "py_gev": fs.muon[:, 2],
                            "pz_gev": fs.muon[:, 3], "scattered": True})]
    for i, (name, q, p4) in enumerate(fs.particles, start=1):
        if name == "remnant":
            continue
        frames.append(pd.DataFrame({"interaction": rows, "particle": i, "name": name,
                                    "charge": q, "e_gev": p4[:, 0], "px_gev": p4[:, 1],
                                    "py_gev": p4[:, 2], "pz_gev": p4[:, 3],
                                    "scattered": False}))
    return pd.concat(frames, ignore_index=True)


def _empty_interactions():
    return pd.DataFrame(columns=["interaction", "track_index", "sample_index", "repeat",
                                 "process", "stratum", "category", "zone", "volume",
                                 "material", "x_m", "y_m", "z_m", "kinetic_energy_gev",
                                 "probability", "history_draws", "draw_weight", "weight"])


def _empty_products():
    return pd.DataFrame(columns=["interaction", "particle", "name", "charge", "e_gev",
                                 "px_gev", "py_gev", "pz_gev", "scattered"])


def _empty_info():
    return {"drawn": pd.Series(dtype=np.int64), "expected": pd.Series(dtype=float),
            "keys": pd.DataFrame(columns=["track_index", "sample_index", "stratum", "g"])}
