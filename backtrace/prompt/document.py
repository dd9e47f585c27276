"""The result document of an estimate (``background.json``) and its schema.

:func:`build_document` turns a combined estimate (:func:`backtrace.prompt.passes.combine_passes`),
its systematic re-runs and the Monte Carlo summary into one JSON-ready dict:
yields per region and category (value, stat, syst with breakdown, 90 % CL
limits of empty cells, prompt / upstream-prompt split; the categories are
the channel's, :data:`backtrace.regions.CHANNELS`), the systematics table,
the upper-limit convention, the configuration (geometry, regions, tracks
and their digest), versions and track statuses; with a selection that names
``eta_vetoes``, NA62's factorised estimate next to the direct one
(``factorised``, :mod:`backtrace.prompt.factorised`).

The document carries ``schema_version``; :mod:`backtrace.output.schema`
checks it against the packaged JSON schema when it is written and read.
"""

from __future__ import annotations

import pandas as pd

from backtrace._version import __version__
from backtrace.prompt.estimate import (
    UPPER_LIMIT_METHOD,
    mc_error,
    quadrature,
    weight_per_entry,
    weighted_yield,
)
from backtrace.prompt.factorised import factorised_estimate
from backtrace.prompt.measured import measured_terms
from backtrace.prompt.systematics import (
    DENSITY_MATERIALS,
    DENSITY_RELATIVE,
    FIELD_SCALE_RELATIVE,
    NOT_EVALUATED,
    POT_RELATIVE,
    PROCESS_SCALE_UNCERTAINTY,
    RELATIVE,
    deltas,
    shift_stat,
)
from backtrace.pumas import pumas_version

__all__ = ["SCHEMA_VERSION", "build_document"]

SCHEMA_VERSION = 1


#: Where the interaction happened: NA62's prompt / upstream-prompt split.
ZONES = ("prompt", "upstream_prompt")


def _zone(sel: pd.DataFrame, zone: str, per_entry: float) -> dict:
    part = sel[sel["zone"] == zone]
    y = weighted_yield(part["weight"], part["track_index"], weight_per_entry=per_entry)
    return {"value": y.value, "stat": y.stat, "n_mc": y.n_mc,
            "upper_limit_90": y.upper_limit_90 if y.n_mc == 0 else None}


def _by_process(sel: pd.DataFrame, processes, mc) -> dict:
    """The cell per forced process: {process: value, mc (its MC error), n_mc,
    prompt, upstream_prompt}; the values add up to the cell's."""
    out = {}
    for proc in processes:
        part = sel[sel["process"] == proc] if len(sel) else sel
        out[proc] = {"value": float(part["weight"].sum()) if len(part) else 0.0,
                     "mc": mc(part) if len(part) else 0.0, "n_mc": int(len(part)),
                     **{z: float(part.loc[part["zone"] == z, "weight"].sum())
                        if len(part) else 0.0 for z in ZONES}}
    return out


def _cell(c: pd.DataFrame, runs: dict, mask, per_entry: float, mc, measured,
          processes) -> dict:
    sel = c[mask(c)]
    y = weighted_yield(sel["weight"], sel["track_index"], weight_per_entry=per_entry)
    syst = deltas(c, runs, mask, measured.values)
    mc_err = mc(sel) if len(sel) else 0.0
    return {
        "mc": mc_err, "mc_rel": mc_err / y.value if y.value > 0 else None,
        "zones": {z: _zone(sel, z, per_entry) for z in ZONES},
        "value": y.value, "stat": y.stat,
        "syst": quadrature(syst.values()), "syst_breakdown": syst,
        "upper_limit_90": y.upper_limit_90 if y.n_mc == 0 else None,
        "n_mc": y.n_mc, "n_eff": y.n_eff,
        "prompt": float(sel.loc[sel["zone"] == "prompt", "weight"].sum()),
        "upstream_prompt": float(sel.loc[sel["zone"] == "upstream_prompt",
                                         "weight"].sum()),
        "by_process": _by_process(sel, processes, mc),
    }


