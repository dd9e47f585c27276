"""The spill model of the combinatorial background: how often two unrelated
muons of one spill are measured in time.

**Accidental pairs.** Let the protons of a spill arrive with the time
profile f(t) (∫ f dt = 1 over the spill), and let track i of a single-track
sample stand for n_i = w_i · N_spill / N_sample muons per spill (w_i its
weight in muons per N_sample POT, N_spill the POT per spill). Muons of
different protons are independent; each one's time follows f. Two muons are
paired by the vertex reconstruction when their *measured* times differ by
less than the window W: |t_1 − t_2 + ε| < W, ε ~ N(0, 2σ_t²) the difference of
two measurement errors. The probability that a given pair of muons of one
spill is in time is

    P₂ = ∫ A(τ) g(τ) dτ,   A(τ) = ∫ f(t) f(t + τ) dt,
    g(τ) = Φ((W − τ)/(√2 σ_t)) − Φ((−W − τ)/(√2 σ_t)),

A the autocorrelation of the profile and g the probability that a true
difference τ is measured within the window. ∫ g dτ = 2W whatever σ_t, so
when A does not vary over a few W (no time structure at the ns scale),
P₂ = 2W ∫ f² dt = 2W / T_eff with the **effective spill length**
T_eff = 1 / ∫ f² dt = D · T, T the flat-top length and
D = (∫ f)² / (T ∫ f²) ≤ 1 the duty factor: the time resolution then does not
change the accidental rate, only fine structure of the spill would. For a
flat spill of length T the exact value is P₂ = 2W/T − W²/T² (edges).

The expected number of accidental pairs like (i, j) over N_POT protons
(N_POT / N_spill spills) is then

    N_ij = (N_POT / N_spill) · n_i n_j · P₂
         = N_POT · N_spill / N_sample² · P₂ · w_i w_j,

linear in the intensity per spill (pairs grow as its square, spills fall as
its inverse). :mod:`backtrace.combinatorial.pairing` multiplies it by the selection
outcome of the pair.

**Model file** (TOML, default ``backtrace/data/spill_na62_dump_2021.toml``):
``version = 1``, ``name`` and one table per parameter — ``pot_per_spill``,
``flat_top_s``, ``duty_factor``, ``window_ns``, ``time_resolution_ns`` —
each with ``value``, ``range = [lo, hi]`` (the systematic moves it to each
end), ``estimated`` and ``source``. An optional ``time_structure_file``
(CSV with columns ``t_s`` on a uniform grid and ``intensity``; a path
relative to the model file) replaces ``flat_top_s`` and ``duty_factor``:
P₂ is then the integral above with the piecewise-linear autocorrelation of
the piecewise-constant profile (exact for it). An optional ``[sensitivity]``
section gives the ranges of the sensitivity table's other inputs (the CDA
cut, a flux scale) and the published values it is set beside
(:mod:`backtrace.combinatorial.sensitivity`; information only, it never
changes the estimate; a file without it takes the packaged file's). With
measured times (:mod:`backtrace.combinatorial.bursts`) only ``window_ns``
is used: the POT per spill and the time profile are measured. The file's schema is
``backtrace/data/spill-1.schema.json``; :func:`load_spill_model` checks it
before using any value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from backtrace.io import read_data_toml
from backtrace.schemas import check_against_schema

__all__ = ["SpillModel", "SpillError", "load_spill_model", "PARAMETERS",
           "pairing_probability_flat", "pairing_probability_profile"]

#: The parameters of a spill-model file, with their units.
PARAMETERS = {"pot_per_spill": "protons on target per spill",
              "flat_top_s": "spill flat-top length [s]",
              "duty_factor": "duty factor D = (∫f)²/(T∫f²)",
              "window_ns": "half-width of the |Δt| cut [ns]",
              "time_resolution_ns": "time resolution per track [ns]"}
#: Parameters a time-structure file replaces.
PROFILE_REPLACES = ("flat_top_s", "duty_factor")
#: The schema of a spill-model file (``backtrace/data``).
SCHEMA = "spill-1.schema.json"
#: A top-level key written after the first table lands in that table.
_HINTS = {"*.time_structure_file": ("a top-level key inside a parameter table",
                                    "top-level keys such as time_structure_file before "
                                    "the first table")}


class SpillError(ValueError):
    """Raised when a spill-model file is missing or malformed."""


def pairing_probability_flat(window_s: float, length_s: float) -> float:
    """P₂ of a flat spill of length ``length_s`` [s] (module docstring):
    2W/T − W²/T², W = ``window_s`` ≤ T."""
    w, t = float(window_s), float(length_s)
    if not (0 < w <= t):
        raise SpillError(f"coincidence window {w:g} s must be in (0, spill length {t:g} s]")
    return 2 * w / t - (w / t) ** 2


def _autocorrelation(f: np.ndarray, dt_s: float, max_lag: int) -> np.ndarray:
    """A at lags 0 … max_lag bins of a piecewise-constant profile f (∫f = 1)."""
    n = len(f)
    return np.array([dt_s * float(np.dot(f[:n - m], f[m:])) if m < n else 0.0
                     for m in range(max_lag + 1)])


def pairing_probability_profile(t_s, intensity, window_s: float, resolution_s: float) -> float:
    """P₂ of a tabulated profile (bins starting at ``t_s``, uniform width)
    with a Gaussian time resolution per track (module docstring)."""
    from scipy.special import ndtr

    t = np.asarray(t_s, float)
    y = np.asarray(intensity, float)
    dt = float(t[1] - t[0])
    f = y / (y.sum() * dt)
    s = np.sqrt(2.0) * float(resolution_s)
    reach = float(window_s) + 8 * s
    max_lag = int(np.ceil(reach / dt)) + 1
    lags = np.arange(max_lag + 1) * dt
    a = _autocorrelation(f, dt, max_lag)
    if s == 0:
        # g is the window itself: integrate the piecewise-linear A exactly
        nodes = np.r_[lags[lags < window_s], window_s]
        return float(2 * np.trapezoid(np.interp(nodes, lags, a), nodes))
    step = min(dt, float(window_s), s) / 20.0
    tau = np.linspace(-reach, reach, int(np.ceil(2 * reach / step)) + 1)
    a_tau = np.interp(np.abs(tau), lags, a)        # A is even, linear between lags
    g = ndtr((window_s - tau) / s) - ndtr((-window_s - tau) / s)
    return float(np.trapezoid(a_tau * g, tau))


@dataclass(frozen=True)
class SpillModel:
    """A spill model: parameter values with their ranges and sources, and
    an optional tabulated time structure (module docstring)."""

    name: str
    values: dict
    ranges: dict
    sources: dict
    estimated: dict
    path: str | None = None
    profile: tuple | None = field(default=None, repr=False)   # (t_s, intensity)
    profile_file: str | None = None
    #: the optional ``[sensitivity]`` section as read (None: absent)
    sensitivity: dict | None = field(default=None, repr=False)

    @property
    def effective_length_s(self) -> float:
        """T_eff = 1/∫f² [s]: D × flat top, or from the profile."""
        if self.profile is not None:
            t, y = (np.asarray(v, float) for v in self.profile)
            dt = float(t[1] - t[0])
            f = y / (y.sum() * dt)
            return float(1.0 / (np.sum(f * f) * dt))
        return self.values["duty_factor"] * self.values["flat_top_s"]

    def pairing_probability(self) -> float:
        """P₂: probability that two muons of one spill are measured in time."""
        window_s = self.values["window_ns"] * 1e-9
        if self.profile is not None:
            return pairing_probability_profile(*self.profile, window_s,
                                               self.values["time_resolution_ns"] * 1e-9)
        return pairing_probability_flat(window_s, self.effective_length_s)

    def pairs_per_weight(self, pot_target: float, pot_sample: float) -> float:
        """N_POT · N_spill / N_sample² · P₂: expected accidental pairs per unit
        w_i w_j (module docstring)."""
        return (float(pot_target) * self.values["pot_per_spill"] / float(pot_sample) ** 2
                * self.pairing_probability())

    def with_value(self, name: str, value: float) -> "SpillModel":
        return replace(self, values={**self.values, name: float(value)})

    def used_parameters(self) -> list[str]:
        """Parameters that enter P₂ and the normalisation."""
        return [p for p in PARAMETERS
                if not (self.profile is not None and p in PROFILE_REPLACES)]

    def config(self) -> dict:
        """What outputs record: every parameter with its range and source,
        T_eff and P₂."""
        return {"name": self.name, "path": self.path, "time_structure_file": self.profile_file,
                "parameters": {p: {"value": self.values[p], "range": list(self.ranges[p]),
                                   "estimated": self.estimated[p], "source": self.sources[p],
                                   "meaning": PARAMETERS[p],
                                   "used": p in self.used_parameters()}
                               for p in PARAMETERS},
                "effective_spill_length_s": self.effective_length_s,
                "pairing_probability": self.pairing_probability()}


def _read_profile(path: Path, where: str):
    import pandas as pd

    if not path.is_file():
        raise SpillError(f"{where}: time_structure_file: {path}: no such file (expected a "
                         "CSV file, its path relative to the model file)")
    df = pd.read_csv(path, comment="#")
    missing = [c for c in ("t_s", "intensity") if c not in df]
    if missing:
        raise SpillError(f"{path}: missing column(s) {', '.join(missing)} "
                         "(expected t_s, intensity)")
    t, y = df["t_s"].to_numpy(float), df["intensity"].to_numpy(float)
    if len(t) < 2 or not np.all(np.isfinite(t)) or not np.all(np.isfinite(y)):
        raise SpillError(f"{path}: need at least two finite rows of t_s, intensity")
    steps = np.diff(t)
    if not (steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-6, atol=0)):
        raise SpillError(f"{path}: column t_s must be a uniform, increasing grid")
    if np.any(y < 0) or not y.sum() > 0:
        raise SpillError(f"{path}: column intensity must be >= 0 and not all zero")
    return t, y


def _sensitivity_section(raw: dict, where: str) -> dict | None:
    """The ``[sensitivity]`` section, its ranges checked (lo <= value <= hi)."""
    section = raw.get("sensitivity")
    if section is None:
        return None
    for name, entry in section.items():
        if "range" not in entry:
            continue
        lo, hi = (float(v) for v in entry["range"])
        value = float(entry.get("value", lo))
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= value <= hi):
            raise SpillError(f"{where}: sensitivity.{name}.range: [{lo:g}, {hi:g}] "
                             f"(expected finite range[0] <= value <= range[1])")
    return section


def load_spill_model(path=None) -> SpillModel:
    """Read and check a spill-model file (default: the packaged NA62 one):
    first against ``backtrace/data/spill-1.schema.json`` (types, positive
    values and ranges, duty factor <= 1, required and unknown keys, no NaN),
    then finite values, range[0] <= value <= range[1] and a window shorter
    than the spill.
    Errors are one line naming the file and the key (:mod:`backtrace.schemas`)."""
    packaged = "spill_na62_dump_2021.toml"
    raw, source, base = read_data_toml(path, packaged, SpillError, "spill-model file")
    where = str(path) if path is not None else packaged
    check_against_schema(raw, SCHEMA, where, SpillError, hints=_HINTS)
    values, ranges, sources, estimated = {}, {}, {}, {}
    for name in PARAMETERS:
        entry = raw[name]
        value = float(entry["value"])
        lo, hi = (float(v) for v in entry.get("range", (value, value)))
        for key, v in (("value", value), ("range[0]", lo), ("range[1]", hi)):
            if not np.isfinite(v):
                raise SpillError(f"{where}: {name}.{key}: {v} is not finite "
                                 "(expected a finite number > 0)")
        if not lo <= value <= hi:
            raise SpillError(f"{where}: {name}.range: value {value:g} is outside "
                             f"[{lo:g}, {hi:g}] (expected range[0] <= value <= range[1])")
        values[name], ranges[name] = value, (lo, hi)
        sources[name], estimated[name] = entry["source"].strip(), bool(entry.get("estimated"))
    profile = profile_file = None
    if raw.get("time_structure_file"):
        profile_path = Path(raw["time_structure_file"])
        if not profile_path.is_absolute() and base is not None:
            profile_path = base / profile_path
        profile = _read_profile(profile_path, where)
        profile_file = str(profile_path)
    model = SpillModel(raw.get("name", source), values, ranges, sources, estimated,
                       str(path) if path else None, profile, profile_file,
                       _sensitivity_section(raw, where))
    if profile is None and not values["window_ns"] * 1e-9 <= model.effective_length_s:
        raise SpillError(f"{where}: window_ns: {values['window_ns']:g} ns is longer than "
                         f"the effective spill length {model.effective_length_s:g} s "
                         "(expected a window within the spill)")
    model.pairing_probability()
    return model
