"""``backtrace combinatorial``: files, table, one-line errors."""

import json

from click.testing import CliRunner

from backtrace.cli import main


def test_combinatorial_command_writes_outputs(sample_file, tmp_path):
    out = tmp_path / "comb"
    r = CliRunner().invoke(main, ["combinatorial", "--tracks", str(sample_file), "-q",
                                  "-j", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "opposite-sign (estimate)" in r.output and "same-sign (validation)" in r.output
    assert "cut flow" in r.output
    doc = json.loads((out / "combinatorial.json").read_text())
    assert doc["normalisation"]["pot_sample"] == 1e10
    assert doc["sampling"]["tracks"] == 300
    assert sum(doc["track_status"].values()) == 300
    for name in ("combinatorial_pairs.parquet", "combinatorial_ztax_cdatax.png",
                 "combinatorial_distributions.png"):
        assert (out / name).stat().st_size > 0


def test_bad_spill_file_is_one_line(sample_file, tmp_path):
    bad = tmp_path / "spill.toml"
    bad.write_text("version = 1\n[pot_per_spill]\nvalue = -1\nsource = 'x'\n")
    r = CliRunner().invoke(main, ["combinatorial", "--tracks", str(sample_file), "-q",
                                  "--spill", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "spill.toml: pot_per_spill.value: -1 is out of range (expected a number > 0)" \
        in r.output
