"""``backtrace run`` / ``backtrace report``: outputs, schema, determinism."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from backtrace.cli import main
from backtrace.tracks import write_tracks


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    from pathlib import Path

    src = Path(__file__).resolve().parent.parent / "examples" / "sample.parquet"
    df = pd.read_parquet(src).head(150)
    path = tmp_path_factory.mktemp("run") / "small.parquet"
    write_tracks(path, df, pot=1e12 * 150 / 1419)
    return path


def _run(path, out, *extra, systematics="none"):
    """``backtrace run`` with one round unless ``extra`` sets a target."""
    one_round = () if "--target-rel-unc" in extra else ("--target-rel-unc", "none")
    r = CliRunner().invoke(main, ["run", "--tracks", str(path), "--out", str(out),
                                  "-q", "-n", "2", "--systematics", systematics, *one_round,
                                  *extra])
    assert r.exit_code == 0, r.output
    return json.loads((out / "background.json").read_text())


def test_run_writes_all_outputs_with_schema(tmp_path, small_sample):
    doc = _run(small_sample, tmp_path / "res")
    for name in ("background.json", "background.md", "background.tex",
                 "background.csv", "ztax_cdatax.png", "distributions.png"):
        assert (tmp_path / "res" / name).stat().st_size > 100
    assert doc["schema_version"] == 1 and doc["pot"] == 1.4e17
    for region in ("SR", "CR", "outside"):
        for cat in ("mu-mu", "mu-pi", "other"):
            entry = doc["regions"][region][cat]
            assert {"value", "stat", "syst", "upper_limit_90", "n_mc"} <= set(entry)
            if entry["n_mc"] == 0:
                assert entry["upper_limit_90"] > 0
    assert sum(doc["tracks"].values()) == 150
    assert {"config", "versions", "systematics"} <= set(doc)
    assert doc["config"]["seed"] == 1 and doc["versions"]["pumas"] == "1.2.3"
    assert "\\toprule" in (tmp_path / "res" / "background.tex").read_text()
    # the whole background table: combinatorial on by default, summary, pyhf model
    for name in ("summary.md", "summary.tex", "summary.csv", "summary.json",
                 "background.pyhf.json", "combinatorial_pairs.parquet", "components.png"):
        assert (tmp_path / "res" / name).stat().st_size > 100
    assert doc["summary"]["components"] == ["combinatorial", "prompt", "upstream_prompt"]
    assert doc["combinatorial"]["sampling"]["tracks"] == 150
    assert doc["summary"]["provenance"]["tracks_sha256"] == doc["config"]["tracks_sha256"]


def test_same_seed_same_numbers_for_jobs_1_and_2(tmp_path, small_sample):
    # with two rounds of histories (2 + 1 per track)
    rounds = ("--target-rel-unc", "1e-6", "--max-samples-per-track", "3")
    a = _run(small_sample, tmp_path / "a", "--jobs", "1", "--batch-size", "50", *rounds)
    b = _run(small_sample, tmp_path / "b", "--jobs", "2", "--batch-size", "30", *rounds)
    assert a["mc"]["samples_per_track"] == 3 and len(a["mc"]["rounds"]) >= 2
    assert a["regions"] == b["regions"]
    assert a["combinatorial"]["regions"] == b["combinatorial"]["regions"]
    assert a["summary"]["regions"] == b["summary"]["regions"]
    assert a["interactions"] == b["interactions"]
    assert a["upper_limit_weight_per_entry"] == b["upper_limit_weight_per_entry"]
    assert [r["total_prompt"] for r in a["mc"]["rounds"]] == \
        [r["total_prompt"] for r in b["mc"]["rounds"]]


@pytest.mark.slow
def test_same_systematics_for_jobs_1_and_2(tmp_path, small_sample):
    a = _run(small_sample, tmp_path / "a", "--jobs", "1", systematics="fast")
    b = _run(small_sample, tmp_path / "b", "--jobs", "2", systematics="fast")
    assert a["regions"] == b["regions"]
    assert a["systematics"]["variations"] == b["systematics"]["variations"]


def test_systematics_tables_and_mc_line(tmp_path, small_sample):
    out = tmp_path / "res"
    r = CliRunner().invoke(main, ["run", "--tracks", str(small_sample), "--out", str(out),
                                  "-q", "-n", "1", "-k", "1", "--systematics", "fast",
                                  "--target-rel-unc", "0.5", "--max-samples-per-track", "2",
                                  "--verbose"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "background.json").read_text())
    names = doc["systematics"]["evaluated"]
    assert "density" in names and "method" in names and "field:B3" in names
    assert "systematic uncertainties" in r.output and "quadrature" in r.output
    for name in ("density", "method", "field:sweepers"):
        assert name in r.output
    md = (out / "background.md").read_text()
    assert "| density |" in md and "| quadrature |" in md and "Monte Carlo:" in md
    tex = (out / "background.tex").read_text()
    assert tex.count("\\toprule") == 2 and "field:B3 &" in tex
    # the target is not reachable with 2 histories per track: the cap stops it
    assert doc["mc"]["stopped_by"] == "max_samples" and doc["mc"]["samples_per_track"] == 2
    flat = " ".join(r.output.split())      # the terminal wraps long lines
    assert "MC: outside/mu-mu" in flat and "total prompt" in flat
    assert "not reached" in flat


def test_default_output_is_one_summary_table(tmp_path, small_sample):
    """Without --verbose the terminal shows the summary table and a few
    lines (precision, P(SR), where the files are); the detail is in files."""
    out = tmp_path / "res"
    r = CliRunner().invoke(main, ["run", "--tracks", str(small_sample), "--out", str(out),
                                  "-q", "--systematics", "none", "--target-rel-unc", "none",
                                  "--no-combinatorial"])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert flat.count("Expected background") == 1
    assert "prompt background," not in flat and "systematic uncertainties" not in flat
    assert "MC: outside/mu-mu" in flat and "--rounds-from" in flat
    assert "background.md" in "".join(r.output.split())     # paths wrap anywhere


def test_report_rerenders(tmp_path, small_sample):
    _run(small_sample, tmp_path / "res")
    before = (tmp_path / "res" / "background.md").read_text()
    (tmp_path / "res" / "background.md").unlink()
    r = CliRunner().invoke(main, ["report", str(tmp_path / "res")])
    assert r.exit_code == 0, r.output
    # same tables from the saved (key-sorted) JSON: regions file order kept
    after = (tmp_path / "res" / "background.md").read_text()
    assert after == before
    table = [line.split(" | ")[0] for line in after.splitlines() if line.startswith("| ")]
    assert table[1:10] == ["| SR"] * 3 + ["| CR"] * 3 + ["| outside"] * 3
    assert "| quadrature" in table        # the systematics table (then per process)
    # a signal for the pyhf workspace, from the command line
    r = CliRunner().invoke(main, ["report", str(tmp_path / "res"), "--signal", "SR=5.2"])
    assert r.exit_code == 0, r.output
    spec = json.loads((tmp_path / "res" / "background.pyhf.json").read_text())
    sr = next(c for c in spec["channels"] if c["name"] == "SR")
    assert next(x for x in sr["samples"] if x["name"] == "signal")["data"] == [5.2]
    r = CliRunner().invoke(main, ["report", str(tmp_path / "res"), "--signal", "XR=1"])
    assert r.exit_code == 1 and "XR" in r.output


def test_missing_pot_is_a_clear_error(tmp_path, small_sample):
    df = pd.read_parquet(small_sample)
    path = write_tracks(tmp_path / "nopot.parquet", df)
    r = CliRunner().invoke(main, ["run", "--tracks", str(path), "--out",
                                  str(tmp_path / "o"), "-q"])
    assert r.exit_code == 1 and "give --pot" in r.output


def test_prompt_boundary_option_moves_the_split(tmp_path, small_sample):
    """--prompt-z-min moves candidates between the prompt and upstream-prompt
    rows; the totals do not change (the loose test selection gives many)."""
    from pathlib import Path

    loose = str(Path(__file__).resolve().parent / "data" / "regions_loose.toml")
    a = _run(small_sample, tmp_path / "a", "--regions", loose)
    b = _run(small_sample, tmp_path / "b", "--regions", loose, "--prompt-z-min", "150")
    assert a["detector"]["prompt_boundary_z_m"] == pytest.approx(105.095)
    assert b["detector"]["prompt_boundary_z_m"] == 150.0
    assert b["config"]["prompt_z_min_m"] == 150.0
    up_a = sum(c["upstream_prompt"] for cats in a["regions"].values() for c in cats.values())
    up_b = sum(c["upstream_prompt"] for cats in b["regions"].values() for c in cats.values())
    total = sum(c["value"] for cats in a["regions"].values() for c in cats.values())
    assert total > 0 and up_b > up_a
    assert sum(c["value"] for cats in b["regions"].values() for c in cats.values()) == \
        pytest.approx(total, rel=1e-12)


def test_the_channel_picks_the_selection_and_must_agree_with_a_file(tmp_path, small_sample):
    from importlib import resources

    mumu = resources.files("backtrace.data") / "regions_na62_mumu.toml"
    r = CliRunner().invoke(main, ["run", "--tracks", str(small_sample), "--out",
                                  str(tmp_path / "x"), "--channel", "ee", "--regions",
                                  str(mumu)])
    assert r.exit_code == 1 and "a selection of the mumu channel, not ee" in r.output
    r = CliRunner().invoke(main, ["run", "--tracks", str(small_sample), "--out",
                                  str(tmp_path / "y"), "--channel", "ee", "--target-cell",
                                  "SR/mu-mu"])
    assert r.exit_code == 1 and "category e-e, other" in r.output
