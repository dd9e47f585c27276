"""``backtrace simulate-prompt``: files, the forward block, the track
sample for ``run``, one-line errors."""

import json

import pandas as pd
from click.testing import CliRunner

from backtrace.cli import main
from backtrace.tracks import Tracks


def test_simulate_prompt_writes_run_outputs_and_tracks(tmp_path):
    out = tmp_path / "fwd"
    r = CliRunner().invoke(main, ["simulate-prompt", "--events", "300", "-k", "1", "-q",
                                  "-j", "1", "--pot", "1e9", "--seed", "4",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "visible paths at STRAW1" in r.output and "missed by the backward" in r.output
    doc = json.loads((out / "background.json").read_text())
    assert doc["forward_prompt"]["n_events"] == 300
    assert doc["config"]["seed"] == 4 and doc["pot_sample"] == 1e9
    # the auto allocation: a pilot pass, then the importance pass
    assert doc["forward_prompt"]["config"]["importance_round"] is True
    assert [r["label"] for r in doc["mc"]["rounds"]] == [
        "forward prompt, pilot", "forward prompt, importance"]
    for name in ("background.md", "candidates.parquet", "tracks.parquet"):
        assert (out / name).stat().st_size > 0
    tracks = Tracks.open(out / "tracks.parquet")
    assert tracks.pot == 1e9
    df = pd.read_parquet(out / "tracks.parquet")
    assert len(df) == doc["forward_prompt"]["visible_paths"] > 0
    assert {"x_m", "px_gev", "charge", "weight", "event_id"} <= set(df.columns)


def test_simulate_prompt_bad_acceptance(tmp_path):
    r = CliRunner().invoke(main, ["simulate-prompt", "--acceptance-r", "1", "0.5",
                                  "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and "--acceptance-r 1.0 0.5" in r.output


def test_simulate_prompt_single_pass(tmp_path):
    out = tmp_path / "fwd"
    r = CliRunner().invoke(main, ["simulate-prompt", "--events", "100", "-k", "1", "-q",
                                  "-j", "1", "--single-pass", "--first-event", "50",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "background.json").read_text())
    assert doc["forward_prompt"]["config"]["importance_round"] is False
    assert doc["forward_prompt"]["config"]["first_event"] == 50
    assert [r["allocation"]["mode"] for r in doc["mc"]["rounds"]] == ["track"]
