"""Study results used as systematics, kept as versioned data and keyed by the
geometry and selection they were measured for.

Two systematics of the prompt estimate (:mod:`backtrace.prompt.systematics`)
are measured rather than varied: ``invisible`` (the share of the prompt
yield the backward method cannot see) and ``closure`` (the forward/backward
ratio of the visible yield). Both come from the forward prompt simulation
of one set-up and hold for that set-up only. They live in packaged files
``backtrace/data/measured_*.toml`` (schema
``backtrace/data/measured-1.schema.json``; today one file,
``measured_prompt_closure_na62_2021.toml``), each value with its source and
how it was measured, and with what it was measured for:

- ``measured_for.geometry``: a packaged geometry file (``geometry/`` of the
  source tree, :mod:`backtrace.resources.geometry`);
- ``measured_for.overrides``: the study's ``--set`` overrides (none);
- ``measured_for.selection``: a packaged selection file (``backtrace/data``).

A run gets a study's terms when its geometry file has the same content as
the study's, its overrides are the study's, and its selection has the same
content as the study's. Content means the parsed TOML (:func:`content_digest`:
comments and layout do not matter, every value does). The digests of the
packaged files are computed when the study is read, so the key follows the
shipped files and cannot drift from them. Otherwise the run gets no such term,
and :func:`measured_terms` gives the reason, which the document lists under
``systematics.not_evaluated``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from backtrace.beamline.geometry import default_geometry_path
from backtrace.io import read_data_toml
from backtrace.regions import CHANNELS
from backtrace.schemas import check_against_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["MeasuredError", "Study", "MeasuredTerms", "SCHEMA", "TERMS", "content_digest",
           "load_study", "packaged_studies", "measured_terms"]

#: The schema of a measured-results file (``backtrace/data``).
SCHEMA = "measured-1.schema.json"
#: Packaged measured-results files (``backtrace/data``).
PATTERN = "measured_*.toml"
#: The measured terms a file may hold.
TERMS = ("invisible", "closure")


class MeasuredError(ValueError):
    """Raised when a measured-results file is missing or malformed."""


def content_digest(data: dict) -> str:
    """sha256 of a parsed TOML file as canonical JSON (sorted keys): the
    same for two files that differ only in comments and layout."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Study:
    """A measured-results file: its values and what they were measured for."""

    file: str
    name: str
    geometry: str
    overrides: tuple[str, ...]
    selection: str
    geometry_digest: str = field(repr=False)
    selection_digest: str = field(repr=False)
    values: dict = field(default_factory=dict)     # {term: {category: (value, error)}}

    def describe_key(self) -> str:
        """'geometry na62_k12_2021 (no overrides) and selection regions_na62_mumu'."""
        over = "overrides " + ", ".join(self.overrides) if self.overrides else "no overrides"
        return (f"geometry {Path(self.geometry).stem} ({over}) and selection "
                f"{Path(self.selection).stem}")

    def differences(self, geometry_digest: str, overrides, selection_digest: str) -> list[str]:
        """How a run's geometry, overrides and selection differ from the
        study's (empty: the study applies)."""
        out = []
        if geometry_digest != self.geometry_digest:
            out.append("another geometry file")
        if tuple(overrides) != self.overrides:
            out.append("overrides " + ", ".join(overrides) if overrides else "no overrides")
        if selection_digest != self.selection_digest:
            out.append("another selection")
        return out


@dataclass(frozen=True)
class MeasuredTerms:
    """The measured terms of one run: ``values`` {term: {category: (value,
    error)}} of the terms that apply, ``not_evaluated`` {term: reason} of
    those measured for something else, ``studies`` the files used."""

    values: dict = field(default_factory=dict)
    not_evaluated: dict = field(default_factory=dict)
    studies: dict = field(default_factory=dict)      # {term: file}


def _packaged_toml(package: str, name: str, where: str, key: str, kind: str) -> dict:
    entry = resources.files(package) / name
    if not entry.is_file():
        raise MeasuredError(f"{where}: measured_for.{key}: {name!r} is not a packaged "
                            f"{kind} (expected a file of {package})")
    return tomllib.loads(entry.read_text())


def load_study(path=None, packaged: str | None = None) -> Study:
    """Read and check a measured-results file: ``path``, or the packaged
    ``backtrace/data/<packaged>``. Errors name the file and the key."""
    if path is None and packaged is None:
        raise ValueError("load_study: give a path or a packaged file name")
    raw, source, _ = read_data_toml(path, packaged or "", MeasuredError,
                                    "measured-results file")
    where = str(path) if path is not None else str(packaged)
    check_against_schema(raw, SCHEMA, where, MeasuredError)
    key = raw["measured_for"]
    geometry = _packaged_toml("backtrace.resources.geometry", key["geometry"], where,
                              "geometry", "geometry")
    selection = _packaged_toml("backtrace.data", key["selection"], where, "selection",
                               "selection")
    channel = selection.get("channel", "mumu")
    categories = CHANNELS[channel]["categories"] if channel in CHANNELS else ()
    values = {}
    for term in TERMS:
        for cat, entry in raw.get(term, {}).items():
            if cat not in categories:
                raise MeasuredError(
                    f"{where}: {term}.{cat}: unknown category (expected one of "
                    f"{', '.join(categories)}, the categories of {key['selection']})")
            values.setdefault(term, {})[cat] = (float(entry["value"]), float(entry["error"]))
    return Study(source, raw["name"], key["geometry"], tuple(key["overrides"]),
                 key["selection"], content_digest(geometry), content_digest(selection),
                 values)


@lru_cache(maxsize=1)
def packaged_studies() -> tuple[Study, ...]:
    """Every packaged measured-results file (``backtrace/data/measured_*.toml``)."""
    names = sorted(e.name for e in resources.files("backtrace.data").iterdir()
                   if fnmatch.fnmatch(e.name, PATTERN))
    return tuple(load_study(packaged=name) for name in names)


def _geometry_digest(geometry_file) -> str:
    path = Path(geometry_file) if geometry_file is not None else default_geometry_path()
    return content_digest(tomllib.loads(path.read_text()))


def measured_terms(geometry_file, overrides, regions, studies=None) -> MeasuredTerms:
    """The measured terms of a run with the geometry file ``geometry_file``
    (None: the shipped one) and ``overrides``, and the selection ``regions``
    (:class:`backtrace.regions.Regions`; its parsed file ``raw``): those of
    the first study (default: :func:`packaged_studies`) measured for exactly
    these; every other term of a study with the reason it does not apply."""
    studies = packaged_studies() if studies is None else studies
    geometry_digest = _geometry_digest(geometry_file)
    selection_digest = content_digest(regions.raw)
    values, used, reasons = {}, {}, {}
    for study in studies:
        differs = study.differences(geometry_digest, overrides or (), selection_digest)
        for term, by_category in study.values.items():
            if term in values:
                continue
            if not differs:
                values[term], used[term] = dict(by_category), study.file
            else:
                reasons.setdefault(term, f"{term}: measured for {study.describe_key()} "
                                         f"only ({study.file}); this run: "
                                         f"{', '.join(differs)}")
    return MeasuredTerms(values, {t: r for t, r in reasons.items() if t not in values}, used)
