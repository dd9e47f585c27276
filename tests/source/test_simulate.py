"""simulate-tracks: valid samples, POT metadata, determinism, sweeping."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from backtrace.cli import main
from backtrace.source.forward import SimulationConfig
from backtrace.source.simulate import simulate_tracks
from backtrace.tracks import Tracks


def test_cli_writes_valid_sample_and_is_deterministic(tmp_path):
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"t{jobs}.parquet"
        r = CliRunner().invoke(main, ["simulate-tracks", "--pot", "1e10",
                                      "--events", "1500", "--seed", "1",
                                      "--jobs", jobs, "--batch-size", "400",
                                      "-q", "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert "muons per POT" in r.output and "mean momentum" in r.output
        outs.append(out)
    a, b = pd.read_parquet(outs[0]), pd.read_parquet(outs[1])
    pd.testing.assert_frame_equal(a, b)
    t = Tracks.open(outs[0])
    assert t.pot == 1e10 and t.n_rows == len(a) > 10
    assert (a["weight"] > 0).all()
    assert a["z_m"].eq(183.508).all()


def test_sweeper_off_increases_rate_at_straw1():
    """Common random numbers: the same events with the sweeper on and off."""
    rates = {}
    for scale in (1.0, 0.0):
        cfg = SimulationConfig(n_events=3000, seed=2,
                               overrides=(f"sweeper.scale={scale}",))
        rates[scale] = simulate_tracks(cfg, None, progress=False)["muons_per_pot"]
    assert rates[0.0] > 3 * rates[1.0]


def test_bad_source_scale(tmp_path):
    r = CliRunner().invoke(main, ["simulate-tracks", "--set-source", "pions=2",
                                  "--out", str(tmp_path / "t.parquet")])
    assert r.exit_code == 1 and "unknown component 'pions'" in r.output
