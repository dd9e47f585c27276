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
