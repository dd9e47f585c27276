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
factors (pion survival / decay split). Systematics evaluated by exact
reweighting: POT ±20 % and each process's cross-section scale ±
``process_scale_uncertainty``; the others (field scales, densities, MC
method) need re-runs and are listed as not evaluated.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .detector import (Smearing, invariant_mass, pointing, smear, straw_acceptance,
                       two_track_vertex)
from .rng import normals, uniforms

__all__ = ["RunConfig", "Pipeline", "run_estimate", "CATEGORIES"]

CATEGORIES = ("mu-mu", "mu-pi", "other")
STRAWS = ("STRAW1", "STRAW2", "STRAW3", "STRAW4")
MUON_MASS = 0.1056583755
PION_MASS = 0.13957039
ELECTRON_MASS = 0.00051099895
#: Relative uncertainty assigned to each process cross section (systematic
#: variation by reweighting) [est].
PROCESS_SCALE_UNCERTAINTY = {"photonuclear": 0.3, "pair_production": 0.1,
                             "mumu_pair": 0.3, "bremsstrahlung": 0.1,
                             "knock_on": 0.05}


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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["overrides"] = list(self.overrides)
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
            to_z_m=_tax_exit(self.geometry)), physics=self.physics,
            geometry=self.geometry)
        self.sampler = ForcedSampler(self.physics, ForcedConfig(
            q_min_gev=config.q_min_gev, z_min_m=config.forced_z_min_m,
            prompt_z_min_m=config.prompt_z_min_m))
        self.products = ProductTransport(self.physics, config.geometry_file,
                                         config.overrides, seed=config.seed + 1)
        self.density = source_density(config, self.physics)

    def process(self, tracks: pd.DataFrame, track_weight_scale: float) -> dict:
        """One batch: returns statuses and candidates (with weights)."""
        from .posterior import posterior_weights

        cfg = self.config
        result = self.tracer.trace(tracks)
        hist = posterior_weights(result.histories, self.density, prior=cfg.prior,
                                 track_weight=pd.Series(
                                     tracks["weight"].to_numpy() if "weight" in tracks
                                     else np.ones(len(tracks)),
                                     index=tracks["track_index"].to_numpy()))
        hw = hist.set_index(["track_index", "sample_index"])["posterior_weight"]
        counts = Counter(result.row_status.tolist())
        support = hist.groupby("track_index")["posterior_weight"].sum() > 0
        states = result.states
        if states is None or states.empty:
            return {"status": counts, "candidates": pd.DataFrame(),
                    "interactions": 0, "interaction_weight": 0.0,
                    "no_support": int((~support).sum())}
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
        w_inter = float(inter["weight"].sum()) * track_weight_scale
        prods = prods[prods["interaction"].isin(inter["interaction"])]
        p = np.linalg.norm(prods[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1) \
            if len(prods) else np.zeros(0)
        prods = prods[p >= self.regions.selection["track_p_min_gev"]]
        det = self.products.transport(prods, inter) if len(prods) else pd.DataFrame()
        cands = self._candidates(det, inter, track_weight_scale)
        return {"status": counts, "candidates": cands, "interactions": len(inter),
                "interaction_weight": w_inter, "no_support": int((~support).sum())}

    def _candidates(self, det, inter, scale):
        sel = self.regions.selection
        cols = ["interaction", "region", "category", "zone", "process", "weight",
                "track_index", "z_tax_m", "cda_tax_m", "vertex_z_m", "cda_m",
                "mass_gev", "p1_gev", "p2_gev"]
        if det is None or det.empty:
            return pd.DataFrame(columns=cols)
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
        rows = []
        two_only = sel.get("exactly_two_tracks", True)
        for iid, g in tracks.groupby("interaction"):
            best = None
            items = g.to_dict("records")
            if two_only:
                # distinct charged tracks seen by the spectrometer (the two
                # outcomes of one pion are one track)
                n_tracks = g["particle"].nunique()
                if n_tracks != 2:
                    continue
            for a in range(len(items)):
                for b in range(a + 1, len(items)):
                    t1, t2 = items[a], items[b]
                    if sel.get("opposite_charges", True) and t1["charge"] * t2["charge"] >= 0:
                        continue
                    if t1["particle"] == t2["particle"]:
                        continue  # the two outcomes of one pion
                    cand = self._pair(t1, t2)
                    if cand is not None and (best is None or cand["cda_m"] < best["cda_m"]):
                        best = cand
            if best is not None:
                best["interaction"] = iid
                rows.append(best)
        if not rows:
            return pd.DataFrame(columns=cols)
        c = pd.DataFrame(rows)
        i = inter.set_index("interaction").loc[c["interaction"]]
        c["zone"] = i["zone"].to_numpy()
        c["process"] = i["process"].to_numpy()
        c["track_index"] = i["track_index"].to_numpy()
        c["weight"] = i["weight"].to_numpy() * c["factor"] * scale
        c["region"] = self.regions.classify(c["z_tax_m"], c["cda_tax_m"])
        return c[cols + ["muon_ids"]]

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
        muons = {"mu", "mu_from_pi"}
        if t1["identity"] in muons and t2["identity"] in muons:
            category = "mu-mu"
        elif (t1["identity"] in muons and t2["identity"] == "pi") or \
                (t2["identity"] in muons and t1["identity"] == "pi"):
            category = "mu-pi"
        else:
            category = "other"
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


def _tax_exit(geometry) -> float:
    return max(p.z_max_m for e in geometry.by_role("dump") for p in e.parts)


def source_density(config: RunConfig, physics):
    """The source density at the TAX exit, cached per geometry/config."""
    from .pumas.physics import cache_dir
    from .simulate import SimulationConfig, Simulator
    from .source_density import SourceDensity, build_source_density

    sim_cfg = SimulationConfig(geometry_file=config.geometry_file,
                               overrides=tuple(config.overrides), seed=12345)
    key = hashlib.sha256(json.dumps({
        "sim": sim_cfg.to_dict(), "events": config.density_events,
        "geometry": _geometry_digest(config)}, sort_keys=True, default=str).encode()
    ).hexdigest()[:24]
    path = cache_dir() / "source_density" / f"{key}.json"
    if path.exists():
        try:
            return SourceDensity.load(path)
        except (ValueError, KeyError, TypeError):
            pass  # rebuilt below
    density = build_source_density(Simulator(sim_cfg, physics=physics),
                                   config.density_events)
    try:
        density.save(path)
    except OSError:
        pass
    return density


def _geometry_digest(config) -> str:
    from .geometry import default_geometry_path
    from pathlib import Path

    path = Path(config.geometry_file) if config.geometry_file else default_geometry_path()
    return hashlib.sha256(path.read_bytes()).hexdigest()


_WORKER: Pipeline | None = None


def _init(config):
    global _WORKER
    _WORKER = Pipeline(config)


def _work(args):
    df, scale = args
    return _WORKER.process(df, scale)


def run_estimate(tracks, config: RunConfig, *, jobs: int = 1, batch_size: int = 200,
                 progress: bool = True, scheduler: str | None = None) -> dict:
    """Run the pipeline over a track file; return the result document."""
    from . import __version__
    from .estimate import UPPER_LIMIT_METHOD, quadrature, weighted_yield
    from .pumas import pumas_version
    from .transport import _progress, ordered_map

    if tracks.pot is None:
        raise ValueError(f"{tracks.path}: the POT the sample represents is unknown: "
                         "give --pot")
    t0 = time.perf_counter()
    probe = Pipeline(config)
    scale = config.pot_target / tracks.pot
    batches = ((df, scale) for df in tracks.iter_batches(batch_size))
    if jobs <= 1 and scheduler is None:
        results = (probe.process(df, s) for df, s in batches)
    else:
        results = ordered_map(_work, batches, jobs=jobs, initializer=_init,
                              initargs=(config,), scheduler=scheduler)
    status, cands, n_inter, no_support, w_inter = Counter(), [], 0, 0, 0.0
    with _progress(tracks.n_rows, "estimating", progress) as bar:
        task = bar.add_task("run", total=tracks.n_rows)
        for r in results:
            status.update(r["status"])
            if len(r["candidates"]):
                cands.append(r["candidates"])
            n_inter += r["interactions"]
            w_inter += r["interaction_weight"]
            no_support += r["no_support"]
            bar.advance(task, sum(r["status"].values()))
    c = pd.concat(cands, ignore_index=True) if cands else pd.DataFrame(
        columns=["region", "category", "zone", "process", "weight", "track_index",
                 "z_tax_m", "cda_tax_m"])
    regions = probe.regions
    # the weight an entry would carry: the mean candidate weight, or, with no
    # candidate at all, the mean weight of a forced-interaction event
    if len(c):
        weight_per_entry = float(c["weight"].mean())
        entry_basis = "mean candidate weight"
    else:
        weight_per_entry = w_inter / max(n_inter, 1)
        entry_basis = "mean forced-interaction weight (no candidate at all)"
    doc_regions = {}
    for region in regions.names:
        doc_regions[region] = {}
        for cat in CATEGORIES:
            sel = c[(c["region"] == region) & (c["category"] == cat)]
            y = weighted_yield(sel["weight"], sel["track_index"],
                               weight_per_entry=weight_per_entry)
            syst = _systematics(sel, y.value)
            doc_regions[region][cat] = {
                "value": y.value, "stat": y.stat,
                "syst": quadrature([v for v in syst.values()]),
                "upper_limit_90": y.upper_limit_90 if y.n_mc == 0 else None,
                "n_mc": y.n_mc, "n_eff": y.n_eff,
                "prompt": float(sel.loc[sel["zone"] == "prompt", "weight"].sum()),
                "upstream_prompt": float(sel.loc[sel["zone"] == "upstream_prompt",
                                                 "weight"].sum()),
            }
    elapsed = time.perf_counter() - t0
    return {
        "schema_version": 1,
        "pot": config.pot_target, "pot_sample": tracks.pot,
        "regions": doc_regions,
        "systematics": {
            "evaluated": ["pot", *[f"scale:{p}" for p in PROCESS_SCALE_UNCERTAINTY]],
            "not_evaluated": ["field scale per magnet group", "material density",
                              "MC method (straggled vs hybrid)", "source prior"],
            "pot_relative": 0.2, "process_scale_relative": PROCESS_SCALE_UNCERTAINTY,
        },
        "upper_limit_method": f"{UPPER_LIMIT_METHOD}; weight per entry = "
                              f"{entry_basis} = {weight_per_entry:.3g}",
        "config": {**config.to_dict(), "geometry": probe.geometry.config(),
                   "regions": regions.config(), "tracks": str(tracks.path),
                   "tracks_sha256": tracks.digest()},
        "versions": {"backtrace": __version__,
                     "pumas": ".".join(map(str, pumas_version()))},
        "tracks": dict(sorted(status.items())),
        "tracks_without_source_support": no_support,
        "interactions": n_inter, "candidates": int(len(c)),
        "elapsed_s": elapsed,
        "_candidates": c,
    }


def _systematics(sel: pd.DataFrame, value: float) -> dict:
    """Shifts of a yield under the reweighting variations."""
    out = {"pot": 0.2 * value}
    for proc, rel in PROCESS_SCALE_UNCERTAINTY.items():
        out[f"scale:{proc}"] = rel * float(sel.loc[sel["process"] == proc, "weight"].sum())
    return out
