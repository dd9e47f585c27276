"""The beam line: built once per process, planes and beam from the geometry,
navigators compiled once per z range."""

from __future__ import annotations

import pytest

from backtrace.beamline.line import BeamLine


def test_shared_beam_line_is_built_once(beamline):
    assert BeamLine.shared() is beamline
    assert BeamLine.shared(overrides=("sweeper.scale=0.5",)) is not beamline
    assert BeamLine.shared(overrides=("sweeper.scale=0.5",)) is \
        BeamLine.shared(overrides=("sweeper.scale=0.5",))


def test_navigators_are_compiled_once_per_z_range(beamline):
    z = (beamline.tax_exit_z_m, beamline.geometry.world["z_max_m"])
    assert beamline.compiled(z) is beamline.compiled(z)
    assert beamline.compiled(z) is not beamline.compiled(z, planes=(150.0,))


def test_planes_and_beam_come_from_the_geometry(beamline):
    g = beamline.geometry
    # shipped file: TAX2 ends at 26.32 m, STRAW1 at 183.508 m, MUV3 246.8 m
    assert beamline.tax_exit_z_m == pytest.approx(26.32)
    assert beamline.first_tracker_z_m == pytest.approx(183.508)
    planes = beamline.detector_planes
    assert list(planes)[:4] == ["STRAW1", "STRAW2", "STRAW3", "STRAW4"]
    assert planes["MUV3"] == pytest.approx(246.8)
    assert beamline.beam_momentum_gev == g.beam["proton_momentum_gev"] == 400.0
    assert beamline.sqrt_s_gev == pytest.approx(27.4296, abs=1e-4)


def test_a_moved_straw1_moves_every_consumer(physics):
    moved = BeamLine(overrides=("STRAW1.z_min_m=183.0", "STRAW1.z_max_m=183.01"),
                     physics=physics)
    assert moved.first_tracker_z_m == pytest.approx(183.0)
    from backtrace.detector.candidates import Reconstruction

    assert Reconstruction.from_beamline(moved, seed=1).straw1_z_m == pytest.approx(183.0)
