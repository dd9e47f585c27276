"""ordered_map: scheduler parsing, the missing-Dask error, and bit-identical
results of trace / simulate-tracks / run on a Dask LocalCluster (2 worker
processes) and locally."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from backtrace.cli import main
from backtrace.executor import LOCAL_DASK, SchedulerError, ordered_map, parse_scheduler
from backtrace.tracks import Tracks, write_tracks

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample.parquet"


@pytest.mark.parametrize("spec,expected", [
    (None, None), ("", None), ("dask-local", LOCAL_DASK),
    ("dask://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
    ("tcp://node1.cluster:8786", "tcp://node1.cluster:8786"),
])
def test_parse_scheduler(spec, expected):
    assert parse_scheduler(spec) == expected


@pytest.mark.parametrize("spec", ["dask://host", "http://h:1", "tcp://:8786",
                                  "dask://h:port", "local"])
def test_bad_scheduler_is_a_clear_error(spec):
    with pytest.raises(SchedulerError, match="dask://HOST:PORT"):
        parse_scheduler(spec)


def test_bad_scheduler_option_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(main, ["trace", "--tracks", str(SAMPLE), "--out",
                                  str(tmp_path / "t.parquet"), "--scheduler",
                                  "dask://nowhere"])
    assert r.exit_code == 2 and "dask://HOST:PORT" in r.output


def test_missing_distributed_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    with pytest.raises(SchedulerError, match=r"pip install 'backtrace\[dask\]'"):
        ordered_map(abs, [1], jobs=1, scheduler="tcp://127.0.0.1:8786")


def test_local_map_keeps_input_order_with_a_small_window():
    out = list(ordered_map(abs, [-3, 1, -2, 5, -4], jobs=2, window=2))
    assert out == [3, 1, 2, 5, 4]


# ---------------------------------------------------------------------------
# Dask LocalCluster (2 single-threaded worker processes) vs the local run
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_address():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def small_tracks(tmp_path_factory):
    df = pd.read_parquet(SAMPLE).head(120)
    path = tmp_path_factory.mktemp("dask") / "small.parquet"
    write_tracks(path, df, pot=1e12 * 120 / 1419)
    return path


def _trace(tracks, out, *extra):
    r = CliRunner().invoke(main, ["trace", "--tracks", str(tracks), "-n", "2",
                                  "-q", "--batch-size", "25", "--out", str(out),
                                  *extra])
    assert r.exit_code == 0, r.output
    return pd.read_parquet(out)


def test_trace_on_dask_is_identical_to_local(tmp_path, small_tracks, dask_address):
    local = _trace(small_tracks, tmp_path / "local.parquet", "--seed", "3")
    remote = _trace(small_tracks, tmp_path / "dask.parquet", "--seed", "3",
                    "--scheduler", dask_address.replace("tcp://", "dask://"))
    assert len(local) > 5000 and local["track_index"].nunique() == 120
    pd.testing.assert_frame_equal(local, remote)
    # another configuration on the same (already initialised) workers:
    # the per-worker state is rebuilt, not reused
    other = _trace(small_tracks, tmp_path / "dask4.parquet", "--seed", "4",
                   "--scheduler", dask_address)
    pd.testing.assert_frame_equal(
        _trace(small_tracks, tmp_path / "local4.parquet", "--seed", "4"), other)
    assert not other["kinetic_energy_gev"].equals(remote["kinetic_energy_gev"])


def test_simulate_tracks_on_dask_is_identical_to_local(tmp_path, dask_address):
    outs = []
    for extra in ([], ["--scheduler", dask_address]):
        out = tmp_path / f"s{len(outs)}.parquet"
        r = CliRunner().invoke(main, ["simulate-tracks", "--events", "800",
                                      "--batch-size", "200", "--seed", "2", "-q",
                                      "--out", str(out), *extra])
        assert r.exit_code == 0, r.output
        outs.append(pd.read_parquet(out))
    assert len(outs[0]) > 5
    pd.testing.assert_frame_equal(outs[0], outs[1])


def test_run_on_dask_is_identical_to_local(tmp_path, small_tracks, dask_address):
    from backtrace.prompt.pipeline import RunConfig, run_estimate

    config = RunConfig(samples_per_track=2)
    tracks = Tracks.open(small_tracks)
    # (the systematic re-runs go through the same map: test_run checks them
    # for --jobs 1 and 2)
    local_run = run_estimate(tracks, config, batch_size=40, progress=False,
                             systematics="none")
    remote_run = run_estimate(tracks, config, batch_size=40, progress=False,
                              systematics="none", scheduler=dask_address)
    local, remote = local_run.document, remote_run.document
    assert local["interactions"] > 100
    assert json.dumps(local["regions"]) == json.dumps(remote["regions"])
    assert (local["interactions"], local["tracks"]) == \
        (remote["interactions"], remote["tracks"])
    pd.testing.assert_frame_equal(local_run.candidates, remote_run.candidates)
