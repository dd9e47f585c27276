"""The whole background table (backtrace.output.summary) and its outputs (report)."""

import copy
import csv
import io
import math
from pathlib import Path

import pytest

from backtrace.output import report as report
from backtrace.output.summary import build_summary, p_at_least_one

from ..conftest import synthetic_tracks

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """A tiny real prompt estimate and combinatorial estimate of 40 tracks."""
    from backtrace.combinatorial.pairing import CombinatorialConfig, run_combinatorial
    from backtrace.prompt.pipeline import RunConfig, run_estimate
    from backtrace.tracks import Tracks, write_tracks

    path = write_tracks(tmp_path_factory.mktemp("summary") / "t.parquet",
                        synthetic_tracks(40, seed=5), pot=1e9)
    tracks = Tracks.open(path)
    prompt = run_estimate(tracks, RunConfig(samples_per_track=1, interactions_per_history=1),
                          systematics="none", progress=False)
    comb = run_combinatorial(tracks, CombinatorialConfig(
        regions_file=str(DATA / "regions_loose.toml")), progress=False)
    return prompt, comb


def test_p_at_least_one_matches_na62():
    # NA62: 0.016 expected combinatorial events in the SR -> 1.6 %
    assert p_at_least_one(0.016) == pytest.approx(0.0159, abs=5e-5)
    assert p_at_least_one(0.0) == 0.0


def test_summary_columns_add_up(both):
    prompt, comb = both
    doc = dict(prompt.document, combinatorial=comb.document)
    summ = build_summary(doc, prompt.candidates, comb.document, command="backtrace run x")
    for region, cells in summ["regions"].items():
        parts = [cells[c] for c in ("combinatorial", "prompt", "upstream_prompt")]
        assert cells["total"]["value"] == pytest.approx(sum(p["value"] for p in parts))
        assert cells["total"]["stat"] >= max(p["stat"] for p in parts) - 1e-15
        # the combinatorial cell is the opposite-sign one of the estimate
        assert cells["combinatorial"]["value"] == \
            comb.document["regions"]["opposite"][region]["value"]
        for p in parts:   # an empty cell has its limit, a filled one none
            assert (p["upper_limit_90"] is None) == (p["n_mc"] > 0 if "n_mc" in p else True)
    sr = summ["sr"]
    assert sr["p_at_least_one"] == pytest.approx(-math.expm1(-sr["expected"]))
    assert sr["p_with_limits"] >= sr["p_at_least_one"]
    prov = summ["provenance"]
    assert prov["command"] == "backtrace run x" and prov["seed"] == 1
    assert len(prov["tracks_sha256"]) == 64 and "backtrace" in prov["versions"]


def test_total_syst_adds_pot_linearly():
    from backtrace.output.summary import _total

    cells = {"combinatorial": {"value": 2.0, "stat": 0.3}, "prompt": {"value": 1.0},
             "upstream_prompt": {"value": 0.0}, "_stat_both": 0.4}
    comb = {"syst_breakdown": {"pot": 0.4, "window_ns": 0.3}}
    total = _total(cells, comb, {"pot": 0.2, "density": 0.1, "quadrature": 0.22})
    assert total["value"] == 3.0 and total["stat"] == pytest.approx(0.5)
    assert total["syst"] == pytest.approx(math.sqrt(0.6 ** 2 + 0.3 ** 2 + 0.1 ** 2))


def test_outputs_show_the_same_numbers(both, tmp_path):
    prompt, comb = both
    doc = dict(prompt.document, combinatorial=comb.document)
    doc["summary"] = build_summary(doc, prompt.candidates, comb.document, command="c")
    written = {p.name for p in report.write_outputs(tmp_path, doc, prompt.candidates,
                                                    comb.pairs)}
    assert {"summary.md", "summary.tex", "summary.csv", "summary.json",
            "background.pyhf.json", "combinatorial_pairs.parquet", "components.png",
            "combinatorial_ztax_cdatax.png"} <= written
    md = (tmp_path / "summary.md").read_text()
    tex = (tmp_path / "summary.tex").read_text()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "summary.csv").read_text())))
    for region, entries in report.summary_rows(doc):
        line = next(x for x in md.splitlines() if x.startswith(f"| {region} |"))
        assert [c.strip() for c in line.strip("|").split("|")][1:] == \
            [report.format_value(e) for _, e in entries]
        for c, e in entries:
            row = next(r for r in rows if r["region"] == region and r["component"] == c)
            assert float(row["value"]) == pytest.approx(e["value"], rel=1e-12)
    assert "\\toprule" in tex and "\\bottomrule" in tex and "combinatorial" in tex
    assert "NA62 quotes 1.6 %" in md
    # re-rendering from the saved files gives the same summary
    before = (tmp_path / "summary.md").read_text()
    report.render(tmp_path)
    assert (tmp_path / "summary.md").read_text() == before


def test_summary_without_combinatorial(both):
    prompt, _ = both
    doc = copy.deepcopy(prompt.document)
    doc["summary"] = build_summary(doc, prompt.candidates, None)
    assert doc["summary"]["components"] == ["prompt", "upstream_prompt"]
    assert any("not estimated" in n for n in report.summary_notes(doc))
    table = report.summary_terminal(doc)
    assert [c.header for c in table.columns] == ["region", "prompt", "upstream-\nprompt",
                                                 "total"]


def test_summary_table_fits_80_columns(both):
    """The terminal summary of all three components is not cut at 80 columns
    (every line of the table closes with its right border)."""
    from rich.console import Console

    prompt, comb = both
    doc = dict(prompt.document, combinatorial=comb.document)
    doc["summary"] = build_summary(doc, prompt.candidates, comb.document)
    for cells in doc["summary"]["regions"].values():  # the widest numbers the format makes
        for cell in cells.values():
            if isinstance(cell, dict):
                cell.update(value=6.33e4, stat=2.3e4, syst=8.8e4, upper_limit_90=None)
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(report.summary_terminal(doc))
    lines = [ln for ln in console.export_text().splitlines() if ln.strip()][1:]
    assert lines and all(len(ln) <= 80 and ln.rstrip()[-1] in "┓┃┩│┘" for ln in lines)
