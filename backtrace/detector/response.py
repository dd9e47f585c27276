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

**Muon identification** (``muon_id`` of the selection): a track is
identified as a muon with probability ε_MUV3 × [MUV3 hit] × [E/p <
``muon_id_ep_max``]: MUV3 association (a hit in the MUV3 tiles) and a small
LKr energy deposit. E is the kinetic energy the track leaves in the LKr
volume in the forward transport (ionisation and radiative losses, PUMAS
straggled mode), smeared with the LKr resolution σ_E/E = a/√E ⊕ b/E ⊕ c
(one normal per track, stream ``lkr``); p the momentum at STRAW1.
Electrons shower in the LKr (E/p ≈ 1) and never reach MUV3. A pion is
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

__all__ = ["VetoDetector", "Response", "active_volume", "crossing_runs"]


def active_volume(element) -> str:
    """Volume name of an element's active layer ('body': the element)."""
    layer = element.detector.get("active_layer", "body")
    return element.name if layer == "body" else f"{element.name}/{layer}"


@dataclass(frozen=True)
class VetoDetector:
    """One veto used by the selection: its active volume, inefficiency and
    where the number comes from."""

    name: str
    volume: str
    inefficiency: float
    estimated: bool
    source: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def crossing_runs(states: pd.DataFrame, volumes: dict) -> pd.DataFrame:
    """Runs of consecutive states of a history in one of ``volumes``
    ({volume name: value}): track_index, sample_index, volume, the run's z
    extent [m] (including the state that ends it), whether it starts at the
    history's first state."""
    s = states.sort_values(["track_index", "sample_index", "state_index"], kind="stable")
    inside = s["volume"].isin(list(volumes)).to_numpy()
    if not inside.any():
        return pd.DataFrame(columns=["track_index", "sample_index", "volume", "z_lo_m",
                                     "z_hi_m", "at_start"])
    track = s["track_index"].to_numpy()
    sample = s["sample_index"].to_numpy()
    volume = s["volume"].to_numpy(object)
    z = s["z_m"].to_numpy(float)
    first = np.r_[True, (track[1:] != track[:-1]) | (sample[1:] != sample[:-1])]
    starts = inside & (first | np.r_[True, volume[1:] != volume[:-1]])
    run = np.cumsum(starts) - 1
    rows = np.flatnonzero(inside)
    r = run[rows]
    # the state after a run (same history) ends it: its z bounds the crossing
    nxt = np.minimum(rows + 1, len(z) - 1)
    same = ~first[nxt] & (nxt != rows)
    z_end = np.where(same, z[nxt], z[rows])
    frame = pd.DataFrame({"run": r, "track_index": track[rows], "sample_index": sample[rows],
                          "volume": volume[rows], "z_lo": np.minimum(z[rows], z_end),
                          "z_hi": np.maximum(z[rows], z_end), "at_start": first[rows]})
    g = frame.groupby("run", sort=True)
    return pd.DataFrame({"track_index": g["track_index"].first(),
                         "sample_index": g["sample_index"].first(),
                         "volume": g["volume"].first(), "z_lo_m": g["z_lo"].min(),
                         "z_hi_m": g["z_hi"].max(),
                         "at_start": g["at_start"].first()}).reset_index(drop=True)


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

    @classmethod
    def from_geometry(cls, geometry, selection: dict, seed: int) -> "Response":
        vetoes = []
        for pattern in selection.get("vetoes", ()):
            found = [e for e in geometry.detectors("veto") if fnmatch.fnmatch(e.name, pattern)]
            if not found:
                from ..geometry import GeometryError

                known = ", ".join(e.name for e in geometry.detectors("veto"))
                raise GeometryError(f"selection.vetoes: no veto detector matches "
                                    f"{pattern!r} in the geometry (vetoes: {known})")
            for e in found:
                d = e.detector
                vetoes.append(VetoDetector(e.name, active_volume(e), float(d["inefficiency"]),
                                           bool(d.get("estimated", False)), d.get("source", "")))
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
                   seed=seed)

    # -- vetoes -------------------------------------------------------------
    @property
    def log_inefficiency(self) -> dict:
        """{active volume: log ε} of the used vetoes (−inf for ε = 0)."""
        with np.errstate(divide="ignore"):
            return {v.volume: float(np.log(v.inefficiency)) for v in self.vetoes}

    def product_log_survival(self, states: pd.DataFrame) -> pd.Series:
        """Σ log ε over the veto crossings of each forward-transported
        product (index: track_index = product key), first runs excluded."""
        if not self.vetoes or states is None or states.empty:
            return pd.Series(dtype=float)
        runs = crossing_runs(states, self.log_inefficiency)
        runs = runs[~runs["at_start"].astype(bool)]
        logs = runs["volume"].map(self.log_inefficiency).astype(float)
        return logs.groupby(runs["track_index"].to_numpy()).sum()

    def incoming_log_survival(self, states: pd.DataFrame, inter: pd.DataFrame) -> np.ndarray:
        """Σ log ε over the veto crossings of each interaction's incoming
        muon upstream of the interaction point (backward-traced states)."""
        out = np.zeros(len(inter))
        if not self.vetoes or not len(inter):
            return out
        runs = crossing_runs(states, self.log_inefficiency)
        if runs.empty:
            return out
        runs = runs.assign(log=runs["volume"].map(self.log_inefficiency).astype(float))
        m = inter[["track_index", "sample_index", "z_m"]].reset_index(drop=True) \
            .reset_index().merge(runs, on=["track_index", "sample_index"], how="inner")
        m = m[m["z_lo_m"] < m["z_m"]]
        per = m.groupby("index")["log"].sum()
        out[per.index.to_numpy()] = per.to_numpy()
        return out

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

    def smeared_energy(self, energy_gev, keys) -> np.ndarray:
        """LKr energy with the resolution a/√E ⊕ b/E ⊕ c (stream ``lkr``)."""
        from ..rng import normals, uniforms

        e = np.asarray(energy_gev, float)
        if not len(e):
            return e
        a, b, c = self.lkr_resolution
        u = uniforms(self.seed, np.asarray(keys, np.int64), 2, stream="lkr")
        e_pos = np.maximum(e, 1e-3)
        sigma = np.sqrt(a * a * e_pos + b * b + (c * e_pos) ** 2)
        return np.maximum(e + sigma * normals(u[:, 0], u[:, 1]), 0.0)

    def muon_id_probability(self, identity, muv3_hit, e_over_p, punch_through) -> np.ndarray:
        """P(identified as a muon) per track outcome (module docstring)."""
        identity = np.asarray(identity, dtype=object)
        hit = np.asarray(muv3_hit, bool) & (np.asarray(e_over_p, float) < self.muon_id_ep_max)
        as_muon = np.isin(identity, ["mu", "mu_from_pi"]).astype(float)
        pion = (identity == "pi") * np.asarray(punch_through, float)
        return self.muon_efficiency * hit * (as_muon + pion)

    def config(self) -> dict:
        """What outputs record about the detector response."""
        return {"vetoes": [v.as_dict() for v in self.vetoes],
                "veto_rule": "an in-time charged particle (incoming muon upstream of its "
                             "interaction, scattered muon, every product) crossing a used "
                             "veto's active layer vetoes the event; each crossing fails "
                             "with the detector's inefficiency (weight)",
                "muon_id": {"detector_volume": self.muon_volume,
                            "efficiency": self.muon_efficiency,
                            "e_over_p_max": self.muon_id_ep_max,
                            "lkr_volume": self.lkr_volume,
                            "lkr_resolution": list(self.lkr_resolution)}}
