"""Regions config: loading, validation, classification at the boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.regions import RegionsError, load_regions


def test_default_regions_are_estimated_na62():
    r = load_regions()
    assert r.estimated and [x.name for x in r.regions] == ["SR", "CR"]
    assert r.selection["muon_id"] == "both"


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
     "cda_tax_min_m=0\ncda_tax_max_m=1", "not modelled"),
])
def test_bad_files(tmp_path, text, message):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(RegionsError, match=message):
        load_regions(path)
