"""Forward transport of interaction products to the detector.

Every product of a forced interaction is transported forward with PUMAS
from the interaction point through material and fields, with states
recorded at every boundary; the detector-level quantities are read at the
STRAW chambers (the entry face of each ``role = "detector"`` element named
STRAW*) and at MUV3 (a hit when the particle enters MUV3's body, not its
beam hole).

- **Muons** (scattered muon, μ± from pairs or γ → μμ): PUMAS muon
  transport.
- **Charged pions**: transported as PUMAS tracks of the same momentum
  (ionisation and magnetic bending of a β ≈ 1 particle do not depend on its
  mass; radiative losses are negligible below TeV), with
  - an absorption weight exp(−Σ ΔX_i / λ_π,i) over the materials crossed
    (λ_π = λ_I / 0.77, :func:`backtrace.source.hadroproduction.absorption_length_g_cm2`
    with λ_I from ``materials/properties.toml``: PDG for iron and copper,
    else the PDG rule of thumb λ_I ≈ 35 A^(1/3) g/cm²), and
  - a decay split: with probability P_dec = 1 − exp(−L/βγcτ) over the flight
    length L to STRAW1 the pion has become a muon (identity ``mu_from_pi``;
    its kink is neglected, the muon keeps the pion's track), otherwise it is
    a pion; pions never reach MUV3 (absorbed in LKr/MUV1/MUV2/iron wall).
- **Electrons/positrons** (:mod:`.electrons`): transported like muons of
  the same momentum in two stages. To STRAW1, with a bremsstrahlung loss
  drawn from the Bethe–Heitler distribution of the radiation lengths they
  crossed (the momentum falls where the matter is; an electron below
  :data:`backtrace.interactions.electrons.STOP_P_GEV` is ``absorbed`` there
  and its later states are dropped); then from STRAW1 with the momentum left,
  so that the spectrometer magnet bends what reaches it; there a second
  Bethe–Heitler draw only decides where they stop (in the LKr's 27 X0, the
  iron of MUV1, a lead-glass ring: nothing of them goes further).
  Their LKr energy is their energy where they enter the LKr (a full shower,
  27 X0; 0 if they miss it), smeared with the LKr resolution; they never
  reach MUV3.

Two stages: every product is first transported to STRAW1 (just inside its
entry face); a selection can then say which interactions may still give a
selected pair (:func:`backtrace.detector.candidates.kinematic_precheck`:
opposite charges, momenta, vertex and CDA all measured at STRAW1), and only
their products continue to the end of the detector (the spectrometer
magnet, the other chambers, the LKr, MUV3: ~85 % of a product's cost).
The products of the others stop at STRAW1: they cannot make a selected pair,
so none of them is a reconstructed track and they add no pre-selection pair.

Random numbers: each product is transported with its own key
(:func:`backtrace.rng.product_key`: track, sample, forced-interaction index,
rank in the final state) and the seed ``seed + PRODUCT_SEED_OFFSET``; the
first stage uses the key's sample 0, the second its sample 1 (independent
streams).
The electrons' second stage uses the seed ``seed + PRODUCT_STAGE2_SEED_OFFSET``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from backtrace.beamline.materials import properties
from backtrace.interactions.decay import decay_length_m
from backtrace.interactions.electrons import (
    ELECTRON_NAMES,
    STOP_P_GEV,
    bethe_heitler_log_loss,
    momentum_profile,
    radiation_lengths,
)
from backtrace.rng import PRODUCT_SEED_OFFSET, PRODUCT_STAGE2_SEED_OFFSET, uniforms
from backtrace.rng import product_key as pack_key
from backtrace.source.hadroproduction import absorption_length_g_cm2
from backtrace.tracks import kinetic_energy_gev, momentum_gev
from backtrace.transport import BatchResult, TraceConfig, Tracer

__all__ = ["ProductTransport", "product_key", "pion_absorption_length_kg_m2",
           "TRANSPORT_P_MIN_GEV", "TRACK_P_MIN_GEV"]

#: No product below this momentum [GeV/c] can cross three STRAW chambers
#: (the MNP33 kick of 0.27 GeV/c bends it by > 0.5 rad, out of the 1 m
#: chambers 7.5 m downstream), so none is a track: measured in
#: ``tests/interactions/test_products.py``.
TRACK_P_MIN_GEV = 0.5
#: Products below this momentum [GeV/c] are not transported [est]: a softer
#: lepton of a pair still follows the muon and could fire a veto, but its
#: share is negligible (a 10 MeV electron stops in a few mm of lead glass).
TRANSPORT_P_MIN_GEV = 0.01
#: PUMAS stepping accuracy of the product transport [est: 0.03, range
#: 0.01–0.05]. Steps in magnetised volumes scale as 1/accuracy, and the
#: MNP33 aperture dominated the cost of a product at the default 0.01 (0.35
#: of 0.8 ms per 30 GeV muon from z = 150 m to MUV3). Measured for 3000
#: such muons: 0.03 is 2.1× faster and gives the same mean x at STRAW4
#: (0.10286 m, spread 0.0285 m) and mean energy at MUV3 (25.711 vs 25.714
#: GeV); 0.1 shifts that energy by −0.03 GeV. The backward traces keep 0.01.
PRODUCT_ACCURACY = 0.03


def pion_absorption_length_kg_m2(material: str) -> float:
    """Pion absorption length [kg/m²] (λ_I / 0.77)."""
    return absorption_length_g_cm2(material, "pion") * 10.0  # g/cm^2 -> kg/m^2


def product_key(hist, particle) -> np.ndarray:
    """Batch-independent random key of products (:func:`backtrace.rng.product_key`)
    from their interactions' rows ``hist`` (track_index, sample_index, repeat)."""
    repeat = hist["repeat"].to_numpy(np.int64) if "repeat" in hist else 0
    return pack_key(hist["track_index"].to_numpy(np.int64),
                    hist["sample_index"].to_numpy(np.int64), repeat, particle)


