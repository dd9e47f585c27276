"""Measured study results (backtrace/data/measured_*.toml): found for the
geometry and selection they were measured for only, listed as not evaluated
otherwise, and their files checked against their schema."""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from backtrace.beamline.geometry import default_geometry_path
from backtrace.prompt.config import RunConfig
from backtrace.prompt.document import _systematics_block
from backtrace.prompt.measured import (
    SCHEMA,
    TERMS,
    MeasuredError,
    content_digest,
    load_study,
    measured_terms,
    packaged_studies,
)
from backtrace.prompt.systematics import MEASURED_TERMS, NOT_EVALUATED
from backtrace.regions import load_regions
from backtrace.schemas import schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHIPPED = {"invisible": {"mu-mu": (0.045, 0.011)}, "closure": {"mu-mu": (0.924, 0.037)}}
STUDY = "measured_prompt_closure_na62_2021.toml"
REASON = ("{term}: measured for geometry na62_k12_2021 (no overrides) and selection "
          f"regions_na62_mumu only ({STUDY}); this run: ")
DATA = Path(__file__).resolve().parents[1] / "data"


def _packaged_text(name: str = STUDY) -> str:
    return (resources.files("backtrace.data") / name).read_text()


def _without_comments(text: str) -> str:
    """The same TOML without its comment lines and blank lines (no '#' in
    the values of the files used here)."""
    return "\n".join(line for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#")) + "\n"


def test_the_shipped_geometry_and_selection_find_the_measured_terms():
    m = measured_terms(None, (), load_regions())
    assert m.values == SHIPPED and m.not_evaluated == {}
    assert m.studies == {"invisible": STUDY, "closure": STUDY}
    # the same files named by path, and the default selection named by channel
    by_path = measured_terms(default_geometry_path(), [],
                             load_regions(resources.files("backtrace.data")
                                          / "regions_na62_mumu.toml", channel="mumu"))
    assert by_path.values == SHIPPED


def test_copies_with_other_comments_are_the_same_content(tmp_path):
    """The key is the content (parsed TOML), not the bytes."""
    geometry = tmp_path / "my_geometry.toml"
    geometry.write_text(_without_comments(default_geometry_path().read_text()))
    selection = tmp_path / "my_selection.toml"
    selection.write_text(_without_comments(_packaged_text("regions_na62_mumu.toml")))
    assert geometry.read_bytes() != default_geometry_path().read_bytes()
    assert measured_terms(geometry, (), load_regions(selection)).values == SHIPPED


def _changed_geometry(tmp_path) -> Path:
    path = tmp_path / "other_geometry.toml"
    text = default_geometry_path().read_text()
    assert 'name = "TAX1"' in text
    path.write_text(text.replace('name = "TAX1"', 'name = "TAX1"\ndensity_scale = 0.99', 1))
    return path


def _changed_selection(tmp_path) -> Path:
    path = tmp_path / "other_selection.toml"
    text = _packaged_text("regions_na62_mumu.toml")
    assert "cda_max_m = 0.05" in text
    path.write_text(text.replace("cda_max_m = 0.05", "cda_max_m = 0.04"))
    return path


@pytest.mark.parametrize("case,why", [
    ("override", "overrides sweeper.scale=1.2"),
    ("geometry", "another geometry file"),
    ("selection", "another selection"),
    ("test selection", "another selection"),
    ("ee", "another selection"),
    ("everything", "another geometry file, overrides sweeper.scale=1.2, another selection"),
])
def test_another_geometry_override_or_selection_gets_no_term(tmp_path, case, why):
    geometry, overrides, regions = None, (), load_regions()
    if case in ("override", "everything"):
        overrides = ("sweeper.scale=1.2",)
    if case in ("geometry", "everything"):
        geometry = _changed_geometry(tmp_path)
    if case in ("selection", "everything"):
        regions = load_regions(_changed_selection(tmp_path))
    if case == "test selection":
        regions = load_regions(DATA / "regions_loose.toml")
    if case == "ee":
        regions = load_regions(channel="ee")
    m = measured_terms(geometry, overrides, regions)
    assert m.values == {} and m.studies == {}
    assert m.not_evaluated == {t: REASON.format(term=t) + why for t in ("invisible", "closure")}


def _candidates() -> pd.DataFrame:
    return pd.DataFrame({"region": ["SR", "CR", "outside", "outside"],
                         "category": ["mu-mu", "mu-mu", "mu-pi", "mu-mu"],
                         "process": ["photonuclear", "mumu_pair", "knock_on", "mumu_pair"],
                         "weight": [1.0, 2.0, 4.0, 8.0], "track_index": [0, 1, 1, 2]})


def test_the_document_lists_terms_not_measured_for_the_run_as_not_evaluated():
    regions = load_regions()
    shipped = _systematics_block(_candidates(), None, {}, {}, regions, "fast", RunConfig())
    assert shipped["not_evaluated"] == NOT_EVALUATED
    inv, clo = shipped["variations"]["invisible"], shipped["variations"]["closure"]
    assert inv["measured_fraction"] == {"mu-mu": [0.045, 0.011]} and inv["study"] == STUDY
    assert clo["measured_ratio"] == {"mu-mu": [0.924, 0.037]} and clo["study"] == STUDY
    assert inv["relative"]["mu-mu"] == pytest.approx(0.056 / 0.944)
    assert clo["relative"]["mu-mu"] == pytest.approx((0.076 ** 2 + 0.037 ** 2) ** 0.5)
    # with an override (the geometry the run's config names, not the shipped one)
    config = RunConfig(overrides=("sweeper.scale=1.2",))
    other = _systematics_block(_candidates(), None, {}, {}, regions, "fast", config)
    assert "invisible" not in other["variations"] and "closure" not in other["variations"]
    assert other["not_evaluated"] == NOT_EVALUATED + [
        REASON.format(term=t) + "overrides sweeper.scale=1.2" for t in ("invisible", "closure")]
    # terms looked up by the caller are used as given
    given = measured_terms(None, (), load_regions(channel="ee"))
    ee = _systematics_block(_candidates(), None, {}, {}, regions, "none", RunConfig(),
                            measured=given)
    assert "closure" not in ee["variations"]
    assert ee["not_evaluated"][-2:] == [REASON.format(term=t) + "another selection"
                                        for t in ("invisible", "closure")]


def test_the_key_is_computed_from_the_shipped_files_when_read():
    (study,) = [s for s in packaged_studies() if s.file == STUDY]
    assert study.values == SHIPPED and study.overrides == ()
    assert study.geometry_digest == content_digest(
        tomllib.loads(default_geometry_path().read_text()))
    assert study.selection_digest == content_digest(load_regions().raw)
    assert study.describe_key() == ("geometry na62_k12_2021 (no overrides) and selection "
                                    "regions_na62_mumu")


def test_the_schema_knows_the_terms_of_the_systematics():
    import jsonschema

    s = schema(SCHEMA)
    jsonschema.Draft202012Validator.check_schema(s)
    assert tuple(k for k in s["properties"] if k in TERMS) == TERMS == MEASURED_TERMS


@pytest.mark.parametrize("edit,expected", [
    (("value = 0.924", "value = 'x'"),
     "closure.mu-mu.value: 'x' is a string (expected a number > 0)"),
    (("value = 0.924", "value = nan"),
     "closure.mu-mu.value: nan is not a number (expected a number > 0)"),
    (("value = 0.045", "value = 1.5"),
     "invisible.mu-mu.value: 1.5 is out of range (expected a number in [0, 1))"),
    (("error = 0.011\n", ""),
     "invisible.mu-mu.error: required key missing (expected a number >= 0)"),
    (("error = 0.037", "error = -0.037"),
     "closure.mu-mu.error: -0.037 is out of range (expected a number >= 0)"),
    (("overrides = []", "overrides = []\ngeometry_file = 'x.toml'"),
     "measured_for.geometry_file: unknown key (expected one of geometry, overrides, "
     "selection)"),
    (('geometry = "na62_k12_2021.toml"', 'geometry = "na62_k12_2099.toml"'),
     "measured_for.geometry: 'na62_k12_2099.toml' is not a packaged geometry"),
    (('selection = "regions_na62_mumu.toml"', 'selection = "regions_na62_tautau.toml"'),
     "measured_for.selection: 'regions_na62_tautau.toml' is not a packaged selection"),
    (("[closure.mu-mu]", "[closure.mu-e]"),
     "closure.mu-e: unknown category (expected one of mu-mu, mu-pi, other, the categories "
     "of regions_na62_mumu.toml)"),
    (('selection = "regions_na62_mumu.toml"', 'selection = "regions_na62_ee.toml"'),
     "invisible.mu-mu: unknown category (expected one of e-e, other"),
])
def test_a_corrupt_measured_file_names_the_file_and_the_key(tmp_path, edit, expected):
    text = _packaged_text()
    assert text.count(edit[0]) == 1, edit
    path = tmp_path / "measured_bad.toml"
    path.write_text(text.replace(*edit))
    with pytest.raises(MeasuredError, match="^" + re.escape(f"{path}: {expected}")):
        load_study(path)


def test_a_measured_file_of_another_version_is_refused(tmp_path):
    path = tmp_path / "measured_v2.toml"
    path.write_text(_packaged_text().replace("version = 1", "version = 2"))
    with pytest.raises(MeasuredError, match="measured_v2.toml: version 2 unsupported"):
        load_study(path)
