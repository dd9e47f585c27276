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
    (λ_π = λ_I / 0.77, :func:`backtrace.hadroproduction.absorption_length_g_cm2`
    with λ_I from ``materials/properties.toml``: PDG for iron and copper,
    else the PDG rule of thumb λ_I ≈ 35 A^(1/3) g/cm²), and
  - a decay split: with probability P_dec = 1 − exp(−L/βγcτ) over the flight
    length L to STRAW1 the pion has become a muon (identity ``mu_from_pi``;
    its kink is neglected, the muon keeps the pion's track), otherwise it is
    a pion; pions never reach MUV3 (absorbed in LKr/MUV1/MUV2/iron wall).
- **Electrons/positrons**: transported like muons of the same momentum and
  considered absorbed (status ``absorbed``) once they have crossed, upstream
  of the last STRAW chamber, 100 kg/m² (10 g/cm²) of matter — less than one
  radiation length of every solid material used (iron: 13.84 g/cm²); they
  never reach MUV3.

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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..hadroproduction import absorption_length_g_cm2
from ..rng import PRODUCT_SEED_OFFSET
from ..rng import product_key as pack_key
from ..tracks import momentum_gev
from .decay import decay_length_m

__all__ = ["ProductTransport", "product_key", "pion_absorption_length_kg_m2",
           "TRANSPORT_P_MIN_GEV", "TRACK_P_MIN_GEV"]

ELECTRON_ABSORPTION_KG_M2 = 100.0
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
    whose end state (the first stage's edge of the world) takes the volume
    and material of the second stage's start state, which it repeats."""
    if second is None or second.empty:
        return first
    end = first_histories.set_index("track_index")
    last = first.groupby("track_index")["state_index"].max()
    start = second[second["state_index"] == 0].set_index("track_index")
    first = first.copy()
    is_end = (first["state_index"].to_numpy()
              == last.reindex(first["track_index"]).to_numpy()) \
        & first["track_index"].isin(start.index).to_numpy()
    for col in ("volume", "material"):
        first.loc[is_end, col] = start[col].reindex(
            first.loc[is_end, "track_index"]).to_numpy()
    second = second[second["state_index"] > 0].assign(
        sample_index=0,
        state_index=lambda d: d["state_index"] + last.reindex(d["track_index"]).to_numpy(),
        distance_m=lambda d: d["distance_m"]
        + end["distance_m"].reindex(d["track_index"]).to_numpy(),
        grammage_kg_m2=lambda d: d["grammage_kg_m2"]
        + end["grammage_kg_m2"].reindex(d["track_index"]).to_numpy())
    # each product's rows stay in path order (first stage, then second):
    # the consumers group by product and keep the order within a group
    return pd.concat([first, second], ignore_index=True)


def _absorption_lengths(materials: pd.Index) -> np.ndarray:
    """λ_π [kg/m²] of each entry of ``materials`` (one lookup per distinct
    material)."""
    table = {m: pion_absorption_length_kg_m2(m) for m in materials.unique()}
    return np.asarray(materials.map(table), float)


def product_key(hist, particle) -> np.ndarray:
    """Batch-independent random key of products (:func:`backtrace.rng.product_key`)
    from their interactions' rows ``hist`` (track_index, sample_index, repeat)."""
    repeat = hist["repeat"].to_numpy(np.int64) if "repeat" in hist else 0
    return pack_key(hist["track_index"].to_numpy(np.int64),
                    hist["sample_index"].to_numpy(np.int64), repeat, particle)


class ProductTransport:
    """Forward PUMAS transport of products with detector read-out."""

    def __init__(self, beamline, seed: int = 1, response=None):
        from ..transport import TraceConfig, Tracer

        #: the detector response (vetoes, LKr, MUV3; None: tracking only)
        self.response = response
        self.geometry = beamline.geometry
        self.planes = beamline.detector_planes
        if "STRAW1" not in self.planes:
            raise ValueError("the geometry has no STRAW1 detector element")
        straw1 = beamline.geometry.element("STRAW1")
        #: the first stage ends just inside STRAW1 (its entry face is recorded)
        self.stage1_z_m = min(straw1.z_min_m + 1e-4, 0.5 * (straw1.z_min_m + straw1.z_max_m))

        def tracer(to_z_m):
            return Tracer(TraceConfig(geometry_file=beamline.geometry_file,
                                      overrides=beamline.overrides, direction="forward",
                                      to_z_m=to_z_m, seed=seed + PRODUCT_SEED_OFFSET,
                                      record=True, accuracy=PRODUCT_ACCURACY), beamline)
        self.tracer = tracer(beamline.end_z_m)
        self.tracer_stage1 = tracer(self.stage1_z_m)

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
        tracks = pd.DataFrame({
            "track_index": key, "x_m": products["x_m"].to_numpy(),
            "y_m": products["y_m"].to_numpy(), "z_m": products["z_m"].to_numpy(),
            "px_gev": products["px_gev"].to_numpy(), "py_gev": products["py_gev"].to_numpy(),
            "pz_gev": products["pz_gev"].to_numpy(), "charge": products["charge"].to_numpy(),
        })[forward]
        # products created downstream of the first stage's end go in one stage
        late = tracks["z_m"].to_numpy() >= self.stage1_z_m
        first = self.tracer_stage1.trace(tracks[~late])
        direct = self.tracer.trace(tracks[late]) if late.any() else None
        status = pd.concat([first.histories, *([direct.histories] if direct else [])]) \
            .set_index("track_index")["status"]
        out = products[["interaction", "particle", "name", "charge"]].copy()
        out["p_gev"] = p
        out["status"] = "backward_going"
        out.loc[forward, "status"] = status.reindex(key[forward]).to_numpy()
        states = first.states
        early = pd.Index(tracks["track_index"][~late])
        go_on = np.isin(key, early) & (out["status"].to_numpy() == "reached_target")
        if precheck is not None:
            at_straw1 = pd.concat([out[["interaction", "particle", "charge"]]
                                   .reset_index(drop=True),
                                   self._readout(states, key, ("STRAW1",))], axis=1)
            go_on &= out["interaction"].isin(precheck(at_straw1)).to_numpy()
        if go_on.any():
            second = self.tracer.trace(_continued(first.histories, key[go_on]),
                                       first_sample=1, n_samples=1)
            states = _joined_states(states, second.states, first.histories)
            status = second.histories.set_index("track_index")["status"]
            out.loc[go_on, "status"] = status.reindex(key[go_on]).to_numpy()
        if direct is not None and direct.states is not None:
            states = pd.concat([states, direct.states], ignore_index=True)
        readout = self._readout(states, key)
        out = pd.concat([out.reset_index(drop=True), readout.reset_index(drop=True)], axis=1)
        if self.response is not None:
            out = self._response(out, states, key)
        return self._identities(out, states, key, p)

    def _response(self, out, states, key):
        """Veto survival (Σ log ε of the product's crossings), LKr energy and
        E/p of every product (:mod:`backtrace.detector.response`)."""
        r = self.response
        k = pd.Index(key)
        log_s = r.product_log_survival(states).reindex(k).fillna(0.0).to_numpy()
        e_lkr = r.lkr_energy_gev(states).reindex(k).fillna(0.0).to_numpy()
        e_meas = r.smeared_energy(e_lkr, key)
        p_ref = np.where(np.isfinite(out["STRAW1_pz_gev"]),
                         np.sqrt(out["STRAW1_px_gev"] ** 2 + out["STRAW1_py_gev"] ** 2
                                 + out["STRAW1_pz_gev"] ** 2), out["p_gev"])
        with np.errstate(divide="ignore", invalid="ignore"):
            ep = np.where(p_ref > 0, e_meas / p_ref, np.inf)
        return out.assign(veto_log_survival=log_s, lkr_energy_gev=e_meas, e_over_p=ep)

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
        total_x = x_by_material.groupby(level=0).sum()
        z0 = states.groupby("track_index")["z_m"].first()
        z_straw1 = self.planes["STRAW1"]
        names = out["name"].to_numpy()
        k = pd.Index(key)
        w_abs = np.exp(-optical.reindex(k).fillna(0.0).to_numpy())
        flight = np.maximum(z_straw1 - z0.reindex(k).fillna(z_straw1).to_numpy(), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_dec = -np.expm1(-flight / decay_length_m(np.maximum(p, 1e-9), "pion"))
        absorbed = total_x.reindex(k).fillna(0.0).to_numpy() > ELECTRON_ABSORPTION_KG_M2
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
            # electrons shower in the LKr (E/p ~ 1) and never reach MUV3
            e_out = out[el].assign(identity="e", weight_factor=1.0, muv3_hit=False,
                                   punch_through=0.0)
            if "e_over_p" in e_out:
                e_out["e_over_p"] = 1.0
            e_out.loc[absorbed[el], "status"] = "absorbed"
            frames.append(e_out)
        mu = ~(pi | el)
        if mu.any():
            frames.append(out[mu].assign(identity="mu", weight_factor=1.0, punch_through=0.0))
        return pd.concat(frames).sort_values(["interaction", "particle"],
                                             kind="stable").reset_index(drop=True)
