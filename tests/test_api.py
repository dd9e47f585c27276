"""The public API: ``backtrace.estimate`` → ``Background``, its options, and
results that depend only on what the output records (not on the clock)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import pandas as pd
import pytest

import backtrace
from backtrace.api import Background, Options, ReplayError, default
from backtrace.prompt.config import RunConfig
from backtrace.prompt.pipeline import run_estimate
from backtrace.tracks import Tracks, write_tracks

LOOSE = str(Path(__file__).resolve().parent / "data" / "regions_loose.toml")


@pytest.fixture(scope="module")
def head40(tmp_path_factory):
    src = Path(__file__).resolve().parent.parent / "examples" / "sample.parquet"
    path = tmp_path_factory.mktemp("api") / "head40.parquet"
    write_tracks(path, pd.read_parquet(src).head(40), pot=1e12 * 40 / 1419)
    return path


class SlowClock:
    """A clock that advances ``step`` seconds at every reading."""

    def __init__(self, step: float):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def _without_times(obj):
    """A document without its elapsed times (the only machine-dependent keys)."""
    if isinstance(obj, dict):
        return {k: _without_times(v) for k, v in obj.items() if k != "elapsed_s"}
    if isinstance(obj, list):
        return [_without_times(v) for v in obj]
    return obj


def _rounds(path, clock, **kw):
    config = RunConfig(regions_file=LOOSE, samples_per_track=2, interactions_per_history=8,
                       allocation="uniform", track_allocation="uniform")
    return run_estimate(Tracks.open(path), config, systematics="none", progress=False,
                        target_rel_unc=1e-6, max_samples_per_track=8, max_time_s=100.0,
                        clock=clock, **kw)


def test_a_slow_clock_stops_earlier_but_changes_no_round(head40):
    """The time cap only decides whether another round starts: a slow
    machine (each clock reading +30 s) stops after two rounds for time, a
    fast one goes on to the histories cap; the rounds both complete are
    identical, and replaying the slow run's rounds on the fast clock gives
    its document to the byte, but for elapsed times."""
    fast = _rounds(head40, SlowClock(1e-3))
    slow = _rounds(head40, SlowClock(30.0))
    assert fast.document["mc"]["stopped_by"] == "max_samples"
    assert [r["histories"] for r in fast.document["mc"]["rounds"]] == [80, 160, 320]
    assert slow.document["mc"]["stopped_by"] == "max_time"
    assert len(slow.document["mc"]["rounds"]) == 2
    assert _without_times(slow.document["mc"]["rounds"]) == \
        _without_times(fast.document["mc"]["rounds"][:2])
    # the same two rounds on the fast clock: only the stop reason and cap differ
    capped = _rounds(head40, SlowClock(1e-3), max_rounds=2)
    a, b = _without_times(slow.document), _without_times(capped.document)
    assert b["mc"].pop("stopped_by") == "max_rounds" and b["mc"].pop("max_rounds") == 2
    a["mc"].pop("stopped_by"), a["mc"].pop("max_rounds")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    # a replay of the recorded rounds reproduces the slow run exactly
    replay = _rounds(head40, SlowClock(1e-3), replay=(2, "max_time"))
    assert json.dumps(_without_times(replay.document), sort_keys=True) == \
        json.dumps(_without_times(slow.document), sort_keys=True)
    pd.testing.assert_frame_equal(replay.candidates, slow.candidates)


def test_estimate_gives_the_table_in_a_few_lines(head40, tmp_path):
    b = backtrace.estimate(head40, regions=LOOSE, systematics="none", target_rel_unc=None,
                           jobs=1, progress=False, samples_per_track=2)
    assert isinstance(b, Background)
    assert list(b.table.index) == ["SR", "CR", "outside"]
    assert list(b.table.columns) == ["combinatorial", "prompt", "upstream-prompt", "total"]
    y = b.yields
    total = y[(y["region"] == "outside") & (y["component"] == "total")]["value"].item()
    assert total == pytest.approx(b.document["summary"]["regions"]["outside"]["total"]["value"])
    assert b.document["summary"]["regions"]["outside"]["prompt"]["value"] > 0
    assert len(b.candidates) == b.document["candidates"] > 0
    assert set(b.prompt_table["category"]) == {"mu-mu", "mu-pi", "other"}
    assert b.combinatorial["sampling"]["tracks"] == 40
    cells = b.cells().set_index(["region", "category"])
    assert cells.loc[("outside", "mu-mu"), "value"] == pytest.approx(
        b.document["regions"]["outside"]["mu-mu"]["value"], rel=1e-12)
    assert cells.loc[("outside", "mu-mu"), "mc"] == pytest.approx(
        b.document["regions"]["outside"]["mu-mu"]["mc"], rel=1e-9)
    tight = b.cells(lambda c: c["cda_m"] < 0.01).set_index(["region", "category"])
    assert (tight["value"] <= cells["value"] + 1e-300).all()
    assert tight["n_mc"].sum() < cells["n_mc"].sum()
    assert b.plot("distributions").axes
    paths = b.write(tmp_path / "out")
    assert {p.name for p in paths} >= {"background.json", "summary.md", "candidates.parquet",
                                       "ztax_cdatax.png", "background.pyhf.json"}
    again = Background.load(tmp_path / "out")
    assert again.document == json.loads((tmp_path / "out" / "background.json").read_text())
    pd.testing.assert_frame_equal(again.candidates, b.candidates)
    assert "Background" in repr(b) and "outside" in repr(b)


def test_rounds_from_replays_a_saved_result_and_refuses_other_options(head40, tmp_path):
    opts = Options(regions=LOOSE, systematics="none", combinatorial=False, jobs=1,
                   progress=False, samples_per_track=2, interactions_per_history=4,
                   target_rel_unc=1e-6, max_samples_per_track=4, allocation="uniform")
    first = backtrace.estimate(head40, options=opts)
    first.write(tmp_path / "first")
    again = backtrace.estimate(head40, options=opts, rounds_from=str(tmp_path / "first"))
    assert json.dumps(_without_times(again.document), sort_keys=True) == \
        json.dumps(_without_times(first.document), sort_keys=True)
    with pytest.raises(ReplayError, match="seed"):
        backtrace.estimate(head40, options=opts, seed=2,
                           rounds_from=str(tmp_path / "first" / "background.json"))


def test_options_are_the_cli_defaults_and_unknown_names_fail():
    opts = Options()
    assert opts.target_rel_unc == default("target_rel_unc") == 0.2
    assert dataclasses.replace(opts, seed=2).seed == 2
    with pytest.raises(TypeError, match="unknown option.*sed"):
        opts.with_(sed=2)
    with pytest.raises(TypeError, match="unknown option"):
        backtrace.estimate("x.parquet", not_an_option=1)


def test_public_surface():
    assert dir(backtrace) == ["Background", "Options", "Tracks", "__version__", "estimate"]
    assert backtrace.Tracks is Tracks
    with pytest.raises(AttributeError):
        backtrace.nothing  # noqa: B018


def test_every_run_option_takes_its_default_from_options():
    from backtrace.cli.run import _OPTION_FIELDS, run

    known = {f.name for f in dataclasses.fields(Options)}
    checked = 0
    for p in run.params:
        name = _OPTION_FIELDS.get(p.name, p.name)
        if name not in known:
            assert p.name in ("tracks_file", "out", "quiet", "verbose"), p.name
            continue
        want = default(name)
        got = p.get_default(click.Context(run))
        if p.multiple:      # click's "no default" sentinel for repeatable options
            got = tuple(got) if isinstance(got, (list, tuple)) else ()
        assert got == want, name
        checked += 1
    assert checked >= 30