def _continued(histories: pd.DataFrame, keys) -> pd.DataFrame:
    """Second-stage input: the first stage's final states of ``keys``."""
    h = histories.set_index("track_index").loc[np.asarray(keys)]
    p = momentum_gev(h["kinetic_energy_gev"].to_numpy(float))
    return pd.DataFrame({"track_index": h.index.to_numpy(np.int64),
                         "x_m": h["x_m"].to_numpy(), "y_m": h["y_m"].to_numpy(),
                         "z_m": h["z_m"].to_numpy(),
                         "px_gev": p * h["ux"].to_numpy(), "py_gev": p * h["uy"].to_numpy(),
                         "pz_gev": p * h["uz"].to_numpy(),
                         "charge": h["charge"].to_numpy()})


def _joined_states(first: pd.DataFrame, second: pd.DataFrame,
                   first_histories: pd.DataFrame) -> pd.DataFrame:
    """The two stages' recorded states as one path per product (its rows in
    path order, the products not contiguous): the second
    stage's state indices, distances and grammages continue the first's,
    its start state replacing the first stage's end state (same place; the
    end state lies outside the first stage's world)."""
    if second is None or second.empty:
        return first
    end = first_histories.set_index("track_index")
    last = first.groupby("track_index")["state_index"].max()
    track = first["track_index"].to_numpy()
    # the first stage's end state (outside its world) gives way to the
    # second stage's start state at the same place, which takes its index
    is_end = (first["state_index"].to_numpy() == last.reindex(track).to_numpy()) \
        & np.isin(track, second["track_index"].to_numpy())
    first = first[~is_end]
    second = second.assign(
        sample_index=0,
        state_index=lambda d: d["state_index"] + last.reindex(d["track_index"]).to_numpy(),
        distance_m=lambda d: d["distance_m"]
        + end["distance_m"].reindex(d["track_index"]).to_numpy(),
        grammage_kg_m2=lambda d: d["grammage_kg_m2"]
        + end["grammage_kg_m2"].reindex(d["track_index"]).to_numpy())
    # each product's rows stay in path order (first stage, then second):
    # the consumers group by product and keep the order within a group
    return pd.concat([first, second], ignore_index=True)


