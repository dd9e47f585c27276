"""Forced secondary interactions along back-traced muon paths.

A back-traced history is a chain of recorded states (every volume boundary
and every 25 cm of dense matter, :mod:`backtrace.transport`). Between two
consecutive states the muon crosses ΔX of grammage [kg/m²] of one material
at a kinetic energy K (taken at the segment's mid point); the probability to
make a secondary of energy above ``q_min`` there is
P_seg = Σ_p s_p σ_p(K) ΔX (σ in m²/kg, s_p the process scale). Analog
sampling would almost never interact (P ~ 10⁻³ per metre of iron), so one
interaction is forced per history:

- the segment is chosen with probability P_seg / P, P = Σ_seg P_seg (only
  segments with mid point between ``z_min_m`` (default 80 m) and
  ``z_max_m`` (the pipeline sets STRAW1's entry face from the geometry): an
  interaction must happen upstream of the first tracking plane, and
  products from further upstream never reach it);
- the point is uniform in grammage along the segment, the state there
  interpolated linearly;
- the process is chosen with probability s_p σ_p / Σ s σ;
- the final state is sampled by the process module;
- the weight is P × (final-state weight, e.g. the γ → μμ conversion
  probability) × the history weight.

P is the expected number of interactions along the path (not a
probability: it can exceed 1 behind metres of iron), so
E[weight × f(final state)] is exactly the expected number of
secondary-interaction events with property f per history (linearity of
expectation); no small-P condition is needed. Neglected: the change of the
muon's state by one interaction before a later one (the back-traced path
already includes the average effect of all energy losses).

Zone: 'prompt' when the interaction is at or downstream of ``prompt_z_min_m``
(a run sets it to the geometry's decay-volume entrance, 105.095 m for NA62:
the decay volume, its end cap and walls, the LAVs), 'upstream_prompt'
otherwise (final collimator, TRIM5, beam pipe, ANTI0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..rng import MAX_INTERACTIONS_PER_HISTORY, interaction_sample, uniforms
from . import CHANNEL_PROCESSES, DEFAULT_Q_MIN_GEV, PROCESSES

__all__ = ["ForcedConfig", "ForcedSampler", "segments"]


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
    #: Allocation of the forced interactions (stratified forcing, module
    #: docstring): {stratum: share} with strata 'process' or 'process@z0-z1'
    #: (:meth:`ForcedSampler.strata`), 'uniform' (equal shares over the
    #: strata), or None: a point in proportion to Σ σ ΔX, a process ∝ σ.
    allocation: dict | str | None = None
    #: Length [m] of the z slices of the strata (None: strata are processes).
    slice_m: float | None = None
    #: Share of each history's draws that follows the natural allocation
    #: (q_s ∝ P_s) in a stratified draw, a defensive mixture: no weight
    #: P_s / q_s exceeds P / defensive, whatever the allocation.
    defensive: float = 0.0

    def scale(self, name: str) -> float:
        return float(self.scales.get(name, 1.0))


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
    """Tables per material and the forced sampling of one interaction per
    history."""

    def __init__(self, physics, config: ForcedConfig | None = None):
        self.physics = physics
        self.config = config or ForcedConfig()
        unknown = [p for p in self.config.processes if p not in PROCESSES]
        if unknown:
            raise KeyError(f"unknown process(es) {unknown} (known: {', '.join(PROCESSES)})")
        self._tables: dict = {}

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

    def sample(self, states: pd.DataFrame, seed: int, history_weight=None,
               repeat: int = 0):
        """One forced interaction per history with P > 0.

        Returns (interactions DataFrame, products DataFrame). ``history_weight``:
        Series indexed by (track_index, sample_index) (default 1). ``repeat``
        (0 … MAX_INTERACTIONS_PER_HISTORY − 1) selects an independent random
        stream, to force several interactions per history (each then
        weighted 1/K by the caller)."""
        if not 0 <= repeat < MAX_INTERACTIONS_PER_HISTORY:
            raise ValueError(f"repeat must be in [0, {MAX_INTERACTIONS_PER_HISTORY})")
        seg = self._window(states)
        if seg.empty:
            return _empty_interactions(), _empty_products()
        sigma = self.segment_sigma(seg)
        dx = seg["dgrammage_kg_m2"].to_numpy()
        key = pd.MultiIndex.from_arrays([seg["track_index"], seg["sample_index"]])
        hist_codes, hist_keys = pd.factorize(key)
        n_hist = len(hist_keys)
        track = hist_keys.get_level_values(0).to_numpy(np.int64)
        sample = hist_keys.get_level_values(1).to_numpy(np.int64)
        u = uniforms(seed, track, 12, stream="interaction",
                     sample=interaction_sample(sample, repeat))
        if self.config.allocation is None:
            # a segment ∝ Σ_p σ_p ΔX, then a process ∝ σ_p there
            p_seg = sigma.sum(axis=1) * dx
            p_total = np.bincount(hist_codes, weights=p_seg, minlength=n_hist)
            chosen = _choose_segments(hist_codes, n_hist, p_seg, u[:, 0])
            sig = sigma[chosen]
            with np.errstate(invalid="ignore", divide="ignore"):   # P = 0: dropped below
                cdf = np.cumsum(sig, axis=1) / sig.sum(axis=1)[:, None]
            proc_idx = np.minimum((cdf < u[:, 2:3]).sum(axis=1), sigma.shape[1] - 1)
            factor = p_total
        else:
            # stratified: a stratum (process, or process × z slice) from the
            # allocation, then a segment of it ∝ σ_p ΔX
            sigma_dx = sigma * dx[:, None]
            n_proc = sigma.shape[1]
            seg_slice = self._segment_slices(seg) if self._by_slice() \
                else np.zeros(len(seg), np.int64)
            n_slice = len(self.slice_edges_m()) - 1 if self._by_slice() else 1
            cols = np.arange(n_proc)[None, :] * n_slice + seg_slice[:, None]
            p_strat = np.zeros((n_hist, n_proc * n_slice))
            np.add.at(p_strat, (np.broadcast_to(hist_codes[:, None], cols.shape), cols),
                      sigma_dx)
            p_total = p_strat.sum(axis=1)
            col, factor = self._stratum(p_strat, u[:, 2], p_total)
            proc_idx, slice_idx = col // n_slice, col % n_slice
            p_seg = sigma_dx[np.arange(len(seg)), proc_idx[hist_codes]] \
                * (seg_slice == slice_idx[hist_codes])
            chosen = _choose_segments(hist_codes, n_hist, p_seg, u[:, 0])
        ok = p_total > 0
        chosen, track, sample, u, p_total, factor, proc_idx = (
            chosen[ok], track[ok], sample[ok], u[ok], p_total[ok], factor[ok], proc_idx[ok])
        chosen_seg = seg.iloc[chosen].reset_index(drop=True)
        label = self._labels(proc_idx, chosen_seg)
        point = _interaction_points(chosen_seg, u[:, 1])
        charge = _history_charge(states, track, sample)
        if history_weight is None:
            hw = np.ones(len(track))
        else:
            hw = history_weight.reindex(pd.MultiIndex.from_arrays([track, sample])).to_numpy()
        info, products = self._final_states(proc_idx, point, charge, u)
        zone = np.where(point["xyz"][:, 2] >= self.config.prompt_z_min_m, "prompt",
                        "upstream_prompt")
        xyz = point["xyz"]
        interactions = pd.DataFrame({
            "interaction": np.arange(len(track)), "track_index": track,
            "sample_index": sample, "repeat": repeat,
            "process": info["process"].to_numpy(),
            "stratum": label,
            "category": info["category"].to_numpy(), "zone": zone,
            "volume": point["volume"], "material": point["material"],
            "x_m": xyz[:, 0], "y_m": xyz[:, 1], "z_m": xyz[:, 2],
            "kinetic_energy_gev": point["k"], "probability": p_total,
            "weight": factor * info["weight_extra"].to_numpy() * hw,
        })
        prods = products.merge(interactions[["interaction", "x_m", "y_m", "z_m"]],
                               on="interaction", how="left")
        return interactions, prods

    def _by_slice(self) -> bool:
        """Strata are process × z slice (allocation keys 'process@z0-z1' or
        'uniform' with ``slice_m``), else processes."""
        a = self.config.allocation
        if self.config.slice_m is None or a is None:
            return False
        return a == "uniform" or any("@" in k for k in a)

    def slice_edges_m(self) -> np.ndarray:
        """z edges [m] of the slices: every ``slice_m`` from ``z_min_m`` to
        ``z_max_m`` (the last slice ends at ``z_max_m``)."""
        cfg = self.config
        if cfg.slice_m is None or cfg.z_max_m is None:
            raise ValueError("z slices need slice_m and z_max_m")
        edges = np.arange(cfg.z_min_m, cfg.z_max_m, cfg.slice_m)
        return np.r_[edges, cfg.z_max_m]

    def _sliced(self) -> bool:
        return self.config.slice_m is not None and self.config.z_max_m is not None

    def strata(self) -> list[str]:
        """The strata interactions are labelled with ('stratum' column) and a
        Neyman allocation shares: 'process@z0-z1' with slices, else
        'process'."""
        if not self._sliced():
            return list(self.config.processes)
        e = self.slice_edges_m()
        return [f"{p}@{lo:.6g}-{hi:.6g}" for p in self.config.processes
                for lo, hi in zip(e[:-1], e[1:])]

    def _sampling_strata(self) -> list[str]:
        """The strata the allocation draws from (columns of :meth:`shares`):
        :meth:`strata` when the allocation names slices or is 'uniform' with
        slices, else the processes (the slice then follows σ ΔX)."""
        return self.strata() if self._by_slice() else list(self.config.processes)

    def _labels(self, proc_idx, chosen_seg: pd.DataFrame) -> np.ndarray:
        """Stratum names of the drawn (process, segment) pairs."""
        names = np.asarray(self.strata(), dtype=object)
        if not self._sliced():
            return names[proc_idx]
        n_slice = len(self.slice_edges_m()) - 1
        return names[proc_idx * n_slice + self._segment_slices(chosen_seg)]

    def _segment_slices(self, seg: pd.DataFrame) -> np.ndarray:
        z_mid = 0.5 * (seg["z_m_a"] + seg["z_m_b"]).to_numpy()
        e = self.slice_edges_m()
        return np.clip(np.searchsorted(e, z_mid, side="right") - 1, 0, len(e) - 2)

    def shares(self) -> np.ndarray:
        """The allocation as shares per sampling stratum
        (:meth:`_sampling_strata` order), summing to 1 ('uniform': equal)."""
        names = self._sampling_strata()
        a = self.config.allocation
        if a == "uniform":
            return np.full(len(names), 1.0 / len(names))
        q = np.array([float(a.get(name, 0.0)) for name in names])
        return q / q.sum()

    def _stratum(self, p_proc: np.ndarray, u: np.ndarray,
                 p_total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per history, a stratum drawn with the allocation restricted to the
        strata it can undergo (P_s > 0), mixed with the natural one
        (``defensive``), and the weight P_s / q_s that keeps the estimate
        unbiased."""
        q = self.shares()[None, :] * (p_proc > 0)
        norm = q.sum(axis=1)
        q = np.divide(q, norm[:, None], out=np.zeros_like(q), where=norm[:, None] > 0)
        d = float(self.config.defensive)
        if d > 0:
            natural = np.divide(p_proc, p_total[:, None], out=np.zeros_like(p_proc),
                                where=p_total[:, None] > 0)
            q = (1 - d) * q + d * natural
        cdf = np.cumsum(q, axis=1)
        proc = np.minimum((cdf < u[:, None]).sum(axis=1), q.shape[1] - 1)
        rows = np.arange(len(proc))
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(q[rows, proc] > 0, p_proc[rows, proc] / q[rows, proc], 0.0)
        return proc, factor

    def _final_states(self, proc_idx, point, charge, u):
        """Per process: the final states of its interactions; returns the
        (process, category, extra weight) table and the products, both in
        interaction order."""
        rows, products = [], []
        for j, name in enumerate(self.config.processes):
            sel = np.flatnonzero(proc_idx == j)
            if len(sel) == 0:
                continue
            fs = self._sample_by_material(name, point["material"][sel], point["k"][sel],
                                          point["direction"][sel], charge[sel],
                                          u[sel, 3:12], point["grammage_left"][sel])
            extra = np.ones(len(sel)) if fs.weight is None else fs.weight
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
        from ._common import FinalState

        module = PROCESSES[name]
        parts = {}
        for m in np.unique(materials):
            sel = np.flatnonzero(materials == m)
            extra = {"grammage_left_kg_m2": grammage_left[sel]} \
                if getattr(module, "USES_PATH_LEFT", False) else {}
            parts[m] = (sel, module.sample(self.tables(m)[name], k[sel], direction[sel],
                                           charge[sel], u[sel], **extra))
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
        return FinalState(muon, mq, plist or [], weight)


def _choose_segments(hist_codes, n_hist: int, p_seg, u) -> np.ndarray:
    """Per history, a segment with probability P_seg / P: each history
    searches its own cumulative sum (exactly the same numbers whatever else
    is in the batch)."""
    order = np.argsort(hist_codes, kind="stable")
    bounds = np.searchsorted(hist_codes[order], np.arange(n_hist + 1))
    chosen = np.empty(n_hist, dtype=np.int64)
    for h in range(n_hist):
        rows = order[bounds[h]:bounds[h + 1]]
        local = np.cumsum(p_seg[rows])
        j = np.searchsorted(local, u[h] * local[-1], side="left")
        chosen[h] = rows[min(j, len(rows) - 1)]
    return chosen


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
    return pd.DataFrame(columns=["interaction", "track_index", "sample_index", "process",
                                 "stratum", "category", "zone", "volume", "material", "x_m", "y_m",
                                 "z_m", "kinetic_energy_gev", "probability", "weight"])


def _empty_products():
    return pd.DataFrame(columns=["interaction", "particle", "name", "charge", "e_gev",
                                 "px_gev", "py_gev", "pz_gev", "scattered"])
