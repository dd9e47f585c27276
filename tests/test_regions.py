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
    ("version = 1\n[selection]\nmuon_id='both'", "selection.opposite_charges: required key missing"),
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
    ("track_pmin_gev=5", "selection.track_pmin_gev: unknown key"),
    ("fiducial_cones=[[152.393, 0.5365]]",
     "selection.fiducial_cone_tip_z_m: missing, required with fiducial_cones"),
    ("fiducial_cones=[[20.0, 0.5]]\nfiducial_cone_tip_z_m=23.07", "each cone"),
    ("straw_chambers=2\nreconstructable_min_chambers=3", "reconstructable_min_chambers"),
    ("vetoes='LAV3'", r"selection.vetoes: 'LAV3' is a string \(expected a list of"),
    ("vetoes=[3]", r"selection.vetoes\[0\]: 3 is a number \(expected a non-empty string"),
    ("electron_id='two'", "selection.electron_id: 'two' is not allowed"),
    ("electron_id='both'", "selection.electron_id: 'both' with muon_id 'both'"),
    ("vetoes=['LAV*']\neta_vetoes=['ANTI0']",
     r"selection.eta_vetoes: \['ANTI0'\] are not in"),
    ("upstream_activity_detectors='ANTI0'",
     r"selection.upstream_activity_detectors: 'ANTI0' is a string \(expected a list"),
    ("upstream_activity_radius_m=0", r"upstream_activity_radius_m: 0 is out of range"),
    ("track_p_max_gev=0.5", r"selection.track_p_max_gev: 0.5 <= track_p_min_gev 1"),
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
    with pytest.raises(RegionsError, match="channel: 'xx' is not allowed"):
        load_regions(path)


@pytest.mark.parametrize("p_gev, lower", [(5.0, 0.935), (100.0, 0.935), (150.0, 0.935),
                                          (200.0, 0.87), (300.0, 0.74)])
def test_the_electron_e_over_p_window_opens_above_150_gev(p_gev, lower):
    """NA62: 1 − 0.0013 × max(p − 100, 50) < E/p < 1.05: flat 0.935 up to
    150 GeV/c, then 1.3e-3 lower per GeV/c."""
    from backtrace.regions import electron_ep_window

    lo, hi = electron_ep_window(p_gev, load_regions(channel="ee").selection)
    assert float(lo) == pytest.approx(lower, abs=1e-12) and hi == 1.05


# --- the schema (backtrace/data/selection-1.schema.json) -------------------
def _one_line_error(path) -> str:
    with pytest.raises(RegionsError) as info:
        load_regions(path)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("mode,edit,expected", [
    ("wrong type", ("cda_max_m=1", "cda_max_m='1 m'"),
     "selection.cda_max_m: '1 m' is a string (expected a number > 0)"),
    ("missing required key", ("cda_max_m=1\n", ""),
     "selection.cda_max_m: required key missing (expected a number > 0)"),
    ("negative size", ("cda_max_m=1", "cda_max_m=-0.05"),
     "selection.cda_max_m: -0.05 is out of range (expected a number > 0)"),
    ("unknown key", ("cda_max_m=1", "cda_max_m=1\ncda_max_mm=50"),
     "selection.cda_max_mm: unknown key (expected one of opposite_charges, muon_id,"),
    ("NaN", ("cda_max_m=1", "cda_max_m=nan"),
     "selection.cda_max_m: nan is not a number (expected a number > 0)"),
    ("NaN in a region", ("z_tax_max_m=1", "z_tax_max_m=nan"),
     "region[0].z_tax_max_m: nan is not a number (expected a number)"),
    ("out of range", ("cda_max_m=1", "cda_max_m=1\nstraw_chambers=5"),
     "selection.straw_chambers: 5 is out of range (expected an integer in [1, 4])"),
    ("unordered limits", ("fiducial_z_max_m=2", "fiducial_z_max_m=0.5"),
     "selection.fiducial_z_max_m: 0.5 <= fiducial_z_min_m 1 "
     "(expected fiducial_z_min_m < fiducial_z_max_m)"),
    ("unknown top-level key", ("version = 1", "version = 1\nestimate = true"),
     "estimate: unknown key (expected one of version, name, estimated, channel, "
     "selection, region)"),
    ("unknown region key", ("cda_tax_max_m=1", "cda_tax_max_m=1\ncda_max=1"),
     "region[0].cda_max: unknown key (expected one of name, z_tax_min_m,"),
])
def test_schema_errors_name_the_file_and_the_key(tmp_path, mode, edit, expected):
    """One bad input per failure mode: the one-line message is '<file>:
    <key.path>: <what is wrong> (expected <what>)'."""
    path = tmp_path / "bad_selection.toml"
    text = _BASE.format("")
    assert edit[0] in text, mode
    path.write_text(text.replace(edit[0], edit[1], 1))
    message = _one_line_error(path)
    assert message.startswith(f"{path}: {expected}"), (mode, message)


def test_a_file_without_regions_is_refused(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(_BASE.format("").split("[[region]]")[0])
    assert _one_line_error(path) == (
        f"{path}: region: required key missing (expected a list of one or more tables "
        "with name, z_tax_min_m, z_tax_max_m, cda_tax_min_m, cda_tax_max_m)")
    path.write_text("region = []\n" + _BASE.format("").split("[[region]]")[0])
    assert _one_line_error(path) == (
        f"{path}: region: 0 item(s) (expected a list of one or more tables "
        "with name, z_tax_min_m, z_tax_max_m, cda_tax_min_m, cda_tax_max_m)")


def test_problems_are_reported_in_file_order(tmp_path):
    """The first key at fault in the file, a missing key after the others."""
    path = tmp_path / "r.toml"
    path.write_text(_BASE.format("").replace("muon_id='both'", "muon_id='all'")
                    .replace("cda_max_m=1\n", "").replace("z_tax_max_m=1", "z_tax_max_m='x'"))
    assert _one_line_error(path).startswith(f"{path}: selection.muon_id: 'all' is not allowed")


def test_every_shipped_test_and_study_selection_passes_the_schema():
    from pathlib import Path

    from backtrace.regions import CHANNELS

    root = Path(__file__).resolve().parents[1]
    files = [None, *(root / "backtrace" / "data" / c["file"] for c in CHANNELS.values()),
             *sorted((root / "tests" / "data").glob("regions_*.toml")),
             *sorted((root / "studies").rglob("regions*.toml"))]
    assert len(files) >= 5
    for f in files:
        assert load_regions(f).regions


def test_the_schema_knows_every_selection_key_and_channel():
    """The schema and the loader's defaults, channels and docstring agree:
    a key added to one must be added to the others."""
    import jsonschema

    from backtrace.regions import CHANNELS, SCHEMA, SELECTION_DEFAULTS
    from backtrace.schemas import schema

    s = schema(SCHEMA)
    jsonschema.Draft202012Validator.check_schema(s)
    sel = s["properties"]["selection"]
    assert set(sel["properties"]) == set(sel["required"]) | set(SELECTION_DEFAULTS)
    assert not set(sel["required"]) & set(SELECTION_DEFAULTS)
    assert s["properties"]["channel"]["enum"] == list(CHANNELS)