def _no_states() -> pd.DataFrame:
    """An empty table of recorded states (the columns consumers read)."""
    cols = {"track_index": np.int64, "sample_index": np.int32, "state_index": np.int32,
            "event": object, "volume": object, "material": object}
    cols.update(dict.fromkeys(("x_m", "y_m", "z_m", "ux", "uy", "uz", "kinetic_energy_gev",
                               "charge", "weight", "distance_m", "grammage_kg_m2"), float))
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})


def _concat_states(frames) -> pd.DataFrame | None:
    """The recorded states of several transports as one frame (None: none)."""
    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def _absorption_lengths(materials: pd.Index) -> np.ndarray:
    """λ_π [kg/m²] of each entry of ``materials`` (one lookup per distinct
    material)."""
    table = {m: pion_absorption_length_kg_m2(m) for m in materials.unique()}
    return np.asarray(materials.map(table), float)


def _bremsstrahlung(states: pd.DataFrame, u: pd.Series):
    """Bethe–Heitler loss of electron histories (:mod:`.electrons`) from one
    uniform per history (``u`` by product key): the states up to the one
    where each stops, the z [m] where those that stop do (by key), and the
    momentum fraction kept at each remaining state."""
    s = states.sort_values(["track_index", "state_index"], kind="stable").reset_index(drop=True)
    t_cum = radiation_lengths(s, lambda m: properties(m).radiation_length_kg_m2)
    track = s["track_index"].to_numpy()
    t_tot = t_cum.groupby(track).max()
    loss = pd.Series(bethe_heitler_log_loss(t_tot.to_numpy(),
                                            u.reindex(t_tot.index).to_numpy()),
                     index=t_tot.index)
    share = momentum_profile(t_cum, s["track_index"], loss)
    stopped = np.asarray(momentum_gev(s["kinetic_energy_gev"].to_numpy()) * share
                         < STOP_P_GEV)
    gone = pd.Series(stopped).groupby(track).cummax().to_numpy()
    keep = ~(np.r_[False, gone[:-1]] & np.r_[False, track[1:] == track[:-1]])
    stop_z = s.loc[stopped, ["track_index", "z_m"]].drop_duplicates("track_index")
    return s[keep].copy(), stop_z.set_index("track_index")["z_m"], share[keep]


def _product_tracks(products: pd.DataFrame, key: np.ndarray) -> pd.DataFrame:
    """Transport input of the products: their start states, keyed by product."""
    return pd.DataFrame({
        "track_index": key, "x_m": products["x_m"].to_numpy(),
        "y_m": products["y_m"].to_numpy(), "z_m": products["z_m"].to_numpy(),
        "px_gev": products["px_gev"].to_numpy(), "py_gev": products["py_gev"].to_numpy(),
        "pz_gev": products["pz_gev"].to_numpy(), "charge": products["charge"].to_numpy(),
    })


@dataclass
class _FirstStage:
    """The first transports of a batch of products (module docstring):
    muons and pions (``muons``, a :class:`backtrace.transport.BatchResult`)
    and electrons (``electrons``: states, status per key, end states) created
    upstream of STRAW1 go to it (their keys: ``upstream_keys``); those
    created downstream of it go to the end in one stage (``muons_direct``,
    ``electrons_direct``; None when there are none)."""

    upstream_keys: np.ndarray
    muons: BatchResult
    electrons: tuple
    muons_direct: BatchResult | None
    electrons_direct: tuple | None

    def statuses(self) -> pd.Series:
        """Status of every transported product, by key."""
        statuses = [self.muons.histories.set_index("track_index")["status"], self.electrons[1]]
        statuses += [self.muons_direct.histories.set_index("track_index")["status"]] \
            if self.muons_direct else []
        statuses += [self.electrons_direct[1]] if self.electrons_direct else []
        return pd.concat(statuses)

    def downstream_states(self) -> list:
        """The states of the products created downstream of STRAW1."""
        return [*(x.states for x in [self.muons_direct] if x),
                *(x[0] for x in [self.electrons_direct] if x)]


