"""One beam line: geometry, physics and compiled navigators, built once.

A :class:`BeamLine` holds what every stage of backtrace shares: the
validated geometry (:mod:`backtrace.beamline.geometry`), the PUMAS physics tables
(:func:`backtrace.beamline.materials.load_physics`), the navigators compiled for
each z range in use (cached: the backward traces to the TAX exit, the
forward product transport, the source simulation stages) and the planes
the analysis needs (TAX exit, tracking chambers, MUV3, beam momentum and
√s). :meth:`BeamLine.shared` returns the process-wide instance for a
(geometry file, overrides, material file) so that a worker parses the
geometry and compiles each navigator once, whatever the number of
components (tracer, product transport, simulator, source density) that use
it.
"""

from __future__ import annotations

from pathlib import Path

from backtrace.beamline.compile import compile_geometry
from backtrace.beamline.geometry import load_geometry
from backtrace.beamline.materials import load_physics, mdf_path
from backtrace.kinematics import sqrt_s_gev

__all__ = ["BeamLine"]

#: Process-wide beam lines by (geometry file, overrides, MDF).
_SHARED: dict = {}


class BeamLine:
    """Geometry + physics + compiled navigators (see the module docstring)."""

    def __init__(self, geometry_file=None, overrides=(), physics=None):
        self.physics = physics if physics is not None else load_physics()
        self.geometry = load_geometry(geometry_file, tuple(overrides),
                                      mdf=self.physics.mdf)
        self.geometry_file = geometry_file
        self.overrides = tuple(overrides)
        self._compiled: dict = {}

    @classmethod
    def shared(cls, geometry_file=None, overrides=(), physics=None) -> "BeamLine":
        """The process-wide beam line for these inputs (built on first use).
        A given ``physics`` is used when the beam line is first built."""
        mdf = physics.mdf if physics is not None else mdf_path()
        key = (str(Path(geometry_file).resolve()) if geometry_file else None,
               tuple(overrides), str(mdf))
        if key not in _SHARED:
            _SHARED[key] = cls(geometry_file, overrides, physics)
        return _SHARED[key]

    @classmethod
    def for_config(cls, config, beamline=None) -> "BeamLine":
        """``beamline`` if given, else the shared one of a configuration with
        ``geometry_file`` and ``overrides`` (TraceConfig, RunConfig, …)."""
        if beamline is not None:
            return beamline
        return cls.shared(config.geometry_file, config.overrides)

    def compiled(self, z_range: tuple[float, float], planes=()):
        """The geometry compiled for the navigator over ``z_range`` with
        extra reference ``planes`` (cached per z range and planes)."""
        key = (tuple(float(z) for z in z_range), tuple(float(z) for z in planes))
        if key not in self._compiled:
            self._compiled[key] = compile_geometry(
                self.geometry, self.physics, z_range=key[0], reference_planes_m=key[1])
        return self._compiled[key]

    # -- planes and beam ----------------------------------------------------
    @property
    def tax_exit_z_m(self) -> float:
        """Downstream face of the dump [m] (where the source density lives)."""
        return self.geometry.tax_exit_z_m

    @property
    def first_tracker_z_m(self) -> float:
        """Entry face of STRAW1 [m]."""
        return self.geometry.first_tracker_z_m

    @property
    def beam_momentum_gev(self) -> float:
        return self.geometry.beam_momentum_gev

    @property
    def sqrt_s_gev(self) -> float:
        """√s [GeV] of a beam proton on a nucleon at rest."""
        return sqrt_s_gev(self.beam_momentum_gev)

    @property
    def detector_planes(self) -> dict[str, float]:
        """{name: entry face z [m]} of the STRAW chambers and MUV3."""
        planes = dict(self.geometry.tracker_planes_z_m)
        for e in self.geometry.elements:
            if e.name.upper() == "MUV3":
                planes["MUV3"] = e.z_min_m
        return planes

    @property
    def end_z_m(self) -> float:
        """Downstream end of the last element [m]."""
        return max(e.z_max_m for e in self.geometry.elements)