def _regions_block(c, runs, regions, per_entry, mc, measured, processes) -> dict:
    out = {}
    for region in regions.names:
        out[region] = {}
        for cat in regions.categories:
            def mask(f, region=region, cat=cat):
                return (f["region"] == region) & (f["category"] == cat)
            out[region][cat] = _cell(c, runs, mask, per_entry[cat]["weight"], mc, measured,
                                     processes)
    return out


def _systematics_table(c, runs, regions, measured) -> tuple[list, dict]:
    columns = {r: (lambda f, r=r: f["region"] == r) for r in regions.names}
    columns["total"] = lambda f: pd.Series(True, index=f.index)
    by_column = {col: deltas(c, runs, m, measured.values) for col, m in columns.items()}
    names = list(next(iter(by_column.values())))
    table = {n: {col: by_column[col][n] for col in columns} for n in names}
    table["quadrature"] = {col: quadrature(by_column[col].values()) for col in columns}
    return names, table


def _measured_variation(key: str, values: dict, relative, description: str,
                        study: str) -> dict:
    """A reweighting measured by the forward closure: the measured (value,
    error) per category under ``key``, the relative size ``relative(value,
    error)`` and the data file they come from (``study``)."""
    return {"kind": "reweight", key: {c: list(v) for c, v in values.items()},
            "relative": {c: relative(*v) for c, v in values.items()},
            "description": description, "study": study}


def _variations(c, est, reruns, config, measured) -> dict:
    """The ``variations`` of the systematics block; ``measured``: the run's
    :class:`backtrace.prompt.measured.MeasuredTerms` (a term that does not
    apply gets no entry)."""
    total = float(c["weight"].sum()) if len(c) else 0.0
    variations = {"pot": {"kind": "reweight",
                          "description": f"POT normalisation x (1 ± {POT_RELATIVE:g})"}}
    for proc, rel in PROCESS_SCALE_UNCERTAINTY.items():
        variations[f"scale:{proc}"] = {
            "kind": "reweight", "description": f"{proc} cross section x (1 ± {rel:g})"}
    if "invisible" in measured.values:
        variations["invisible"] = _measured_variation(
            "measured_fraction", measured.values["invisible"], RELATIVE["invisible"],
            "yield the backward method cannot see (incoming muon not in the single-track "
            "sample): yield x f/(1 - f) per category at f + error of the fraction measured "
            "by studies/prompt_closure.py", measured.studies["invisible"])
    if "closure" in measured.values:
        variations["closure"] = _measured_variation(
            "measured_ratio", measured.values["closure"], RELATIVE["closure"],
            "forward/backward ratio R of the visible yield measured by "
            "studies/prompt_closure.py: yield x sqrt((1 - R)^2 + error^2) per category "
            "(symmetric; an uncertainty of the path posterior, not a correction)",
            measured.studies["closure"])
    for name, dirs in reruns.items():
        variations[name] = {"kind": "rerun", "runs": {}}
        for d, (v, r) in dirs.items():
            t = float(r.candidates["weight"].sum()) if len(r.candidates) else 0.0
            variations[name]["description"] = v.description
            variations[name]["runs"][d] = {
                "description": v.description, "overrides": list(v.overrides),
                "energy_loss": v.energy_loss or config.energy_loss,
                "total_prompt": t, "shift": t - total,
                "shift_stat": shift_stat(c, r.candidates),
                "interaction_weight": r.interaction_weight,
                "interaction_weight_shift": r.interaction_weight
                - est.interaction_weight,
                "candidates": int(len(r.candidates))}
    return variations