class ProductTransport:
    """Forward PUMAS transport of products with detector read-out."""

    def __init__(self, beamline, seed: int = 1, response=None):
        #: the detector response (vetoes, LKr, MUV3; None: tracking only)
        self.response = response
        self.geometry = beamline.geometry
        self.planes = beamline.detector_planes
        if "STRAW1" not in self.planes:
            raise ValueError("the geometry has no STRAW1 detector element")
        self.seed = seed
        straw1 = beamline.geometry.element("STRAW1")
        #: the first stage ends just inside STRAW1 (its entry face is recorded)
        self.stage1_z_m = min(straw1.z_min_m + 1e-4, 0.5 * (straw1.z_min_m + straw1.z_max_m))

        def tracer(to_z_m, offset=PRODUCT_SEED_OFFSET):
            return Tracer(TraceConfig(geometry_file=beamline.geometry_file,
                                      overrides=beamline.overrides, direction="forward",
                                      to_z_m=to_z_m, seed=seed + offset, record=True,
                                      accuracy=PRODUCT_ACCURACY), beamline)
        self.tracer = tracer(beamline.end_z_m)
        self.tracer_stage1 = tracer(self.stage1_z_m)
        # electrons go on from STRAW1 with an independent stream
        self.electron_stage2 = tracer(beamline.end_z_m, PRODUCT_STAGE2_SEED_OFFSET)

    def transport(self, products: pd.DataFrame, interactions: pd.DataFrame,
                  precheck=None) -> pd.DataFrame:
        """One row per product outcome with the detector read-out:
        columns interaction, particle, identity, charge, weight_factor,
        status, x/y/px/py/pz at each STRAW, muv3_hit.

        ``precheck(readout)``: given the STRAW1 read-out of every product
        (:meth:`_readout` columns, with interaction, particle, charge), the
        interactions whose products continue past STRAW1 (module
        docstring); None: all."""
        if products.empty:
            return pd.DataFrame()
        hist = interactions.set_index("interaction").loc[products["interaction"]]
        key = product_key(hist, products["particle"])
        p = np.linalg.norm(products[["px_gev", "py_gev", "pz_gev"]].to_numpy(), axis=1)
        forward = products["pz_gev"].to_numpy() > 0
        tracks = _product_tracks(products, key)[forward]
        stage = self._first_stage(
            tracks, np.isin(products["name"].to_numpy()[forward], ELECTRON_NAMES))
        out = products[["interaction", "particle", "name", "charge"]].copy()
        out["p_gev"] = p
        out["status"] = "backward_going"
        out.loc[forward, "status"] = stage.statuses().reindex(key[forward]).to_numpy()
        states = _concat_states([stage.muons.states, stage.electrons[0]])
        go_on = self._going_on(out, states, key, stage.upstream_keys, precheck)
        states = self._second_stage(out, states, key, go_on, stage)
        states = _concat_states([states, *stage.downstream_states()])
        if states is None:              # nothing was transported (all backward)
            states = _no_states()
        return self._detector_readout(out, states, key, p)

    def _first_stage(self, tracks: pd.DataFrame, electron: np.ndarray) -> _FirstStage:
        """Products created upstream of the first stage's end to STRAW1;
        those created downstream of it in one stage to the end."""
        late = tracks["z_m"].to_numpy() >= self.stage1_z_m
        muons = self.tracer_stage1.trace(tracks[~late & ~electron])
        electrons = self._electrons_first(tracks[~late & electron])
        muons_direct = self.tracer.trace(tracks[late & ~electron]) \
            if (late & ~electron).any() else None
        electrons_direct = self._electrons_second(tracks[late & electron], None) \
            if (late & electron).any() else None
        return _FirstStage(tracks["track_index"].to_numpy()[~late], muons, electrons,
                           muons_direct, electrons_direct)

    def _going_on(self, out: pd.DataFrame, states: pd.DataFrame | None, key: np.ndarray,
                  upstream_keys: np.ndarray, precheck) -> np.ndarray:
        """Which products continue past STRAW1: created upstream of it,
        reached it, and (with ``precheck``) of an interaction that may still
        give a selected pair."""
        go_on = np.isin(key, upstream_keys) & (out["status"].to_numpy() == "reached_target")
        if precheck is not None:
            at_straw1 = pd.concat([out[["interaction", "particle", "charge"]]
                                   .reset_index(drop=True),
                                   self._readout(states, key, ("STRAW1",))], axis=1)
            go_on &= out["interaction"].isin(precheck(at_straw1)).to_numpy()
        return go_on

    def _second_stage(self, out: pd.DataFrame, states: pd.DataFrame | None, key: np.ndarray,
                      go_on: np.ndarray, stage: _FirstStage) -> pd.DataFrame | None:
        """Transport the products that go on from STRAW1 to the end of the
        detector: their status is set in ``out``; returns the states with
        their paths continued."""
        is_el = np.isin(out["name"].to_numpy(), ELECTRON_NAMES)
        mu_on, el_on = key[go_on & ~is_el], key[go_on & is_el]
        if len(mu_on):
            first = stage.muons
            second = self.tracer.trace(_continued(first.histories, mu_on),
                                       first_sample=1, n_samples=1)
            states = _joined_states(states, second.states, first.histories)
            status = second.histories.set_index("track_index")["status"]
            out.loc[go_on & ~is_el, "status"] = status.reindex(mu_on).to_numpy()
        if len(el_on):
            e_first = stage.electrons
            start = e_first[2][e_first[2]["track_index"].isin(el_on)]
            e_states, e_status = self._electrons_second(start, e_first)
            states = _concat_states([states[~(states["track_index"].isin(el_on)
                                              & (states["event"] == "end"))], e_states])
            out.loc[go_on & is_el, "status"] = e_status.reindex(el_on).to_numpy()
        return states

    def _detector_readout(self, out: pd.DataFrame, states: pd.DataFrame, key: np.ndarray,
                          p: np.ndarray) -> pd.DataFrame:
        """``out`` with the STRAW/MUV3 read-out, the detector response (if
        any) and the identities and their weights."""
        readout = self._readout(states, key)
        out = pd.concat([out.reset_index(drop=True), readout.reset_index(drop=True)], axis=1)
        if self.response is not None:
            out = self._response(out, states, key)
        return self._identities(out, states, key, p)

    def _electrons_first(self, tracks: pd.DataFrame):
        """First stage of the electrons (module docstring): to STRAW1 with
        the Bethe–Heitler loss of the radiation lengths crossed. Returns
        (states, status per key, the stage's end states with the momentum
        left, as second-stage input)."""
        if not len(tracks):
            return None, pd.Series(dtype=object), _continued(
                pd.DataFrame(columns=["track_index", "x_m", "y_m", "z_m", "ux", "uy", "uz",
                                      "kinetic_energy_gev", "charge"]), [])
        first = self.tracer_stage1.trace(tracks)
        u = self._brems_uniforms(tracks["track_index"].to_numpy(np.int64))
        s1, stopped, keep_share = _bremsstrahlung(first.states, u[0])
        s1["kinetic_energy_gev"] = kinetic_energy_gev(
            momentum_gev(s1["kinetic_energy_gev"].to_numpy()) * keep_share)
        status = first.histories.set_index("track_index")["status"].copy()
        status.loc[stopped.index] = "absorbed"
        end = first.histories.set_index("track_index").loc[status.index].reset_index()
        # the momentum left at STRAW1: the last state's, with the loss
        end["kinetic_energy_gev"] = s1.groupby("track_index")["kinetic_energy_gev"].last() \
            .reindex(end["track_index"]).to_numpy()
        return s1.assign(event=s1["event"].astype(object)), status, _continued(
            end, end["track_index"])

    def _electrons_second(self, start: pd.DataFrame, first):
        """Second stage of electrons from ``start`` (their first-stage end,
        or their creation point downstream of STRAW1 when ``first`` is
        None): the loss there only decides where they stop (in a
        calorimeter, or a lead-glass ring); the momenta stay, the photons
        emitted after the magnet joining its LKr cluster. Returns (states,
        status per key), the states continuing the first stage's."""
        keys = start["track_index"].to_numpy(np.int64)
        second = self.electron_stage2.trace(start)
        u = self._brems_uniforms(keys)
        s2, stop_z, _ = _bremsstrahlung(second.states, u[1])
        status = second.histories.set_index("track_index")["status"].copy()
        z_last = max(z for n, z in self.planes.items() if n != "MUV3")
        status.loc[stop_z.index[stop_z.to_numpy() < z_last]] = "absorbed"
        if first is not None:
            s1 = first[0]
            last = s1[s1["event"] != "end"].groupby("track_index")[
                ["state_index", "grammage_kg_m2", "distance_m"]].max()
            offset = last.reindex(s2["track_index"].to_numpy())
            s2["state_index"] = s2["state_index"].to_numpy() \
                + offset["state_index"].to_numpy() + 1
            for col in ("grammage_kg_m2", "distance_m"):
                s2[col] = s2[col].to_numpy() + offset[col].to_numpy()
        return s2.assign(event=s2["event"].astype(object)), status

    def _brems_uniforms(self, keys) -> pd.DataFrame:
        """Two uniforms per electron (stream ``brems``): its losses upstream
        and downstream of STRAW1."""
        return pd.DataFrame(uniforms(self.seed, np.asarray(keys, np.int64), 2,
                                     stream="brems"), index=np.asarray(keys, np.int64))

    def _response(self, out, states, key):
        """Veto survival (Σ log ε of the product's crossings), LKr energy and
        E/p of every product (:mod:`backtrace.detector.response`)."""
        r = self.response
        k = pd.Index(key)
        logs = r.product_log_survivals(states).reindex(k).fillna(0.0)
        log_s = logs["log"].to_numpy()
        e_lkr = r.lkr_energy_gev(states).reindex(k).fillna(0.0).to_numpy()
        electron = np.isin(out["name"].to_numpy(), ELECTRON_NAMES)
        if electron.any():
            # an electron showers in the LKr: its energy where it enters
            entry = r.lkr_entry_energy_gev(states).reindex(k).fillna(0.0).to_numpy()
            e_lkr = np.where(electron, entry, e_lkr)
        e_meas = r.smeared_energy(e_lkr, key)
        p_ref = np.where(np.isfinite(out["STRAW1_pz_gev"]),
                         np.sqrt(out["STRAW1_px_gev"] ** 2 + out["STRAW1_py_gev"] ** 2
                                 + out["STRAW1_pz_gev"] ** 2), out["p_gev"])
        with np.errstate(divide="ignore", invalid="ignore"):
            ep = np.where(p_ref > 0, e_meas / p_ref, np.inf)
        out = out.assign(veto_log_survival=log_s, lkr_energy_gev=e_meas, e_over_p=ep)
        if r.eta_volumes:
            out["veto_log_survival_eta"] = logs["log_eta"].to_numpy()
        return out.assign(**r.product_entries(states, key))

    def _readout(self, states, key, planes=None):
        """Position and momentum at each STRAW plane crossed (NaN if not)
        and the MUV3 hit, per product key (``planes``: a subset)."""
        cols = {}
        idx = pd.Index(key)
        for name, z in self.planes.items():
            if planes is not None and name not in planes:
                continue
            at = states[(np.abs(states["z_m"] - z) < 1e-5) & (states["event"] == "boundary")]
            at = at.drop_duplicates("track_index").set_index("track_index")
            if name == "MUV3":
                hit = at["volume"] == "MUV3"
                cols["muv3_hit"] = hit.reindex(idx).fillna(False).to_numpy(bool)
                continue
            for c, src in (("x_m", "x_m"), ("y_m", "y_m")):
                cols[f"{name}_{c}"] = at[src].reindex(idx).to_numpy()
            pmag = momentum_gev(at["kinetic_energy_gev"])
            for c, u in (("px_gev", "ux"), ("py_gev", "uy"), ("pz_gev", "uz")):
                cols[f"{name}_{c}"] = (pmag * at[u]).reindex(idx).to_numpy()
        return pd.DataFrame(cols)

    @staticmethod
    def _optical_depth(states, z_from, z_to) -> pd.Series:
        """Σ X/λ_π per product over the segments ending in (z_from, z_to]."""
        if states is None or states.empty:
            return pd.Series(dtype=float)
        dx = states.groupby("track_index")["grammage_kg_m2"].diff().fillna(0.0)
        z = states["z_m"]
        dx = dx.where((z > z_from + 1e-6) & (z <= z_to + 1e-6), 0.0)
        prev_material = states.groupby("track_index")["material"].shift(1).fillna(
            states["material"])
        by = dx.groupby([states["track_index"], prev_material]).sum()
        return (by / _absorption_lengths(by.index.get_level_values(1))).groupby(level=0).sum()

    def _identities(self, out, states, key, p):
        """Absorption / decay weights and identities per species. Absorption
        counts the matter crossed upstream of the last STRAW chamber (a track
        must reach it); the calorimeters behind do not matter for tracking."""
        z_last = max(z for n, z in self.planes.items() if n != "MUV3")
        dx = states.groupby("track_index")["grammage_kg_m2"].diff().fillna(0.0)
        # grammage of a segment is booked to the state that ends it: keep the
        # segments that end upstream of the last chamber
        dx = dx.where(states["z_m"] <= z_last + 1e-6, 0.0)
        prev_material = states.groupby("track_index")["material"].shift(1).fillna(
            states["material"])
        x_by_material = dx.groupby([states["track_index"], prev_material]).sum()
        optical = (x_by_material / _absorption_lengths(x_by_material.index.get_level_values(1))
                   ).groupby(level=0).sum()
        z0 = states.groupby("track_index")["z_m"].first()
        z_straw1 = self.planes["STRAW1"]
        names = out["name"].to_numpy()
        k = pd.Index(key)
        w_abs = np.exp(-optical.reindex(k).fillna(0.0).to_numpy())
        flight = np.maximum(z_straw1 - z0.reindex(k).fillna(z_straw1).to_numpy(), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_dec = -np.expm1(-flight / decay_length_m(np.maximum(p, 1e-9), "pion"))
        punch = np.exp(-self._optical_depth(states, z_last, self.planes.get("MUV3", np.inf))
                       .reindex(k).fillna(0.0).to_numpy())
        frames = []
        pi = names == "pi"
        if pi.any():
            # a pion punching through to MUV3 (no nuclear interaction on the
            # way) is the only way a not-decayed pion is taken for a muon
            frames.append(out[pi].assign(identity="pi",
                                         weight_factor=(w_abs * (1 - p_dec))[pi],
                                         punch_through=punch[pi]))
            frames.append(out[pi].assign(identity="mu_from_pi",
                                         weight_factor=(w_abs * p_dec)[pi], punch_through=0.0))
        el = np.isin(names, ["e+", "e-"])
        if el.any():
            # electrons shower in the LKr and never reach MUV3
            frames.append(out[el].assign(identity="e", weight_factor=1.0, muv3_hit=False,
                                         punch_through=0.0))
        mu = ~(pi | el)
        if mu.any():
            frames.append(out[mu].assign(identity="mu", weight_factor=1.0, punch_through=0.0))
        return pd.concat(frames).sort_values(["interaction", "particle"],
                                             kind="stable").reset_index(drop=True)
