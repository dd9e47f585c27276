"""The response of the active detectors: vetoes, muon identification, LKr E/p.

The detector is data: elements of the geometry file carry an
``[element.detector]`` table (role ``tracker``, ``veto``, ``calorimeter``,
``muon``, ``hodoscope`` and its parameters, each sourced or [est]); the
selection (regions file) names the vetoes it uses. :class:`Response` joins
the two for a run.

**Vetoes.** An event is vetoed when an in-time charged particle crosses the
active layer of a veto the selection uses: the incoming beam muon upstream
of its interaction, the scattered muon, every product — soft ones and those
outside the spectrometer included. A crossing of detector d fails to veto
with probability ``inefficiency_d`` (independent per crossing [est]); the
event's weight carries Π ε_d over every crossing of every particle, so the
vetoes cost no Monte Carlo precision. A crossing is a run of consecutive
recorded states of a history inside an active volume. A product that starts
inside an active volume (its interaction happened there) does not count that
first run: the incoming muon's crossing of the same detector already does.

Any active element with an ``inefficiency`` (a veto) or an ``efficiency``
(MUV3: inefficiency 1 − efficiency) can be a veto of the selection; the e+e−
selection vetoes in-time activity in MUV3, ANTI0 and the LAVs. Timing is not
simulated: every particle of an event is in time, so every crossing counts.
The vetoes named in the selection's ``eta_vetoes`` form the η of NA62's
factorised estimate (:mod:`backtrace.prompt.factorised`): their survival is kept
apart (``*_eta`` columns) so that the estimate before those vetoes is the
weight divided by it.

**Upstream activity** (``upstream_activity_detectors``): a charged particle
of the event (the incoming muon upstream of its interaction, every product,
the selected tracks included) crossing one of these active surfaces upstream
of the reconstructed vertex, within ``upstream_activity_radius_m`` of the
backward straight-line extrapolation of a selected track, rejects the event
(weight ε of the detector per such crossing,
:func:`backtrace.detector.candidates.upstream_activity_survival`). A
crossing of a detector that is also an in-time veto is already counted
there (one hit, one chance to be missed): the rule only adds the detectors
that are not in-time vetoes (:attr:`Response.upstream`).

**Electron identification** (``electron_id``): a track is identified as an
electron with probability [lower(p) < E/p < upper]
(:func:`backtrace.regions.electron_ep_window`, p the momentum at STRAW1) ×
P(no associated MUV3 hit): 1 − ε_MUV3 for a track crossing MUV3, 1 without;
when MUV3 is an in-time veto of the selection its hit is already in the veto
weight, and the factor is 1.

**Muon identification** (``muon_id`` of the selection): a track is
identified as a muon with probability ε_MUV3 × [MUV3 hit] × [E/p <
``muon_id_ep_max``]: MUV3 association (a hit in the MUV3 tiles) and a small
LKr energy deposit. E is the kinetic energy the track leaves in the LKr
volume in the forward transport (ionisation and radiative losses, PUMAS
straggled mode), smeared with the LKr resolution σ_E/E = a/√E ⊕ b/E ⊕ c
(one normal per track, stream ``lkr``); p the momentum at STRAW1.
An electron's E is its energy where it enters the LKr (it showers there,
:meth:`Response.lkr_entry_energy_gev`); it never reaches MUV3. A pion is
identified as a muon when it decays in flight before MUV3 (``mu_from_pi``)
or when it punches through without a nuclear interaction: probability
exp(−Σ X/λ_π) over the matter between the last STRAW chamber and MUV3
(LKr, MUV1, MUV2, iron wall: ~11 λ_π, ~2e-5), with a MIP-like deposit.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np
import pandas as pd

from backtrace.beamline.geometry import GeometryError
from backtrace.paths import crossing_runs, entry_points
from backtrace.regions import electron_ep_window
from backtrace.rng import normals, uniforms
from backtrace.tracks import momentum_gev

__all__ = ["VetoDetector", "Response", "active_volume",
           "veto_inefficiency"]


def active_volume(element) -> str:
    """Volume name of an element's active layer ('body': the element)."""
    layer = element.detector.get("active_layer", "body")
    return element.name if layer == "body" else f"{element.name}/{layer}"


def veto_inefficiency(element) -> float:
    """Probability that the detector misses a charged particle crossing its
    active layer: ``inefficiency``, else 1 − ``efficiency``."""
    d = element.detector
    if "inefficiency" in d:
        return float(d["inefficiency"])
    if "efficiency" in d:
        return 1.0 - float(d["efficiency"])

    raise GeometryError(f"{element.name}: its [element.detector] has neither "
                        "'inefficiency' nor 'efficiency': it cannot be a veto")