def _systematics_block(c, est, reruns, runs, regions, level, config,
                       measured=None) -> dict:
    """The ``systematics`` block. ``measured``: the run's measured terms
    (:func:`backtrace.prompt.measured.measured_terms`; None: looked up for
    the geometry and selection of ``config`` and ``regions``); a term measured
    for another geometry or selection is listed as not evaluated, with why."""
    if measured is None:
        measured = measured_terms(config.geometry_file, config.overrides, regions)
    names, table = _systematics_table(c, runs, regions, measured)
    not_eval = list(NOT_EVALUATED) + list(measured.not_evaluated.values())
    if level == "none":
        not_eval = ["field scale per magnet group", "material density",
                    "MC method (straggled vs mixed)"] + not_eval
    rerun = level != "none"
    return {
        "level": level, "evaluated": names, "not_evaluated": not_eval,
        "pot_relative": POT_RELATIVE,
        "process_scale_relative": PROCESS_SCALE_UNCERTAINTY,
        "field_scale_relative": FIELD_SCALE_RELATIVE if rerun else None,
        "density_relative": DENSITY_RELATIVE if rerun else None,
        "density_materials": list(DENSITY_MATERIALS) if rerun else None,
        "method": "reweighting for POT and process scales; re-runs with common "
                  "random numbers (same seed, tracks and histories) for field "
                  "scales, density and MC method; 'fast': up only, taken as "
                  "symmetric; 'full': max(|up|, |down|); combined in quadrature "
                  "(backtrace.prompt.systematics)",
        "variations": _variations(c, est, reruns, config, measured),
        "table": table,
    }


def estimated_parameters(geometry) -> list[dict]:
    """Every geometry entry marked estimated, with its keys and source."""
    out = []
    for e in geometry.elements:
        if e.estimated:
            out.append({"element": e.name, "keys": e.estimated_keys, "source": e.source})
        if e.detector and e.detector.get("estimated"):
            out.append({"element": f"{e.name}.detector",
                        "keys": e.detector.get("estimated_keys"),
                        "source": e.detector.get("source", "")})
    for f in geometry.fills:
        if f.get("estimated"):
            out.append({"element": f"fill:{f.get('name')}", "keys": f.get("estimated_keys"),
                        "source": f.get("source", "")})
    return out


def build_document(tracks, config, geometry, regions, est: dict, reruns: dict,
                   level: str, mc: dict, elapsed: float, response=None) -> dict:
    """The ``background.json`` document (module docstring). ``reruns``:
    {variation name: {direction: (Variation, combined estimate)}};
    ``response``: the detector response of the run (vetoes, identification)."""
    c = est.candidates
    per_entry = weight_per_entry(est.pairs, regions.categories, est.interaction_weight,
                                 est.interactions)
    runs = {name: {d: r.candidates for d, (_, r) in dirs.items()}
            for name, dirs in reruns.items()}
    measured = measured_terms(config.geometry_file, config.overrides, regions)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "pot": config.pot_target, "pot_sample": tracks.pot,
        "regions": _regions_block(
            c, runs, regions, per_entry,
            lambda sel: mc_error(sel, est.norm, est.norm2,
                                 config.interactions_per_history), measured,
            config.forced_processes()),
        "systematics": _systematics_block(c, est, reruns, runs, regions, level, config,
                                          measured),
        "detector": {**(response.config() if response is not None else {}),
                     "prompt_boundary_z_m": config.prompt_boundary_m(geometry),
                     "prompt_definition": "prompt: the interaction happened in the decay "
                                          "volume or its walls (z >= the boundary); "
                                          "upstream_prompt: upstream of it",
                     "estimated_parameters": estimated_parameters(geometry)},
        "upper_limit_method": UPPER_LIMIT_METHOD,
        "upper_limit_weight_per_entry": per_entry,
        "mc": mc,
        "config": {**config.to_dict(), "geometry": geometry.config(),
                   "regions": regions.config(), "tracks": str(tracks.path),
                   "tracks_sha256": tracks.digest()},
        "versions": {"backtrace": __version__,
                     "pumas": ".".join(map(str, pumas_version()))},
        "tracks": dict(sorted(est.status.items())),
        "tracks_without_source_support": est.no_support,
        "interactions": est.interactions,
        "interaction_weight": est.interaction_weight,
        "candidates": int(len(c)),
        "elapsed_s": elapsed,
    }
    eta = regions.selection.get("eta_vetoes")
    if eta:
        doc["factorised"] = factorised_estimate(c, regions.names, eta)
    return doc
