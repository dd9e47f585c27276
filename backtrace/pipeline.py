"""The whole estimate: tracks → backward paths → forced interactions →
products at the detector → two-track candidates → regions → yields.

Per batch of tracks (deterministic: every random stream is keyed by track
and sample indices):

1. backward transport with records (:mod:`backtrace.transport`);
2. per-track posterior weights with the source prior at the TAX exit
   (:mod:`backtrace.posterior`; the source density is built from the source
   model once per geometry and cached);
3. ``interactions_per_history`` independent forced interactions per history
   in z ∈ [100 m, STRAW1], each weighted 1/K
   (:mod:`backtrace.interactions.forced`);
4. products above the track momentum cut transported to the STRAWs and
   MUV3 (:mod:`backtrace.interactions.products`);
5. candidates: events with exactly two charged tracks in the spectrometer
   acceptance (``exactly_two_tracks``; the scattered beam muon counts),
   the opposite-charge pair with the smallest CDA, identities from the
   products (μ, μ from π decay, π, e), category 'mu-mu' (both muons),
   'mu-pi' (a muon and a pion) or 'other';
6. selection (regions file), vertex, Z_TAX / CDA_TAX, region.

Weight of a candidate = (POT_target / POT_sample) × track weight ×
posterior weight of the history × forced-interaction weight × product
factors (pion survival / decay split), the posterior weight normalised per
track over all its histories (:func:`combine_passes`). With a target
relative uncertainty, rounds of new histories (new sample indices) are added
until the total prompt estimate reaches it (:func:`next_round`).
Systematics (:mod:`backtrace.systematics`): POT and process cross-section
scales by exact reweighting; field scale per magnet group, material density
and the MC method by re-runs with common random numbers.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from .detector import (Smearing, invariant_mass, pointing, smear, straw_acceptance,
                       two_track_vertex)
from .estimate import CATEGORIES
from .rng import normals, uniforms

__all__ = ["RunConfig", "Pipeline", "run_estimate", "combine_passes", "next_round",
           "total_prompt", "CATEGORIES", "MAX_SAMPLES_PER_TRACK"]

STRAWS = ("STRAW1", "STRAW2", "STRAW3", "STRAW4")
MUON_MASS = 0.1056583755
PION_MASS = 0.13957039
ELECTRON_MASS = 0.00051099895
MUON_IDENTITIES = frozenset({"mu", "mu_from_pi"})
@dataclass(frozen=True)
class RunConfig:
    geometry_file: str | None = None
    overrides: tuple[str, ...] = ()
    regions_file: str | None = None
    pot_target: float = 1.4e17
    samples_per_track: int = 4
    seed: int = 1
    energy_loss: str = "straggled"
    prior: str = "energy"
    density_events: int = 30000
    q_min_gev: float = 1.0
    #: forcing window for the estimate: from just upstream of the final
    #: collimator (products from further upstream cannot make a vertex in
    #: the decay volume)
    forced_z_min_m: float = 100.0
    #: independent forced interactions per history (each weighted 1/K)
    interactions_per_history: int = 4
    prompt_z_min_m: float = 105.0
    smearing: bool = True
    #: geometry overrides of the source density (prior at the TAX exit);
    #: None: ``overrides``. Systematic re-runs vary the geometry downstream
    #: of the TAX and keep the nominal prior.
    source_overrides: tuple[str, ...] | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["overrides"] = list(self.overrides)
        if self.source_overrides is not None:
            d["source_overrides"] = list(self.source_overrides)
        return d


class Pipeline:
    """Everything one worker process needs."""

    def __init__(self, config: RunConfig, physics=None):
        from .geometry import load_geometry
        from .interactions.forced import ForcedConfig, ForcedSampler
        from .interactions.products import ProductTransport
        from .pumas import Physics
        from .regions import load_regions
        from .transport import TraceConfig, Tracer

        self.config = config
        self.physics = physics or Physics()
        self.geometry = load_geometry(config.geometry_file, config.overrides)
        self.regions = load_regions(config.regions_file)
        self.tracer = Tracer(TraceConfig(
            geometry_file=config.geometry_file, overrides=tuple(config.overrides),
            samples_per_track=config.samples_per_track, seed=config.seed,
            energy_loss=config.energy_loss, record=True,
            to_z_m=self.geometry.tax_exit_z_m), physics=self.physics,
            geometry=self.geometry)
        self.sampler = ForcedSampler(self.physics, ForcedConfig(
            q_min_gev=config.q_min_gev, z_min_m=config.forced_z_min_m,
            prompt_z_min_m=config.prompt_z_min_m))
        self.products = ProductTransport(self.physics, config.geometry_file,
                                         config.overrides, seed=config.seed + 1)
        self.density = source_density(config, self.physics)

    def process(self, tracks: pd.DataFrame, track_weight_scale: float,
                first_sample: int = 0, n_samples: int | None = None) -> dict:
        """One batch of tracks over the sample indices ``first_sample`` …
        ``first_sample + n_samples − 1``.

        Weights of candidates and interactions carry the *unnormalised*
        posterior weight ω·φ·(track weight); ``norm`` is the per-track sum of
        ω·φ over these histories. :func:`combine_passes` divides by the sum
        of ``norm`` over all passes, so passes over disjoint sample ranges
        give exactly the estimate of one pass over their union."""
        from .posterior import posterior_weights

        cfg = self.config
        result = self.tracer.trace(tracks, first_sample, n_samples)
        hist = posterior_weights(result.histories, self.density, prior=cfg.prior,
                                 track_weight=pd.Series(
                                     tracks["weight"].to_numpy() if "weight" in tracks
                                     else np.ones(len(tracks)),
                                     index=tracks["track_index"].to_numpy()),
                                 normalise=False)
        hw = hist.set_index(["track_index", "sample_index"])["posterior_weight"]
        out = {"row_status": pd.Series(result.row_status, index=result.track_index),
               "history_status": hist.groupby(["track_index", "status"]).size(),
               "norm": hist.groupby("track_index")["posterior_raw"].sum(),
               "norm2": (hist["posterior_raw"] ** 2).groupby(hist["track_index"]).sum(),
               "candidates": pd.DataFrame(), "pairs": _empty_pairs(), "interactions": 0,
               "interaction_weight": pd.Series(dtype=float)}
        states = result.states
        if states is None or states.empty:
            return out
        k_rep = max(int(cfg.interactions_per_history), 1)
        parts_i, parts_p, offset = [], [], 0
        for rep in range(k_rep):
            i_k, p_k = self.sampler.sample(states, seed=cfg.seed, history_weight=hw,
                                           repeat=rep)
            i_k = i_k.assign(interaction=i_k["interaction"] + offset,
                             weight=i_k["weight"] / k_rep)
            p_k = p_k.assign(interaction=p_k["interaction"] + offset)
            offset += len(i_k)
            parts_i.append(i_k)
            parts_p.append(p_k)
        inter = pd.concat(parts_i, ignore_index=True)
        prods = pd.concat(parts_p, ignore_index=True)
        inter = inter[inter["weight"] > 0]
        w_inter = inter.groupby("track_index")["weight"].sum() * track_weight_scale
        prods = prods[prods["interaction"].isin(inter["interaction"])]
        p = np.linalg.norm(prods[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1) \
            if len(prods) else np.zeros(0)
        prods = prods[p >= self.regions.selection["track_p_min_gev"]]
        det = self.products.transport(prods, inter) if len(prods) else pd.DataFrame()
        cands, pairs = self._candidates(det, inter, track_weight_scale)
        raw = hist.set_index(["track_index", "sample_index"])["posterior_raw"]
        cands["history_raw"] = raw.reindex(pd.MultiIndex.from_arrays(
            [cands["track_index"], cands["sample_index"]])).to_numpy(float) \
            if len(cands) else np.zeros(0)
        out.update(candidates=cands, pairs=pairs, interactions=len(inter),
                   interaction_weight=w_inter)
        return out

    def _candidates(self, det, inter, scale):
        sel = self.regions.selection
        cols = ["interaction", "region", "category", "zone", "process", "weight",
                "track_index", "sample_index", "z_tax_m", "cda_tax_m", "vertex_z_m", "cda_m",
                "mass_gev", "p1_gev", "p2_gev"]
        if det is None or det.empty:
            return pd.DataFrame(columns=cols), _empty_pairs()
        ok = det["status"].isin(["reached_target", "left_world", "stopped"])
        ok &= ~det["identity"].eq("e") | ~det["status"].eq("absorbed")
        xy = [(det[f"{s}_x_m"], det[f"{s}_y_m"]) for s in STRAWS]
        ok &= straw_acceptance(xy).astype(bool) & (det["weight_factor"] > 0)
        tracks = det[ok].copy()
        # batch-independent random key per product: (track, sample, rank)
        from .interactions.products import product_key

        h = inter.set_index("interaction").loc[tracks["interaction"]]
        tracks["rng_key"] = product_key(h, tracks["particle"])
        is_muon = tracks["identity"].isin(["mu", "mu_from_pi"])
        tracks["muon_id"] = is_muon & tracks["muv3_hit"].astype(bool)
        rows, pairs = [], []
        two_only = sel.get("exactly_two_tracks", True)
        if two_only:
            # distinct charged tracks seen by the spectrometer (the two
            # outcomes of one pion are one track)
            n_tracks = tracks.groupby("interaction")["particle"].transform("nunique")
            tracks = tracks[n_tracks.to_numpy() == 2]
        records = tracks.to_dict("records")   # once: per-group to_dict was the hot spot
        for iid, idx in tracks.groupby("interaction").indices.items():
            best = None
            items = [records[i] for i in idx]
            for a in range(len(items)):
                for b in range(a + 1, len(items)):
                    t1, t2 = items[a], items[b]
                    if sel.get("opposite_charges", True) and t1["charge"] * t2["charge"] >= 0:
                        continue
                    if t1["particle"] == t2["particle"]:
                        continue  # the two outcomes of one pion
                    pairs.append((iid, _category(t1["identity"], t2["identity"]),
                                  t1["weight_factor"] * t2["weight_factor"]))
                    cand = self._pair(t1, t2)
                    if cand is not None and (best is None or cand["cda_m"] < best["cda_m"]):
                        best = cand
            if best is not None:
                best["interaction"] = iid
                rows.append(best)
        pairs = _pairs_frame(pairs, inter, scale)
        if not rows:
            return pd.DataFrame(columns=cols), pairs
        c = pd.DataFrame(rows)
        i = inter.set_index("interaction").loc[c["interaction"]]
        c["zone"] = i["zone"].to_numpy()
        c["process"] = i["process"].to_numpy()
        c["track_index"] = i["track_index"].to_numpy()
        c["sample_index"] = i["sample_index"].to_numpy()
        c["weight"] = i["weight"].to_numpy() * c["factor"] * scale
        c["region"] = self.regions.classify(c["z_tax_m"], c["cda_tax_m"])
        return c[cols + ["muon_ids"]], pairs

    def _pair(self, t1, t2):
        sel = self.regions.selection
        x1 = np.array([[t1["STRAW1_x_m"], t1["STRAW1_y_m"], 183.508]])
        x2 = np.array([[t2["STRAW1_x_m"], t2["STRAW1_y_m"], 183.508]])
        p1 = np.array([[t1["STRAW1_px_gev"], t1["STRAW1_py_gev"], t1["STRAW1_pz_gev"]]])
        p2 = np.array([[t2["STRAW1_px_gev"], t2["STRAW1_py_gev"], t2["STRAW1_pz_gev"]]])
        if self.config.smearing:
            key = np.array([int(t1["rng_key"]), int(t2["rng_key"])])
            u = uniforms(self.config.seed, key, 6, stream="smearing")
            n = np.column_stack([normals(u[:, 0], u[:, 1]), normals(u[:, 2], u[:, 3]),
                                 normals(u[:, 4], u[:, 5])])
            p1 = smear(p1, Smearing(), n[:1])
            p2 = smear(p2, Smearing(), n[1:])
        pm1, pm2 = np.linalg.norm(p1), np.linalg.norm(p2)
        if not (sel["track_p_min_gev"] <= pm1 <= sel.get("track_p_max_gev", 1e9)
                and sel["track_p_min_gev"] <= pm2 <= sel.get("track_p_max_gev", 1e9)):
            return None
        vertex, cda = two_track_vertex(x1, p1, x2, p2)
        if not (sel["fiducial_z_min_m"] <= vertex[0, 2] <= sel["fiducial_z_max_m"]):
            return None
        if cda[0] > sel["cda_max_m"]:
            return None
        mu1, mu2 = bool(t1["muon_id"]), bool(t2["muon_id"])
        need = sel["muon_id"]
        ids = {t1["identity"], t2["identity"]}
        muons = MUON_IDENTITIES
        category = _category(t1["identity"], t2["identity"])
        n_id = int(mu1) + int(mu2)
        if (need == "both" and n_id < 2 and category == "mu-mu") or \
                (need == "one" and n_id < 1):
            return None
        axis_p, axis_d = self.geometry.beam_axis
        z_tax, cda_tax = pointing(vertex, p1 + p2, axis_p, axis_d)
        m1 = MUON_MASS if t1["identity"] in muons else PION_MASS
        m2 = MUON_MASS if t2["identity"] in muons else PION_MASS
        return {"category": category, "z_tax_m": float(z_tax[0]),
                "cda_tax_m": float(cda_tax[0]), "vertex_z_m": float(vertex[0, 2]),
                "cda_m": float(cda[0]), "mass_gev": float(invariant_mass(p1, p2, m1, m2)[0]),
                "p1_gev": float(pm1), "p2_gev": float(pm2), "muon_ids": n_id,
                "factor": float(t1["weight_factor"] * t2["weight_factor"]),
                "ids": "+".join(sorted(ids))}


def _category(id1: str, id2: str) -> str:
    """'mu-mu' (two muons), 'mu-pi' (a muon and a pion) or 'other'."""
    mu1, mu2 = id1 in MUON_IDENTITIES, id2 in MUON_IDENTITIES
    if mu1 and mu2:
        return "mu-mu"
    if (mu1 and id2 == "pi") or (mu2 and id1 == "pi"):
        return "mu-pi"
    return "other"


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"track_index": pd.Series(dtype=np.int64),
                         "category": pd.Series(dtype=object),
                         "weight": pd.Series(dtype=float)})


def _pairs_frame(pairs, inter, scale) -> pd.DataFrame:
    """Opposite-charge two-track pairs in the STRAW acceptance before the
    momentum, vertex, CDA, muon-ID and region cuts (all pion outcomes), with
    the weight a candidate made of them carries."""
    if not pairs:
        return _empty_pairs()
    iid, cat, factor = (np.asarray(v) for v in zip(*pairs))
    i = inter.set_index("interaction").loc[iid]
    return pd.DataFrame({"track_index": i["track_index"].to_numpy(np.int64),
                         "category": cat.astype(object),
                         "weight": i["weight"].to_numpy() * factor.astype(float) * scale})


def source_density(config: RunConfig, physics):
    """The source density at the TAX exit, cached on disk by the geometry
    upstream of the TAX exit (:func:`backtrace.source_density.cached_source_density`:
    magnet settings downstream reuse it)."""
    from .simulate import SimulationConfig, Simulator
    from .source_density import cached_source_density

    overrides = config.overrides if config.source_overrides is None \
        else config.source_overrides
    sim_cfg = SimulationConfig(geometry_file=config.geometry_file,
                               overrides=tuple(overrides), seed=12345)
    return cached_source_density(Simulator(sim_cfg, physics=physics),
                                 config.density_events)


_WORKER: Pipeline | None = None


def _init(config):
    global _WORKER
    _WORKER = Pipeline(config)


def _work(args):
    df, scale, first, n = args
    return _WORKER.process(df, scale, first, n)


def _concat(frames, empty):
    frames = [f for f in frames if len(f)]
    return pd.concat(frames) if frames else empty


def _collect(tracks, config: RunConfig, *, jobs: int, batch_size: int, progress: bool,
             first_sample: int, n_samples: int, label: str,
             pipeline: Pipeline | None = None, scheduler: str | None = None) -> dict:
    """One pass over the track file with the sample indices
    ``first_sample … first_sample + n_samples − 1`` (unnormalised weights,
    see :meth:`Pipeline.process`)."""
    from .executor import ordered_map
    from .transport import _progress

    probe = pipeline
    scale = config.pot_target / tracks.pot
    batches = ((df, scale, first_sample, n_samples)
               for df in tracks.iter_batches(batch_size))
    if jobs <= 1 and scheduler is None:
        probe = probe or Pipeline(config)
        results = (probe.process(*b) for b in batches)
    else:
        results = ordered_map(_work, batches, jobs=jobs, initializer=_init,
                              initargs=(config,), scheduler=scheduler)
    parts = []
    with _progress(tracks.n_rows, label, progress) as bar:
        task = bar.add_task("run", total=tracks.n_rows)
        for r in results:
            parts.append(r)
            bar.advance(task, len(r["row_status"]))
    return {
        "row_status": _concat([r["row_status"] for r in parts], pd.Series(dtype=object)),
        "history_status": _concat([r["history_status"] for r in parts],
                                  pd.Series(dtype=np.int64)),
        "norm": _concat([r["norm"] for r in parts], pd.Series(dtype=float)),
        "norm2": _concat([r["norm2"] for r in parts], pd.Series(dtype=float)),
        "candidates": _concat([r["candidates"] for r in parts], _empty_candidates()),
        "pairs": _concat([r["pairs"] for r in parts], _empty_pairs()),
        "interactions": sum(r["interactions"] for r in parts),
        "interaction_weight": _concat([r["interaction_weight"] for r in parts],
                                      pd.Series(dtype=float)),
    }


def _empty_candidates() -> pd.DataFrame:
    return pd.DataFrame(columns=["region", "category", "zone", "process", "weight",
                                 "track_index", "sample_index", "history_raw",
                                 "z_tax_m", "cda_tax_m"])


def _track_statuses(row_status: pd.Series, history_status: pd.Series) -> Counter:
    """Status per input row: validation failures as they are; a traced
    track 'reached_target' if any of its histories did, else its most common
    history status (ties: HISTORY_STATUSES order) — as
    :meth:`backtrace.transport.Tracer.trace`, over the histories of all passes."""
    from .transport import HISTORY_STATUSES

    status = row_status.copy()
    if len(history_status):
        table = history_status.groupby(level=[0, 1]).sum().unstack(fill_value=0)
        table = table[[s for s in HISTORY_STATUSES if s in table.columns]]
        best = table.idxmax(axis=1)
        if "reached_target" in table.columns:
            best[table["reached_target"] > 0] = "reached_target"
        status.loc[best.index] = best.to_numpy()
    return Counter(status.tolist())


def combine_passes(passes: list[dict]) -> dict:
    """Merge passes over disjoint sample ranges: posterior weights normalised
    per track over the histories of all passes (equal to one pass over the
    union of the sample ranges, by construction)."""
    norm = pd.concat([p["norm"] for p in passes]).groupby(level=0).sum()
    norm2 = pd.concat([p["norm2"] for p in passes]).groupby(level=0).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        def normalised(frame):
            if not len(frame):
                return frame.reset_index(drop=True)
            f = frame.reset_index(drop=True)
            return f.assign(weight=f["weight"].to_numpy(float)
                            / norm.reindex(f["track_index"]).to_numpy())
        c = normalised(_concat([p["candidates"] for p in passes], _empty_candidates()))
        pairs = normalised(_concat([p["pairs"] for p in passes], _empty_pairs()))
        iw = _concat([p["interaction_weight"] for p in passes],
                     pd.Series(dtype=float)).groupby(level=0).sum()
        w_inter = float((iw / norm.reindex(iw.index)).sum()) if len(iw) else 0.0
    return {
        "status": _track_statuses(passes[0]["row_status"],
                                  _concat([p["history_status"] for p in passes],
                                          pd.Series(dtype=np.int64))),
        "candidates": c, "pairs": pairs, "norm": norm, "norm2": norm2,
        "interactions": sum(p["interactions"] for p in passes),
        "interaction_weight": w_inter,
        "no_support": int((norm <= 0).sum()),
    }


def mc_error(candidates: pd.DataFrame, norm: pd.Series, norm2: pd.Series,
             interactions_per_history: int | None = None) -> float:
    """Monte Carlo part of the error of Σw over ``candidates``: the
    delta-method variance of each track's self-normalised importance-sampling
    estimate Y_t = Σ_h π_h f_h (π_h = ω_hφ_h / Σ ω φ over the track's
    histories), Var_t ≈ Σ_h π_h² (f_h − Y_t)² = Σ_h (w_h − π_h Y_t)², w_h the
    summed candidate weight of history h (A. B. Owen, *Monte Carlo theory,
    methods and examples* (2013), ch. 9, self-normalised importance
    sampling), summed over tracks. Unlike the per-track Σw² error (which also
    holds the spread between the observed tracks, a property of the data
    sample) it falls as 1/√(histories per track). ``norm``/``norm2``: per
    track Σ ω φ and Σ (ω φ)² over all histories."""
    if not len(candidates):
        return 0.0
    h = candidates.groupby(["track_index", "sample_index"]).agg(
        w=("weight", "sum"), raw=("history_raw", "first"))
    t = h.index.get_level_values(0)
    pi = h["raw"].to_numpy() / norm.reindex(t).to_numpy()
    y = h["w"].groupby(level=0).sum()
    yh = y.reindex(t).to_numpy()
    w = h["w"].to_numpy()
    # histories with candidates: (w − πY)²; without: (πY)² = Y²Σπ² − Σ_with (πY)²
    with_c = pd.Series((w - pi * yh) ** 2 - (pi * yh) ** 2, index=t).groupby(level=0).sum()
    sum_pi2 = norm2.reindex(y.index) / norm.reindex(y.index) ** 2
    var = with_c.reindex(y.index).to_numpy() + y.to_numpy() ** 2 * sum_pi2.to_numpy()
    return float(np.sqrt(max(float(np.sum(var)), 0.0)
                         + _within_history_variance(candidates, interactions_per_history)))


def _within_history_variance(candidates: pd.DataFrame, k: int | None) -> float:
    """Σ_h Var(w_h) from the spread of a history's K independent forced
    interactions: w_h = Σ_i c_i, Var(w_h) ≈ K s², s² the sample variance of
    the K contributions c_i (zeros included). The delta method above treats
    w_h as a fixed function of the history and misses it — most visibly when
    the posterior puts all weight on one history (then it gives 0)."""
    if not k or k < 2 or "interaction" not in candidates:
        return 0.0
    c = candidates.groupby(["track_index", "sample_index", "interaction"])["weight"].sum()
    by_h = c.groupby(level=[0, 1])
    s1, s2 = by_h.sum().to_numpy(), (c ** 2).groupby(level=[0, 1]).sum().to_numpy()
    return float(np.sum(k / (k - 1) * (s2 - s1 ** 2 / k)))


def total_prompt(est: dict, interactions_per_history: int | None = None
                 ) -> tuple[float, float, float]:
    """(Σw, per-track Σw² error, MC error) of all candidates of a combined
    estimate (all categories and regions, outside included)."""
    from .estimate import weighted_yield

    c = est["candidates"]
    if not len(c):
        return 0.0, 0.0, 0.0
    y = weighted_yield(c["weight"], c["track_index"])
    return y.value, y.stat, mc_error(c, est["norm"], est["norm2"],
                                     interactions_per_history)


#: histories per track at most: the product random key holds the sample
#: index in 10 bits (:func:`backtrace.interactions.products.product_key`)
MAX_SAMPLES_PER_TRACK = 1024


def next_round(n_total: int, rel_unc: float, target: float | None, max_samples: int,
               elapsed_s: float = 0.0, max_time_s: float | None = None,
               s_per_sample: float | None = None) -> tuple[int, str | None]:
    """Histories per track of the next round, or (0, why it stops).

    The relative error falls as 1/√N: the round adds 1.1 × N((r/target)² − 1)
    histories (at least 1, at most N: at most doubling per round), within
    the sample cap and, from the measured time per history, the time cap."""
    if target is None:
        return 0, "no target"
    if rel_unc <= target:
        return 0, "target"
    if n_total >= max_samples:
        return 0, "max_samples"
    if max_time_s is not None and elapsed_s >= max_time_s:
        return 0, "max_time"
    want = n_total if not math.isfinite(rel_unc) else \
        math.ceil(1.1 * n_total * ((rel_unc / target) ** 2 - 1))
    n = max(1, min(want, n_total, max_samples - n_total))
    if max_time_s is not None and s_per_sample:
        fit = int((max_time_s - elapsed_s) / s_per_sample)
        if fit < 1:
            return 0, "max_time"
        n = min(n, fit)
    return n, None


def run_estimate(tracks, config: RunConfig, *, jobs: int = 1, batch_size: int = 200,
                 progress: bool = True, systematics: str = "fast",
                 target_rel_unc: float | None = None,
                 max_samples_per_track: int = 256, max_time_s: float | None = None,
                 log=None, scheduler: str | None = None) -> dict:
    """Run the pipeline over a track file; return the result document.

    ``target_rel_unc``: add rounds of histories (new sample indices: new,
    independent random streams) until the relative MC uncertainty of the
    total prompt estimate (all categories and regions) is at most this, or
    ``max_samples_per_track`` / ``max_time_s`` is reached; the result equals
    one run with ``--samples-per-track`` = the total reached.
    ``systematics``: 'none', 'fast' or 'full' (:mod:`backtrace.systematics`).
    ``log``: optional callable receiving one line per round."""
    from .systematics import LEVELS, rerun_variations, varied_config

    if tracks.pot is None:
        raise ValueError(f"{tracks.path}: the POT the sample represents is unknown: "
                         "give --pot")
    if systematics not in LEVELS:
        raise ValueError(f"systematics={systematics!r} (expected one of {LEVELS})")
    if target_rel_unc is not None and not target_rel_unc > 0:
        raise ValueError(f"target relative uncertainty must be > 0 (got {target_rel_unc})")
    if not 1 <= config.samples_per_track <= max_samples_per_track <= MAX_SAMPLES_PER_TRACK:
        raise ValueError(f"need 1 <= samples per track ({config.samples_per_track}) <= "
                         f"max samples per track ({max_samples_per_track}) <= "
                         f"{MAX_SAMPLES_PER_TRACK}")
    t0 = time.perf_counter()
    probe = Pipeline(config)
    passes, rounds, n_total, n_next = [], [], 0, config.samples_per_track
    while n_next:
        passes.append(_collect(
            tracks, config, jobs=jobs, batch_size=batch_size, progress=progress,
            first_sample=n_total, n_samples=n_next, pipeline=probe, scheduler=scheduler,
            label="estimating" if not rounds else f"round {len(rounds) + 1}"))
        n_total += n_next
        est = combine_passes(passes)
        total, stat, mc_err = total_prompt(est, config.interactions_per_history)
        if n_total < 2 and total > 0:
            # one history per track: the self-normalised estimate of a track
            # is its one history's value, whose spread (forced interaction,
            # products) the delta method cannot see — not estimable
            mc_err = math.inf
        rel = mc_err / total if total > 0 else math.inf
        elapsed = time.perf_counter() - t0
        rounds.append({"samples_per_track": n_total, "total_prompt": total,
                       "stat": stat, "mc": mc_err if math.isfinite(mc_err) else None,
                       "rel_unc": rel if math.isfinite(rel) else None,
                       "elapsed_s": elapsed})
        n_next, stopped_by = next_round(n_total, rel, target_rel_unc,
                                        max_samples_per_track, elapsed, max_time_s,
                                        elapsed / n_total)
        if log is not None and target_rel_unc is not None:
            log(f"round {len(rounds)}: {n_total} histories/track, total prompt "
                f"{total:.3g} ± {mc_err:.2g} (MC, rel. {rel:.2g}), {elapsed:.0f} s")
    t_mc = time.perf_counter() - t0
    reruns = {}
    for v in rerun_variations(probe.geometry, systematics, config.energy_loss):
        vc = varied_config(config, v, n_total)
        run = combine_passes([_collect(
            tracks, vc, jobs=jobs, batch_size=batch_size, progress=progress,
            first_sample=0, n_samples=n_total, scheduler=scheduler,
            pipeline=Pipeline(vc, probe.physics) if jobs <= 1 else None,
            label=f"syst {v.name} {v.direction}")])
        reruns.setdefault(v.name, {})[v.direction] = (v, run)
    final = replace(config, samples_per_track=n_total)
    mc = {"target_rel_unc": target_rel_unc, "rel_unc": rounds[-1]["rel_unc"],
          "total_prompt": rounds[-1]["total_prompt"],
          "total_prompt_stat": rounds[-1]["stat"], "total_prompt_mc": rounds[-1]["mc"],
          "samples_per_track": n_total,
          "max_samples_per_track": max_samples_per_track, "max_time_s": max_time_s,
          "stopped_by": stopped_by, "rounds": rounds, "elapsed_s": t_mc,
          "definition": "rel_unc = MC error / total prompt (all categories and "
                        "regions); MC error: delta-method error of the per-track "
                        "self-normalised estimates (falls as 1/sqrt(histories)); "
                        "total_prompt_stat: per-track sum-w2 error, which also holds "
                        "the finite number of observed tracks",
          "note": "rounds add new sample indices; the numbers equal one run with "
                  f"--samples-per-track {n_total}"}
    return _document(tracks, final, probe, est, reruns, systematics, mc,
                     time.perf_counter() - t0)


def _document(tracks, config, probe, est, reruns, level, mc, elapsed) -> dict:
    from . import __version__
    from .estimate import UPPER_LIMIT_METHOD, quadrature, weight_per_entry, weighted_yield
    from .pumas import pumas_version
    from .systematics import (DENSITY_MATERIALS, DENSITY_RELATIVE, FIELD_SCALE_RELATIVE,
                              NOT_EVALUATED, POT_RELATIVE, PROCESS_SCALE_UNCERTAINTY,
                              deltas, shift_stat)

    c = est["candidates"]
    regions = probe.regions
    per_entry = weight_per_entry(est["pairs"], CATEGORIES, est["interaction_weight"],
                                 est["interactions"])
    runs = {name: {d: r["candidates"] for d, (_, r) in dirs.items()}
            for name, dirs in reruns.items()}
    doc_regions = {}
    for region in regions.names:
        doc_regions[region] = {}
        for cat in CATEGORIES:
            def mask(f, region=region, cat=cat):
                return (f["region"] == region) & (f["category"] == cat)
            sel = c[mask(c)]
            y = weighted_yield(sel["weight"], sel["track_index"],
                               weight_per_entry=per_entry[cat]["weight"])
            syst = deltas(c, runs, mask)
            doc_regions[region][cat] = {
                "value": y.value, "stat": y.stat,
                "syst": quadrature(syst.values()), "syst_breakdown": syst,
                "upper_limit_90": y.upper_limit_90 if y.n_mc == 0 else None,
                "n_mc": y.n_mc, "n_eff": y.n_eff,
                "prompt": float(sel.loc[sel["zone"] == "prompt", "weight"].sum()),
                "upstream_prompt": float(sel.loc[sel["zone"] == "upstream_prompt",
                                                 "weight"].sum()),
            }
    columns = {r: (lambda f, r=r: f["region"] == r) for r in regions.names}
    columns["total"] = lambda f: pd.Series(True, index=f.index)
    by_column = {col: deltas(c, runs, m) for col, m in columns.items()}
    names = list(next(iter(by_column.values())))
    table = {n: {col: by_column[col][n] for col in columns} for n in names}
    table["quadrature"] = {col: quadrature(by_column[col].values()) for col in columns}
    total = float(c["weight"].sum()) if len(c) else 0.0
    variations = {"pot": {"kind": "reweight",
                          "description": f"POT normalisation x (1 ± {POT_RELATIVE:g})"}}
    for proc, rel in PROCESS_SCALE_UNCERTAINTY.items():
        variations[f"scale:{proc}"] = {
            "kind": "reweight", "description": f"{proc} cross section x (1 ± {rel:g})"}
    for name, dirs in reruns.items():
        variations[name] = {"kind": "rerun", "runs": {}}
        for d, (v, r) in dirs.items():
            t = float(r["candidates"]["weight"].sum()) if len(r["candidates"]) else 0.0
            variations[name]["description"] = v.description
            variations[name]["runs"][d] = {
                "description": v.description, "overrides": list(v.overrides),
                "energy_loss": v.energy_loss or config.energy_loss,
                "total_prompt": t, "shift": t - total,
                "shift_stat": shift_stat(c, r["candidates"]),
                "interaction_weight": r["interaction_weight"],
                "interaction_weight_shift": r["interaction_weight"]
                - est["interaction_weight"],
                "candidates": int(len(r["candidates"]))}
    not_eval = list(NOT_EVALUATED)
    if level == "none":
        not_eval = ["field scale per magnet group", "material density",
                    "MC method (straggled vs mixed)"] + not_eval
    return {
        "schema_version": 1,
        "pot": config.pot_target, "pot_sample": tracks.pot,
        "regions": doc_regions,
        "systematics": {
            "level": level, "evaluated": names, "not_evaluated": not_eval,
            "pot_relative": POT_RELATIVE,
            "process_scale_relative": PROCESS_SCALE_UNCERTAINTY,
            "field_scale_relative": FIELD_SCALE_RELATIVE if level != "none" else None,
            "density_relative": DENSITY_RELATIVE if level != "none" else None,
            "density_materials": list(DENSITY_MATERIALS) if level != "none" else None,
            "method": "reweighting for POT and process scales; re-runs with common "
                      "random numbers (same seed, tracks and histories) for field "
                      "scales, density and MC method; 'fast': up only, taken as "
                      "symmetric; 'full': max(|up|, |down|); combined in quadrature "
                      "(backtrace.systematics)",
            "variations": variations,
            "table": table,
        },
        "upper_limit_method": UPPER_LIMIT_METHOD,
        "upper_limit_weight_per_entry": per_entry,
        "mc": mc,
        "config": {**config.to_dict(), "geometry": probe.geometry.config(),
                   "regions": regions.config(), "tracks": str(tracks.path),
                   "tracks_sha256": tracks.digest()},
        "versions": {"backtrace": __version__,
                     "pumas": ".".join(map(str, pumas_version()))},
        "tracks": dict(sorted(est["status"].items())),
        "tracks_without_source_support": est["no_support"],
        "interactions": est["interactions"],
        "interaction_weight": est["interaction_weight"],
        "candidates": int(len(c)),
        "elapsed_s": elapsed,
        "_candidates": c,
    }