@dataclass(frozen=True)
class VetoDetector:
    """One veto used by the selection: its active volume, inefficiency and
    where the number comes from; ``eta``: part of the factorised estimate's
    η (selection ``eta_vetoes``)."""

    name: str
    volume: str
    inefficiency: float
    estimated: bool
    source: str
    eta: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _matching(geometry, patterns, what: str) -> list:
    """The active elements that can veto (an inefficiency or an efficiency)
    matching name patterns; GeometryError naming a pattern without one."""
    able = [e for e in geometry.detectors()
            if "inefficiency" in e.detector or "efficiency" in e.detector]
    found = []
    for pattern in patterns:
        hits = [e for e in able if fnmatch.fnmatch(e.name, pattern)]
        if not hits:
            known = ", ".join(e.name for e in able)
            raise GeometryError(f"selection.{what}: no veto detector matches "
                                f"{pattern!r} in the geometry (vetoes: {known})")
        found += [e for e in hits if e not in found]
    return found


def _veto(element, eta: bool = False) -> VetoDetector:
    d = element.detector
    return VetoDetector(element.name, active_volume(element), veto_inefficiency(element),
                        bool(d.get("estimated", False)), d.get("source", ""), eta)


@dataclass(frozen=True)
class Response:
    """The detector response of a run: the vetoes the selection uses, MUV3,
    the LKr (see the module docstring)."""

    vetoes: tuple[VetoDetector, ...]
    muon_volume: str | None
    muon_efficiency: float
    lkr_volume: str | None
    lkr_resolution: tuple[float, float, float]
    muon_id_ep_max: float
    seed: int
    #: upstream-activity surfaces that are not in-time vetoes (module docstring)
    upstream: tuple[VetoDetector, ...] = ()
    upstream_radius_m: float = 0.2
    #: the selection's upstream-activity surfaces as named there
    upstream_named: tuple[str, ...] = ()

    @classmethod
    def from_geometry(cls, geometry, selection: dict, seed: int) -> "Response":
        eta = {e.name for e in _matching(geometry, selection.get("eta_vetoes", ()),
                                         "eta_vetoes")}
        vetoes = [_veto(e, e.name in eta)
                  for e in _matching(geometry, selection.get("vetoes", ()), "vetoes")]
        in_time = {v.name for v in vetoes}
        upstream = [_veto(e) for e in _matching(
            geometry, selection.get("upstream_activity_detectors", ()),
            "upstream_activity_detectors") if e.name not in in_time]
        muon = geometry.detectors("muon")
        lkr = geometry.detectors("calorimeter")
        lkr = [e for e in lkr if "resolution_stochastic" in e.detector and e.name == "LKr"] \
            or [e for e in lkr if "resolution_stochastic" in e.detector]
        d = lkr[0].detector if lkr else {}
        return cls(vetoes=tuple(sorted(set(vetoes), key=lambda v: v.name)),
                   muon_volume=active_volume(muon[0]) if muon else None,
                   muon_efficiency=float(muon[0].detector["efficiency"]) if muon else 1.0,
                   lkr_volume=active_volume(lkr[0]) if lkr else None,
                   lkr_resolution=(float(d.get("resolution_stochastic", 0.0)),
                                   float(d.get("resolution_noise_gev", 0.0)),
                                   float(d.get("resolution_constant", 0.0))),
                   muon_id_ep_max=float(selection.get("muon_id_ep_max", np.inf)),
                   seed=seed, upstream=tuple(sorted(upstream, key=lambda v: v.name)),
                   upstream_radius_m=float(selection.get("upstream_activity_radius_m", 0.2)),
                   upstream_named=tuple(selection.get("upstream_activity_detectors", ())))

    # -- vetoes -------------------------------------------------------------
    @property
    def log_inefficiency(self) -> dict:
        """{active volume: log ε} of the used vetoes (−inf for ε = 0)."""
        with np.errstate(divide="ignore"):
            return {v.volume: float(np.log(v.inefficiency)) for v in self.vetoes}

    @property
    def eta_volumes(self) -> set:
        """Active volumes of the vetoes of the factorised estimate's η."""
        return {v.volume for v in self.vetoes if v.eta}

    def _logs(self, runs: pd.DataFrame) -> pd.DataFrame:
        """Runs with their log ε (``log``) and the η share of it (``log_eta``)."""
        log = runs["volume"].map(self.log_inefficiency).astype(float)
        return runs.assign(log=log, log_eta=log.where(runs["volume"].isin(self.eta_volumes),
                                                      0.0))

    def product_log_survival(self, states: pd.DataFrame, eta: bool = False) -> pd.Series:
        """Σ log ε over the veto crossings of each forward-transported
        product (index: track_index = product key), first runs excluded;
        ``eta``: over the vetoes of the factorised η only."""
        return self.product_log_survivals(states)["log_eta" if eta else "log"]

    def product_log_survivals(self, states: pd.DataFrame) -> pd.DataFrame:
        """Per product (index: product key) Σ log ε over all used vetoes
        (``log``) and over the η vetoes (``log_eta``), first runs excluded."""
        if not self.vetoes or states is None or states.empty:
            return pd.DataFrame({"log": pd.Series(dtype=float),
                                 "log_eta": pd.Series(dtype=float)})
        runs = crossing_runs(states, self.log_inefficiency)
        runs = self._logs(runs[~runs["at_start"].astype(bool)])
        return runs[["log", "log_eta"]].groupby(runs["track_index"].to_numpy()).sum()

    def incoming_log_survival(self, states: pd.DataFrame, inter: pd.DataFrame,
                              eta: bool = False) -> np.ndarray:
        """Σ log ε over the veto crossings of each interaction's incoming
        muon upstream of the interaction point (backward-traced states);
        ``eta``: over the vetoes of the factorised η only."""
        out = np.zeros(len(inter))
        if not self.vetoes or not len(inter):
            return out
        runs = crossing_runs(states, self.log_inefficiency)
        if runs.empty:
            return out
        m = inter[["track_index", "sample_index", "z_m"]].reset_index(drop=True) \
            .reset_index().merge(self._logs(runs), on=["track_index", "sample_index"],
                                 how="inner")
        m = m[m["z_lo_m"] < m["z_m"]]
        per = m.groupby("index")["log_eta" if eta else "log"].sum()
        out[per.index.to_numpy()] = per.to_numpy()
        return out

    def with_incoming_vetoes(self, states: pd.DataFrame, inter: pd.DataFrame) -> pd.DataFrame:
        """The interactions with their weight times the survival of the
        incoming muon's veto crossings upstream of the interaction point; the
        η share of it in ``incoming_log_survival_eta`` (when the selection has
        η vetoes) and the muon's entry points into the upstream-activity
        surfaces (``upstream_<detector>_x_m``, ``_y_m``, ``_z_m``; NaN: not
        crossed upstream of the interaction)."""
        return self.incoming_columns(states, inter.assign(
            weight=inter["weight"].to_numpy()
            * np.exp(self.incoming_log_survival(states, inter))))

    def incoming_columns(self, states: pd.DataFrame, inter: pd.DataFrame) -> pd.DataFrame:
        """The interactions with the columns :meth:`with_incoming_vetoes` adds
        besides the weight (the forced sampler puts the survival in the
        weight itself)."""
        out = inter.copy()
        if any(v.eta for v in self.vetoes):
            out["incoming_log_survival_eta"] = self.incoming_log_survival(states, inter,
                                                                          eta=True)
        for v in self.upstream:
            out = out.assign(**self._incoming_entry(states, inter, v))
        return out

    def _incoming_entry(self, states, inter, detector) -> dict:
        """Entry point of each interaction's incoming muon into a surface,
        the last one upstream of the interaction (NaN: none)."""
        cols = {f"upstream_{detector.name}_{c}": np.full(len(inter), np.nan)
                for c in ("x_m", "y_m", "z_m")}
        pts = entry_points(states, [detector.volume])
        if pts.empty or not len(inter):
            return cols
        m = inter[["track_index", "sample_index", "z_m"]].reset_index(drop=True) \
            .reset_index().merge(pts, on=["track_index", "sample_index"], how="inner",
                                 suffixes=("", "_hit"))
        m = m[m["z_m_hit"] < m["z_m"]].sort_values(["index", "z_m_hit"]) \
            .drop_duplicates("index", keep="last")
        rows = m["index"].to_numpy()
        for c in ("x_m", "y_m", "z_m"):
            src = "z_m_hit" if c == "z_m" else c
            cols[f"upstream_{detector.name}_{c}"][rows] = m[src].to_numpy(float)
        return cols

    def product_entries(self, states: pd.DataFrame, keys) -> dict:
        """Per product (order of ``keys``) its first entry into each
        upstream-activity surface after its start (columns
        ``upstream_<detector>_x_m``, ``_y_m``, ``_z_m``; NaN: none)."""
        k = pd.Index(keys)
        cols = {}
        for v in self.upstream:
            pts = entry_points(states, [v.volume]) if states is not None and len(states) \
                else pd.DataFrame(columns=["track_index", "x_m", "y_m", "z_m", "at_start"])
            pts = pts[~pts["at_start"].astype(bool)].drop_duplicates("track_index") \
                .set_index("track_index")
            for c in ("x_m", "y_m", "z_m"):
                cols[f"upstream_{v.name}_{c}"] = pts[c].reindex(k).to_numpy(float)
        return cols

    # -- identification -------------------------------------------------------
    def lkr_energy_gev(self, states: pd.DataFrame) -> pd.Series:
        """Kinetic energy each product leaves in the LKr volume [GeV]
        (index: product key)."""
        if self.lkr_volume is None or states is None or states.empty:
            return pd.Series(dtype=float)
        s = states.sort_values(["track_index", "state_index"], kind="stable")
        in_lkr = (s["volume"] == self.lkr_volume).to_numpy()
        k = s["kinetic_energy_gev"].to_numpy()
        track = s["track_index"].to_numpy()
        nxt = np.minimum(np.arange(len(s)) + 1, len(s) - 1)
        same = track[nxt] == track
        loss = np.where(in_lkr & same, k - k[nxt], 0.0)
        return pd.Series(np.maximum(loss, 0.0)).groupby(track).sum()

    def lkr_entry_energy_gev(self, states: pd.DataFrame) -> pd.Series:
        """Energy [GeV] of each product where it enters the LKr volume (the
        first recorded state inside it; index: product key): what an
        electron's shower deposits."""
        if self.lkr_volume is None or states is None or states.empty:
            return pd.Series(dtype=float)
        s = states[states["volume"] == self.lkr_volume].sort_values(
            ["track_index", "state_index"], kind="stable").drop_duplicates("track_index")
        return pd.Series(momentum_gev(s["kinetic_energy_gev"].to_numpy(float)),
                         index=s["track_index"].to_numpy())

    def smeared_energy(self, energy_gev, keys) -> np.ndarray:
        """LKr energy with the resolution a/√E ⊕ b/E ⊕ c (stream ``lkr``)."""
        e = np.asarray(energy_gev, float)
        if not len(e):
            return e
        a, b, c = self.lkr_resolution
        u = uniforms(self.seed, np.asarray(keys, np.int64), 2, stream="lkr")
        e_pos = np.maximum(e, 1e-3)
        sigma = np.sqrt(a * a * e_pos + b * b + (c * e_pos) ** 2)
        return np.maximum(e + sigma * normals(u[:, 0], u[:, 1]), 0.0)

    @property
    def muv3_is_veto(self) -> bool:
        return self.muon_volume is not None and \
            any(v.volume == self.muon_volume for v in self.vetoes)

    def electron_id_probability(self, muv3_hit, e_over_p, p_gev, selection: dict
                                ) -> np.ndarray:
        """P(identified as an electron) per track (module docstring)."""
        ep = np.asarray(e_over_p, float)
        lower, upper = electron_ep_window(p_gev, selection)
        in_window = (ep > lower) & (ep < upper)
        hit = np.asarray(muv3_hit, bool)
        no_muv3 = 1.0 if self.muv3_is_veto else 1.0 - self.muon_efficiency * hit
        return in_window * no_muv3

    def muon_id_probability(self, identity, muv3_hit, e_over_p, punch_through) -> np.ndarray:
        """P(identified as a muon) per track outcome (module docstring)."""
        identity = np.asarray(identity, dtype=object)
        hit = np.asarray(muv3_hit, bool) & (np.asarray(e_over_p, float) < self.muon_id_ep_max)
        as_muon = np.isin(identity, ["mu", "mu_from_pi"]).astype(float)
        pion = (identity == "pi") * np.asarray(punch_through, float)
        return self.muon_efficiency * hit * (as_muon + pion)

    def config(self) -> dict:
        """What outputs record about the detector response."""
        out = {"vetoes": [v.as_dict() for v in self.vetoes],
                "veto_rule": "an in-time charged particle (incoming muon upstream of its "
                             "interaction, scattered muon, every product) crossing a used "
                             "veto's active layer vetoes the event; each crossing fails "
                             "with the detector's inefficiency (weight)",
                "muon_id": {"detector_volume": self.muon_volume,
                            "efficiency": self.muon_efficiency,
                            "e_over_p_max": self.muon_id_ep_max,
                            "lkr_volume": self.lkr_volume,
                            "lkr_resolution": list(self.lkr_resolution)}}
        if self.upstream_named:
            out["upstream_activity"] = {
                "detectors": list(self.upstream_named), "radius_m": self.upstream_radius_m,
                "added_detectors": [v.as_dict() for v in self.upstream],
                "rule": "a charged particle crossing one of these surfaces upstream of the "
                        "vertex within radius_m of a selected track's backward "
                        "extrapolation rejects the event; surfaces that are also in-time "
                        "vetoes are counted there once (added_detectors: the others)"}
        return out
