"""Behaviour every command shares: outputs checked before any work, bad
values as per-row statuses, --jobs 0 by default."""

from __future__ import annotations

import importlib
import json

import pytest
from click.testing import CliRunner

from backtrace.cli import main


@pytest.fixture
def unwritable(tmp_path):
    """A path whose parent is a file: nothing can be written below it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    return blocker / "out"


def _fail_if_called(*args, **kwargs):
    raise AssertionError("the computation started before the output was checked")


@pytest.mark.parametrize("command,target", [
    (["run", "--out"], "backtrace.api.run_estimate"),
    (["trace", "--out"], "backtrace.cli.trace.trace_file"),
    (["simulate-tracks", "--out"], "backtrace.cli.simulate.run"),
])
def test_unwritable_output_fails_before_the_computation(command, target, unwritable,
                                                        sample_file, monkeypatch):
    module, name = target.rsplit(".", 1)
    # the module, not the click command that backtrace.cli exports under its name
    monkeypatch.setattr(importlib.import_module(module), name, _fail_if_called)
    args = [command[0], "--tracks", str(sample_file)] if command[0] != "simulate-tracks" \
        else [command[0]]
    out = unwritable if command[0] == "run" else unwritable.with_suffix(".parquet")
    r = CliRunner().invoke(main, [*args, command[1], str(out), "-q"])
    assert r.exit_code == 1, r.output
    assert "cannot write" in r.output and str(unwritable.parent) in r.output


def test_summary_json_is_checked_too(unwritable, sample_file, tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.import_module("backtrace.cli.trace"), "trace_file",
                        _fail_if_called)
    r = CliRunner().invoke(main, ["trace", "--tracks", str(sample_file), "-q", "--out",
                                  str(tmp_path / "t.parquet"), "--summary-json",
                                  str(unwritable / "s.json")])
    assert r.exit_code == 1 and "cannot write" in r.output


def test_non_numeric_value_is_a_row_status(tmp_path):
    """`charge = plus` in a CSV: that row gets 'non_numeric', the others run."""
    path = tmp_path / "tracks.csv"
    path.write_text("# pot = 1e10\nx_m,y_m,z_m,px_gev,py_gev,pz_gev,charge\n"
                    "0.3,0.1,183.52,0.0021,0.0007,20,1\n"
                    "0.3,0.1,183.52,0.0021,0.0007,20,plus\n"
                    "0.4,0.1,183.52,0.0028,0.0008,30,-1\n")
    summary = tmp_path / "summary.json"
    r = CliRunner().invoke(main, ["trace", "--tracks", str(path), "-q", "-j", "1",
                                  "--out", str(tmp_path / "t.parquet"),
                                  "--summary-json", str(summary)])
    assert r.exit_code == 0, r.output
    counts = json.loads(summary.read_text())["status_counts"]
    assert counts["non_numeric"] == 1 and sum(counts.values()) == 3


@pytest.mark.parametrize("command", ["run", "trace", "simulate-tracks", "scan"])
def test_jobs_default_is_all_cores(command):
    from backtrace.cli import main as group

    opts = {o.name: o for o in group.commands[command].params}
    assert opts["jobs"].default == 0
    assert "all cores" in opts["jobs"].help


def test_too_many_histories_for_the_key_layout_is_a_clear_error(sample_file, tmp_path):
    r = CliRunner().invoke(main, ["run", "--tracks", str(sample_file), "-q", "-j", "1",
                                  "--out", str(tmp_path / "r"), "-k", "2000"])
    assert r.exit_code == 1
    assert "forced interactions per history = 2000" in r.output and "1024" in r.output
