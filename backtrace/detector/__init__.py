"""The detector: response, two-track reconstruction and candidates.

- :mod:`.reconstruction`: vertex, Z_TAX/CDA_TAX pointing, invariant mass,
  STRAW acceptance and momentum/angle smearing (small vectorised functions);
- :mod:`.candidates`: two-track candidates of forced interactions, built
  with numpy over all products of a batch, selected and classified.
"""

from backtrace.detector.reconstruction import (
    STRAW_R_MAX_M,
    STRAW_R_MIN_M,
    Smearing,
    closest_approach,
    in_cones,
    in_fiducial_volume,
    invariant_mass,
    pointing,
    radius_from_axis,
    smear,
    straw_acceptance,
    two_track_vertex,
)

__all__ = ["closest_approach", "two_track_vertex", "pointing", "invariant_mass",
           "straw_acceptance", "smear", "Smearing", "STRAW_R_MIN_M", "STRAW_R_MAX_M",
           "radius_from_axis", "in_cones", "in_fiducial_volume"]


def __dir__():
    return __all__
