"""Secondary interactions of muons, one module per process.

Registry (names used in configuration files and on the command line):

==================  ===========  ==========================================
name                category     module
==================  ===========  ==========================================
photonuclear        mu-pi        :mod:`.photonuclear` (PUMAS DRSS DCS)
pair_production     other        :mod:`.pair_production` (PUMAS SSR DCS)
mumu_pair           mu-mu        :mod:`.mumu_pair` (KKP 2000 DCS)     
bremsstrahlung      mu-mu        :mod:`.bremsstrahlung` (+ γ → μμ, BKK)
knock_on            other        :mod:`.knock_on` (PDG δ-ray formula)
photon_conversion   other        :mod:`.photon_conversion` (brems. + γ → e⁺e⁻)
==================  ===========  ==========================================

The processes forced by default depend on the channel
(:data:`CHANNEL_PROCESSES`): the μ⁺μ⁻ selection's five, and for e⁺e⁻ also
the conversions of bremsstrahlung photons.

π/K decay in flight and absorption: :mod:`.decay`. Each module exposes
``table``, ``cross_section`` and ``sample`` (see :mod:`._common`); a
per-process ``scale`` multiplies cross sections for systematic studies.
"""

from __future__ import annotations

from backtrace.interactions import (
    bremsstrahlung,
    decay,
    knock_on,
    mumu_pair,
    pair_production,
    photon_conversion,
    photonuclear,
)
from backtrace.interactions._common import FinalState, ProcessTable

PROCESSES = {
    "photonuclear": photonuclear,
    "pair_production": pair_production,
    "mumu_pair": mumu_pair,
    "bremsstrahlung": bremsstrahlung,
    "knock_on": knock_on,
    "photon_conversion": photon_conversion,
}
#: The processes forced by default in each channel (backtrace.regions.CHANNELS).
CHANNEL_PROCESSES = {
    "mumu": ("photonuclear", "pair_production", "mumu_pair", "bremsstrahlung", "knock_on"),
    "ee": tuple(PROCESSES),
}

#: Named physics configurations: per channel, the processes forced.
#: 'full' (the default) is every process the tool models
#: (:data:`CHANNEL_PROCESSES`). 'geant4-default' is what a simulation with
#: Geant4's default reference physics list (FTFP_BERT, releases 10.1-11.1,
#: those of analyses published up to early 2023) has, read in the Geant4
#: source (github.com/Geant4/geant4, tags v10.7.4 and v11.1.0):
#: FTFP_BERT.cc registers G4EmStandardPhysics and G4EmExtraPhysics; muon
#: ionisation with delta rays, muon pair production to e+e- and muon
#: bremsstrahlung are in the standard set (G4EmBuilder.cc, v11.1.0 lines
#: 239-267); muon-nuclear is on (G4EmExtraPhysics.hh v11.1.0 line 100,
#: ``munActivated = true``, on by default since 10.1), gamma -> mu+mu- is
#: off (line 103, ``gmumuActivated = false``) and so is the direct mu ->
#: mu mu+mu- pair production (line 104, ``mmumuActivated = false``; the
#: class G4MuonToMuonPairProduction, created 12.07.2022, first ships in
#: 11.1 as an opt-in, ReleaseNotes.11.1 line 416). So: photonuclear,
#: pair_production and knock_on (and, for e+e-, the bremsstrahlung photons'
#: conversion to e+e-), without mumu_pair and without this tool's
#: 'bremsstrahlung' (whose final state is the photon's conversion to
#: mu+mu-). That an analysis used this set is a hypothesis about its
#: simulation, not a fact: the set is for like-for-like comparisons.
PHYSICS = {
    "full": CHANNEL_PROCESSES,
    "geant4-default": {
        "mumu": ("photonuclear", "pair_production", "knock_on"),
        "ee": ("photonuclear", "pair_production", "knock_on", "photon_conversion"),
    },
}

#: Default lower cut on the energy given to the secondary [GeV]: below it a
#: product cannot make a selected track (NA62 tracks need several GeV).
DEFAULT_Q_MIN_GEV = 1.0

__all__ = ["PROCESSES", "CHANNEL_PROCESSES", "PHYSICS", "DEFAULT_Q_MIN_GEV", "FinalState", "ProcessTable",
           "decay", "interaction_table", "build_tables"]


def build_tables(physics, material: str, q_min_gev: float = DEFAULT_Q_MIN_GEV,
                 processes=None) -> dict:
    """{process name: ProcessTable} for one material."""
    names = list(processes or PROCESSES)
    unknown = [n for n in names if n not in PROCESSES]
    if unknown:
        raise KeyError(f"unknown process(es) {unknown} (known: {', '.join(PROCESSES)})")
    return {n: PROCESSES[n].table(physics, material, q_min_gev) for n in names}


def interaction_table(physics, material: str, kinetic_energies_gev,
                      q_min_gev: float = DEFAULT_Q_MIN_GEV, scales=None) -> list[dict]:
    """Per-process interaction probabilities per metre and per g/cm² of
    ``material`` for muons of the given kinetic energies."""
    import numpy as np

    scales = scales or {}
    tables = build_tables(physics, material, q_min_gev)
    density = physics.material_density(material)  # kg/m^3
    rows = []
    for k in np.atleast_1d(kinetic_energies_gev).astype(float):
        for name, tab in tables.items():
            sigma = float(PROCESSES[name].cross_section(tab, np.array([k]))[0]) \
                * scales.get(name, 1.0)  # m^2/kg
            rows.append({"kinetic_energy_gev": k, "process": name,
                         "category": PROCESSES[name].CATEGORY,
                         "q_min_gev": q_min_gev,
                         "probability_per_m": sigma * density,
                         "probability_per_g_cm2": sigma * 10.0})  # 1 g/cm² = 10 kg/m²
    return rows
