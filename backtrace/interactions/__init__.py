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

#: Default lower cut on the energy given to the secondary [GeV]: below it a
#: product cannot make a selected track (NA62 tracks need several GeV).
DEFAULT_Q_MIN_GEV = 1.0

__all__ = ["PROCESSES", "CHANNEL_PROCESSES", "DEFAULT_Q_MIN_GEV", "FinalState", "ProcessTable",
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
