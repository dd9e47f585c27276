"""Systematic uncertainties of the prompt estimate.

Two kinds, each listed alone and combined in quadrature (``docs/method.md``,
Estimate):

- **reweighting** (exact, no re-run): the POT normalisation ± ``POT_RELATIVE``
  and the cross-section scale of each secondary process ±
  ``PROCESS_SCALE_UNCERTAINTY`` (a candidate's weight is linear in the
  scale of the process that made it; the conversions of bremsstrahlung
  photons to e+e- scale with bremsstrahlung, ``SCALE_OF``);
- **re-runs with common random numbers**: the whole pipeline again with
  the same seed, the same tracks and the same number of histories, one
  thing changed. Every random stream is keyed by (seed, track, sample,
  stream), so the two runs start from the same random numbers and most of
  the Monte Carlo noise cancels in the difference. The cancellation is
  partial: once a path differs (another step, another boundary) PUMAS draws
  its numbers in another order. The paired per-track spread of the shift
  (``shift_stat``) says how much noise is left.

Re-run variations and their sizes (all estimates [est], our choice):

- ``field:GROUP`` — the ``scale`` of every magnet of a geometry ``group``
  (``group`` key of the geometry file; a magnet without one is its own
  group) × (1 ± ``FIELD_SCALE_RELATIVE``), ±5 %. The fields are nominal
  uniform values in idealised regions; the iron-yoke fields of the sweeping
  magnets (B3, sweeper, SCR.1) are saturation-level estimates rather than
  measured maps (public K12 descriptions: "yokes of iron magnetised
  ~1.8 T", ``docs/geometry.md``), and the outlines of the yokes are estimated. A ±5 % field
  integral covers the difference between typical saturation inductions of
  magnet steels (≈1.7–1.9 T) and a uniform field filling an estimated
  yoke; it is larger than the ~1 % current/calibration uncertainty of a
  measured beam-line dipole, which would be the right size for the
  aperture fields alone.
- ``density`` — the density of every ``iron`` and ``copper`` part of every
  element × (1 ± ``DENSITY_RELATIVE``), ±3 %, through the geometry's
  ``density_scale`` (the region density the navigator hands to PUMAS, so
  both the transport — energy loss, scattering — and the grammage of the
  forced-interaction weight change). Pure iron is 7.874 g/cm³; yokes and
  collimators are steels (≈7.80–7.87 g/cm³) assembled from plates or
  laminations with gaps, which lowers the effective density by a few per
  cent. The thin iron layers (vacuum-tank and beam-pipe walls, 3–16 mm)
  keep their density. The dump (TAX) is upstream of the traced region, and the source
  prior at the TAX exit is kept at its nominal geometry, so only the
  material downstream of the TAX is varied.
- ``method`` — the energy-loss mode of the backward transport: straggled
  (nominal) vs mixed (PUMAS's hybrid: continuous loss below its cut, hard
  radiative losses sampled). One-sided: the shift itself is the
  uncertainty. Here the random streams are consumed differently by
  construction, so the shift includes Monte Carlo noise (see
  ``shift_stat``).

One more reweighting, from a measurement rather than a variation:

- ``invisible`` — the part of the prompt yield that the backward method
  cannot see: events whose incoming muon is not in the single-track sample
  (absorbed, swept out, or outside the STRAW1 annulus, while its
  interaction products reach the spectrometer). The forward prompt
  simulation measures it (``studies/prompt_closure.py``); per category, the
  yield × f/(1 − f) with f the measured missed fraction plus its error
  (:func:`invisible_relative`; one-sided in nature — the backward yield
  can only miss, never double-count — listed like the others).

- ``closure`` — how far the backward estimate of the visible yield is
  from the forward prompt simulation of the same events (the closure of
  ``studies/prompt_closure.py``, 'physical' set-up): per category the
  yield × √((1 − R)² + σ_R²), R ± σ_R the measured forward/backward ratio
  over all regions (:func:`closure_relative`). Symmetric, and not a
  correction: the disagreement sits in the thick iron upstream of the decay
  volume (final collimator) and its cause is not identified, so it is
  carried as an uncertainty of the method (the path posterior with the
  source prior), not divided out.

The measured values (f, R and their errors per category) are not constants
of this module: they are data, ``backtrace/data/measured_*.toml``, each
with its source and with the geometry and selection it was measured for
(today: the shipped ``na62_k12_2021.toml`` without overrides and the
μ+μ− selection ``regions_na62_mumu.toml``). :mod:`backtrace.prompt.measured`
looks them up for a run; :func:`deltas` takes them as an argument. A run
with another geometry file, any ``--set`` override or another selection
gets neither term, and its document lists both under ``not_evaluated`` with
the reason. Neither applies to the forward simulation's own document
(candidates with a ``visible`` column), which sees every muon and is what
the closure compares against.

Levels: 'none' (reweighting only), 'fast' (every re-run variation up only,
the shift taken as symmetric: 1 + groups + 1 re-runs), 'full' (up and down
for fields and density; the uncertainty of a variation is the larger of
|shift up| and |shift down|).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

__all__ = ["LEVELS", "POT_RELATIVE", "PROCESS_SCALE_UNCERTAINTY", "SCALE_OF",
           "FIELD_SCALE_RELATIVE", "DENSITY_RELATIVE", "DENSITY_MATERIALS",
           "Variation", "magnet_groups", "rerun_variations", "varied_config",
           "deltas", "shift_stat", "NOT_EVALUATED", "MEASURED_TERMS",
           "invisible_relative", "closure_relative"]

LEVELS = ("none", "fast", "full")
#: Relative uncertainty of the POT normalisation [est].
POT_RELATIVE = 0.2
#: Relative uncertainty assigned to each process cross section [est].
PROCESS_SCALE_UNCERTAINTY = {"photonuclear": 0.3, "pair_production": 0.1,
                             "mumu_pair": 0.3, "bremsstrahlung": 0.1,
                             "knock_on": 0.05}
#: Processes whose rate is another's cross section: the conversions of
#: bremsstrahlung photons to e+e- move with the bremsstrahlung scale.
SCALE_OF = {"photon_conversion": "bremsstrahlung"}
#: Relative variation of the field scale of each magnet group [est].
FIELD_SCALE_RELATIVE = 0.05
#: Relative variation of the density of the varied materials [est].
DENSITY_RELATIVE = 0.03
DENSITY_MATERIALS = ("iron", "copper")
NOT_EVALUATED = ["source prior and path posterior for mu-pi and other (the closure measures "
                 "mu-mu only)", "forcing window", "detector smearing",
                 "part invisible to the backward method for mu-pi and other (not measured)"]
#: The measured terms, in the order of the tables (their values per run:
#: :func:`backtrace.prompt.measured.measured_terms`).
MEASURED_TERMS = ("invisible", "closure")


@dataclass(frozen=True)
class Variation:
    """One re-run: extra geometry overrides and/or another energy-loss mode."""

    name: str                      # 'field:B3', 'density', 'method'
    direction: str                 # 'up', 'down' or 'alt'
    overrides: tuple[str, ...] = ()
    energy_loss: str | None = None
    description: str = ""


def magnet_groups(geometry) -> dict[str, list[str]]:
    """{group: [element names]} of the magnets (elements with a field)."""
    groups: dict[str, list[str]] = {}
    for e in geometry.elements:
        if e.is_magnet:
            groups.setdefault(e.group or e.name, []).append(e.name)
    return groups


def _field(geometry, group, names, sign, rel) -> Variation:
    scale = {e.name: e.scale for e in geometry.elements}
    over = tuple(f"{n}.scale={scale[n] * (1 + sign * rel)!r}" for n in names)
    return Variation(f"field:{group}", "up" if sign > 0 else "down", over,
                     description=f"field scale of {', '.join(names)} x "
                                 f"{1 + sign * rel:g}")


def _density(geometry, sign, rel, materials) -> Variation:
    over = []
    for e in geometry.elements:
        if len(e.parts) == 1 and e.parts[0].material in materials:
            over.append(f"{e.name}.density_scale="
                        f"{e.parts[0].density_scale * (1 + sign * rel)!r}")
        elif len(e.parts) > 1:
            over += [f"{e.name}.part.{i}.density_scale="
                     f"{p.density_scale * (1 + sign * rel)!r}"
                     for i, p in enumerate(e.parts) if p.material in materials]
    return Variation("density", "up" if sign > 0 else "down", tuple(over),
                     description=f"density of {'/'.join(materials)} x "
                                 f"{1 + sign * rel:g}")


def rerun_variations(geometry, level: str, energy_loss: str = "straggled", *,
                     field_rel: float = FIELD_SCALE_RELATIVE,
                     density_rel: float = DENSITY_RELATIVE,
                     materials=DENSITY_MATERIALS) -> list[Variation]:
    """The re-runs of a systematics ``level`` for a geometry (with the
    user's overrides already applied: scales multiply the current ones)."""
    if level not in LEVELS:
        raise ValueError(f"systematics level {level!r} (expected one of {LEVELS})")
    if level == "none":
        return []
    signs = (1,) if level == "fast" else (1, -1)
    out = [_field(geometry, g, names, s, field_rel)
           for g, names in magnet_groups(geometry).items() for s in signs]
    out += [_density(geometry, s, density_rel, materials) for s in signs]
    alt = "mixed" if energy_loss == "straggled" else "straggled"
    out.append(Variation("method", "alt", energy_loss=alt,
                         description=f"backward energy loss {alt} instead of "
                                     f"{energy_loss}"))
    return out


def varied_config(config, variation: Variation, samples_per_track: int):
    """The RunConfig of a re-run: nominal source prior, all histories in one
    pass."""
    source = config.overrides if config.source_overrides is None \
        else config.source_overrides
    return replace(config, overrides=tuple(config.overrides) + variation.overrides,
                   source_overrides=tuple(source),
                   energy_loss=variation.energy_loss or config.energy_loss,
                   samples_per_track=int(samples_per_track))


def _sum(c: pd.DataFrame, mask) -> float:
    return float(c.loc[mask(c), "weight"].sum()) if len(c) else 0.0


def deltas(nominal: pd.DataFrame, reruns: dict, mask, measured: dict | None = None
           ) -> dict[str, float]:
    """Absolute uncertainty of the yield ``Σ weight`` of ``nominal[mask]``
    per variation: reweighting ones, the measured terms, then each re-run
    name with max |yield(variation) − yield(nominal)| over its directions.
    ``reruns``: {name: {direction: candidates}}; ``mask``: candidates →
    boolean Series; ``measured``: {term: {category: (value, error)}} of the
    :data:`MEASURED_TERMS` that apply to the run
    (:attr:`backtrace.prompt.measured.MeasuredTerms.values`); a term not in
    it is not evaluated (no entry)."""
    sel = nominal[mask(nominal)] if len(nominal) else nominal
    value = float(sel["weight"].sum()) if len(sel) else 0.0
    out = {"pot": POT_RELATIVE * value}
    scaled = sel["process"].map(lambda p: SCALE_OF.get(p, p)) if len(sel) else None
    for proc, rel in PROCESS_SCALE_UNCERTAINTY.items():
        out[f"scale:{proc}"] = rel * (float(sel.loc[scaled == proc, "weight"].sum())
                                      if len(sel) else 0.0)
    measured = measured or {}
    for term in MEASURED_TERMS:
        if term in measured:
            out[term] = _measured_term(sel, measured[term], RELATIVE[term])
    for name, runs in reruns.items():
        out[name] = max(abs(_sum(c, mask) - value) for c in runs.values())
    return out


def _measured_term(sel: pd.DataFrame, values: dict, relative) -> float:
    """A term measured by the forward closure: Σ over the categories of
    ``values`` ({category: (value, error)}) of relative(value, error) × that
    category's yield in ``sel``; 0 for the forward simulation's own
    candidates (a 'visible' column), which the closure compares against
    rather than corrects."""
    if not len(sel) or "visible" in sel:
        return 0.0
    return float(sum(relative(*v) * sel.loc[sel["category"] == cat, "weight"].sum()
                     for cat, v in values.items()))


def closure_relative(ratio: float, error: float) -> float:
    """The ``closure`` uncertainty relative to the backward yield of a
    category whose measured forward/backward ratio is R ± σ_R:
    √((1 − R)² + σ_R²)."""
    return float(np.hypot(1.0 - ratio, error))


def invisible_relative(fraction: float, error: float) -> float:
    """The ``invisible`` uncertainty relative to the backward yield of a
    category whose measured missed fraction is f ± σ: M / A = f / (1 − f)
    at f + σ (at most 0.99)."""
    up = min(fraction + error, 0.99)
    return up / (1.0 - up)


#: The relative size of each measured term from a category's (value, error).
RELATIVE = {"invisible": invisible_relative, "closure": closure_relative}


def shift_stat(nominal: pd.DataFrame, varied: pd.DataFrame) -> float:
    """Monte Carlo spread of the shift of the total: √Σ_tracks Δ_t², Δ_t the
    change of a track's summed candidate weight (the paired estimate that
    profits from common random numbers)."""
    def per_track(c):
        if not len(c):
            return pd.Series(dtype=float)
        return c.groupby("track_index")["weight"].sum()

    a, b = per_track(nominal), per_track(varied)
    d = b.reindex(a.index.union(b.index), fill_value=0.0) \
        - a.reindex(a.index.union(b.index), fill_value=0.0)
    return float(np.sqrt(np.sum(np.square(d.to_numpy()))))
