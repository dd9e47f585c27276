"""Regions config: loading, validation, classification at the boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.regions import RegionsError, load_regions


def test_default_regions_are_estimated_na62():
    r = load_regions()
    assert r.estimated and [x.name for x in r.regions] == ["SR", "CR"]
    sel = r.selection
    assert sel["muon_id"] == "both" and sel["track_p_min_gev"] == 10.0
    assert (sel["straw_chambers"], sel["reconstructable_min_chambers"]) == (4, 3)
    assert sel["exactly_two_tracks"] and sel["fiducial_cones"] is None
    # every cut is in the one-line description the outputs print
    text = r.config()["description"]
    for piece in ("p 10–400 GeV", "105 <= z <= 180 m", "CDA < 50 mm",
                  "both tracks muon-identified", "no other track (>= 3 chambers)",
                  "muon E/p < 0.2", "vetoes: LAV*"):
        assert piece in text
    assert sel["vetoes"] == ["LAV*"] and sel["muon_id_ep_max"] == 0.2


def test_classification_at_boundaries():
    r = load_regions()
    z = np.array([4.0, 39.999, 40.0, 20.0, 20.0, -10.0, 60.0, 20.0, 20.0])
    c = np.array([0.0, 0.0199, 0.01, 0.020, 0.1499, 0.1, 0.1, 0.150, -0.001])
    assert list(r.classify(z, c)) == ["SR", "SR", "CR", "CR", "CR", "CR",
                                      "outside", "outside", "outside"]


@pytest.mark.parametrize("text,message", [
    ("version = 2", "unsupported"),
    ("version = 1\n[selection]\nmuon_id='both'", "misses"),
    ("version = 1\n[selection]\nopposite_charges=true\nmuon_id='all'\n"
     "fiducial_z_min_m=1\nfiducial_z_max_m=2\ntrack_p_min_gev=1\ncda_max_m=1\n"
     "[[region]]\nname='SR'\nz_tax_min_m=0\nz_tax_max_m=1\ncda_tax_min_m=0\n"
     "cda_tax_max_m=1", "muon_id"),
    ("version = 1\n[selection]\nopposite_charges=true\nmuon_id='both'\n"
     "fiducial_z_min_m=1\nfiducial_z_max_m=2\ntrack_p_min_gev=1\ncda_max_m=1\n"
     "[[region]]\nname='SR'\nz_tax_min_m=1\nz_tax_max_m=1\ncda_tax_min_m=0\n"
     "cda_tax_max_m=1", "empty rectangle"),
    ("version = 1\n[selection]\nopposite_charges=true\nmuon_id='both'\n"
     "fiducial_z_min_m=1\nfiducial_z_max_m=2\ntrack_p_min_gev=1\ncda_max_m=1\n"
     "lav_veto=true\n[[region]]\nname='SR'\nz_tax_min_m=0\nz_tax_max_m=1\n"
     "cda_tax_min_m=0\ncda_tax_max_m=1", "replaced by selection.vetoes"),
])
def test_bad_files(tmp_path, text, message):
    """(The cases are above.)"""
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(RegionsError, match=message):
        load_regions(path)


_BASE = ("version = 1\n[selection]\nopposite_charges=true\nmuon_id='both'\n"
         "fiducial_z_min_m=1\nfiducial_z_max_m=2\ntrack_p_min_gev=1\ncda_max_m=1\n{}\n"
         "[[region]]\nname='SR'\nz_tax_min_m=0\nz_tax_max_m=1\ncda_tax_min_m=0\n"
         "cda_tax_max_m=1")


@pytest.mark.parametrize("extra,message", [
    ("track_pmin_gev=5", "unknown key.*track_pmin_gev"),
    ("fiducial_cones=[[152.393, 0.5365]]", "needs fiducial_cone_tip_z_m"),
    ("fiducial_cones=[[20.0, 0.5]]\nfiducial_cone_tip_z_m=23.07", "each cone"),
    ("straw_chambers=2\nreconstructable_min_chambers=3", "reconstructable_min_chambers"),
    ("vetoes='LAV3'", "vetoes must be a list"),
    ("vetoes=[3]", "vetoes must be a list"),
    ("electron_id='two'", "electron_id 'two'"),
    ("electron_id='both'", "cannot both be 'both'"),
    ("vetoes=['LAV*']\neta_vetoes=['ANTI0']", r"eta_vetoes \['ANTI0'\] are not in"),
    ("upstream_activity_detectors='ANTI0'", "upstream_activity_detectors must be a list"),
    ("upstream_activity_radius_m=0", "must be > 0"),
    ("electron_ep_max=0.9", "E/p window is empty"),
])
def test_bad_selection_keys_are_named(tmp_path, extra, message):
    path = tmp_path / "r.toml"
    path.write_text(_BASE.format(extra))
    with pytest.raises(RegionsError, match=message):
        load_regions(path)


def test_cones_option_is_read(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(_BASE.format("fiducial_cones=[[152.393, 0.5365], [180.923, 0.7675]]\n"
                                 "fiducial_cone_tip_z_m=23.07"))
    r = load_regions(path)
    assert r.selection["fiducial_cones"] == [[152.393, 0.5365], [180.923, 0.7675]]
    assert "cones from z 23.07 m" in r.config()["description"]


def test_the_ee_selection_is_packaged_with_the_published_cuts():
    r = load_regions(channel="ee")
    assert r.channel == "ee" and r.categories == ("e-e", "other") and r.estimated
    sel = r.selection
    assert sel["fiducial_cones"] == [[152.393, 0.5365], [180.923, 0.7675]]
    assert (sel["electron_id"], sel["muon_id"]) == ("both", "none")
    assert (sel["electron_ep_min"], sel["electron_ep_min_slope_per_gev"],
            sel["electron_ep_min_p_ref_gev"], sel["electron_ep_min_dp_min_gev"],
            sel["electron_ep_max"]) == (1.0, 0.0013, 100.0, 50.0, 1.05)
    assert sorted(sel["vetoes"]) == ["ANTI0", "LAV*", "MUV3"]
    assert sel["eta_vetoes"] == ["LAV*", "ANTI0"]
    assert sel["upstream_activity_radius_m"] == 0.2
    text = r.config()["description"]
    for piece in ("cones from z 23.07 m", "both tracks electron-identified",
                  "1 − 0.0013 × max(p − 100, 50) < E/p < 1.05",
                  "vetoes: LAV*, ANTI0, MUV3", "within 200 mm of a track",
                  "η from LAV*, ANTI0"):
        assert piece in text
    # the mu-mu file is the default and says nothing of electrons
    mumu = load_regions()
    assert mumu.channel == "mumu" and mumu.categories == ("mu-mu", "mu-pi", "other")
    assert "electron" not in mumu.config()["description"]


def test_a_file_of_another_channel_or_an_unknown_channel_is_refused(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(_BASE.format(""))
    assert load_regions(path).channel == "mumu"
    with pytest.raises(RegionsError, match="mumu channel, not ee"):
        load_regions(path, channel="ee")
    with pytest.raises(RegionsError, match="channel 'tautau' unknown"):
        load_regions(channel="tautau")
    path.write_text("channel = 'xx'\n" + _BASE.format(""))
    with pytest.raises(RegionsError, match="channel 'xx' unknown"):
        load_regions(path)


@pytest.mark.parametrize("p_gev, lower", [(5.0, 0.935), (100.0, 0.935), (150.0, 0.935),
                                          (200.0, 0.87), (300.0, 0.74)])
def test_the_electron_e_over_p_window_opens_above_150_gev(p_gev, lower):
    """NA62: 1 − 0.0013 × max(p − 100, 50) < E/p < 1.05: flat 0.935 up to
    150 GeV/c, then 1.3e-3 lower per GeV/c."""
    from backtrace.regions import electron_ep_window

    lo, hi = electron_ep_window(p_gev, load_regions(channel="ee").selection)
    assert float(lo) == pytest.approx(lower, abs=1e-12) and hi == 1.05
