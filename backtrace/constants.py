"""Physical constants in backtrace's unit system (GeV, m, kg/m^3, T, s).

Muon mass and lifetime are taken from the loaded PUMAS library
(``Physics.particle()``) where transport is concerned, so that Python and C
cannot disagree; the values here serve formulas outside PUMAS.
"""

#: Momentum [GeV/c] times curvature for unit charge in 1 T: p = 0.299792458 B R
#: (c = 299 792 458 m/s, exact; PDG 2024 "Physical constants").
LARMOR_GEV_PER_T_M = 0.299792458

#: Speed of light [m/s] (exact, SI).
C_LIGHT_M_PER_S = 299_792_458.0

#: Muon mass [GeV/c^2] (PDG 2024: 105.6583755(23) MeV).
MUON_MASS_GEV = 0.1056583755

#: Electron mass [GeV/c^2] (PDG 2024: 0.51099895000(15) MeV).
ELECTRON_MASS_GEV = 0.00051099895

#: Charged-pion mass [GeV/c^2] (PDG 2024: 139.57039(18) MeV).
PION_MASS_GEV = 0.13957039

#: Avogadro constant [1/mol] (exact, SI 2019).
AVOGADRO_PER_MOL = 6.02214076e23

#: Fine-structure constant (CODATA 2018: 7.2973525693e-3).
ALPHA_EM = 7.2973525693e-3

#: Classical electron radius [m] (CODATA 2018: 2.8179403262e-15 m).
ELECTRON_RADIUS_M = 2.8179403262e-15

#: Proton mass [GeV/c^2] (PDG 2024: 938.27208816(29) MeV).
PROTON_MASS_GEV = 0.93827208816

#: PDG ids (scikit-hep ``particle`` package) of the hadrons and leptons whose
#: mass and lifetime :func:`pdg_mass_ctau` looks up.
PDGID = {"pion": 211, "kaon": 321, "muon": 13, "D0": 421, "D+": 411,
         "Ds": 431, "Lc": 4122, "eta": 221, "rho": 113, "omega": 223,
         "phi": 333, "jpsi": 443, "K": 321, "Lambda": 3122, "pi0": 111}


def pdg_mass_ctau(name: str) -> tuple[float, float]:
    """(mass [GeV/c^2], c tau [m]) of a particle of :data:`PDGID` from the
    ``particle`` package (PDG data); c tau is 0 for resonances."""
    return _pdg_mass_ctau(name)


def _pdg_mass_ctau(name: str, _cache={}) -> tuple[float, float]:
    if name not in _cache:
        import math

        from particle import Particle

        p = Particle.from_pdgid(PDGID[name])
        ctau = p.ctau / 1e3 if p.ctau is not None and math.isfinite(p.ctau) else 0.0
        _cache[name] = (p.mass / 1e3, ctau)
    return _cache[name]
