"""Outputs of an estimate: tables in every format, files, render (backtrace.output.report)."""

from __future__ import annotations

import copy
import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

from backtrace.output import report as report
from backtrace.output.schema import DocumentError, validate_document
from backtrace.prompt.estimate import CATEGORIES

from ..conftest import synthetic_tracks

OUTPUT_FILES = ("background.json", "background.md", "background.tex", "background.csv",
                "candidates.parquet", "ztax_cdatax.png", "distributions.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def real_result(tmp_path_factory):
    """A real (tiny) estimate: 20 tracks, one history each, no re-runs."""
    from backtrace.prompt.pipeline import RunConfig, run_estimate
    from backtrace.tracks import Tracks, write_tracks

    path = write_tracks(tmp_path_factory.mktemp("report") / "t.parquet",
                        synthetic_tracks(20, seed=3), pot=1e9)
    return run_estimate(Tracks.open(path),
                        RunConfig(samples_per_track=1, interactions_per_history=1),
                        systematics="none", progress=False)


def _zone(value, stat, n_mc, ul):
    return {"value": value, "stat": stat, "n_mc": n_mc,
            "upper_limit_90": ul if n_mc == 0 else None}


def _cell(value, stat, syst, ul=None, n_mc=0, n_eff=0.0, prompt=0.0, upstream=0.0,
          zone_stat=(0.0, 0.0), zone_n=(0, 0)):
    return {"value": value, "stat": stat, "syst": syst, "mc": 0.8 * stat,
            "mc_rel": 0.8 * stat / value if value else None,
            "syst_breakdown": {"pot": 0.2 * value}, "upper_limit_90": ul,
            "n_mc": n_mc, "n_eff": n_eff, "prompt": prompt, "upstream_prompt": upstream,
            "zones": {"prompt": _zone(prompt, zone_stat[0], zone_n[0], ul or 2.0),
                      "upstream_prompt": _zone(upstream, zone_stat[1], zone_n[1],
                                               ul or 2.0)}}


@pytest.fixture(scope="module")
def doc(real_result):
    """The real document with hand-set numbers in its cells and a re-run
    systematic variation (still valid against the schema)."""
    d = copy.deepcopy(real_result.document)
    d["regions"]["SR"]["mu-mu"] = _cell(3.21, 0.45, 0.67, n_mc=5, n_eff=4.2,
                                        prompt=3.0, upstream=0.21, zone_stat=(0.44, 0.09),
                                        zone_n=(4, 1))
    d["regions"]["SR"]["mu-pi"] = _cell(0.0, 0.0, 0.0, ul=2.303)
    d["regions"]["SR"]["other"] = _cell(1234.5678, 98.76, 12.5, n_mc=40, n_eff=31.5,
                                        prompt=1000.0, upstream=234.5678,
                                        zone_stat=(90.0, 40.0), zone_n=(30, 10))
    d["regions"]["CR"]["mu-pi"] = _cell(0.0123, 0.0045, 0.00213, n_mc=2, n_eff=1.9,
                                        prompt=0.0123, zone_stat=(0.0045, 0.0),
                                        zone_n=(2, 0))
    d["regions"]["outside"]["other"] = _cell(0.0, 0.0, 0.0, ul=17.5)
    syst = d["systematics"]
    syst["level"] = "fast"
    syst["variations"]["field:MNP33"] = {
        "kind": "rerun", "description": "MNP33 field x 1.05",
        "runs": {"up": {"shift": 0.123, "shift_stat": 0.0456}}}
    syst["evaluated"] = [*syst["evaluated"], "field:MNP33"]
    syst["table"]["field:MNP33"] = {"SR": 0.31, "CR": 0.052, "outside": 0.0, "total": 0.36}
    syst["table"]["quadrature"] = {"SR": 0.67, "CR": 0.09, "outside": 0.0, "total": 0.8}
    return validate_document(d)


def _md_rows(text: str, first_header: str) -> list[list[str]]:
    """Data rows of the Markdown table whose header starts with ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    out = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        out.append([c.strip() for c in line.strip().strip("|").split("|")])
    return out


def _expected_cell(e) -> str:
    return report.format_value(e)


# ---------------------------------------------------------------- formatting

def test_format_value_value_and_limit():
    assert report.format_value(_cell(3.21, 0.45, 0.67)) == "3.21 ± 0.45 ± 0.67"
    assert report.format_value(_cell(1234.5678, 98.76, 12.5)) == "1.23e+03 ± 99 ± 12"
    assert report.format_value(_cell(0.0, 0.0, 0.0, ul=2.303)) == "< 2.3"
    assert report.format_value(_cell(0.0, 0.0, 0.0, ul=22493819.4)) == "< 2.2e+07"
    # a limit wins over the value; a null limit is a measured value
    assert report.format_value({"value": 5.0, "stat": 1.0, "syst": 0.0,
                                "upper_limit_90": 9.9}) == "< 9.9"
    assert report.format_value({"value": 0.0, "stat": 0.0, "syst": 0.0,
                                "upper_limit_90": None}) == "0 ± 0 ± 0"


def test_region_order_follows_regions_file_with_outside_last(doc):
    sorted_doc = json.loads(json.dumps(doc, sort_keys=True))
    assert list(sorted_doc["regions"]) == ["CR", "SR", "outside"]
    assert report.region_order(sorted_doc) == ["SR", "CR", "outside"]
    assert [name for name, _ in report.regions(sorted_doc)] == ["SR", "CR", "outside"]
    assert [(r, c) for r, c, _ in report.rows(sorted_doc)] == \
        [(r, c) for r in ("SR", "CR", "outside") for c in CATEGORIES]


def test_region_order_unlisted_regions_sorted_before_outside():
    cell = _cell(1.0, 0.1, 0.1)
    d = {"config": {"regions": {"region": [{"name": "Z1"}, {"name": "A2"},
                                           {"name": "gone"}]}},
         "regions": {"outside": {}, "b_extra": {}, "A2": {}, "a_extra": {}, "Z1": {}}}
    assert report.region_order(d) == ["Z1", "A2", "a_extra", "b_extra", "outside"]
    # no regions file recorded: sorted, outside last
    assert report.region_order({"regions": {"outside": cell, "SR": cell, "CR": cell}}) == \
        ["CR", "SR", "outside"]


# ---------------------------------------------------------------- tables

def test_markdown_contains_the_numbers(doc):
    md = report.markdown(doc)
    assert md.startswith("# Prompt background, 1.4e+17 POT\n")
    rows = _md_rows(md, "region")
    # per region: prompt, upstream-prompt (value ± stat), total (± stat ± syst)
    assert [r[:2] for r in rows] == [[reg, label] for reg in ("SR", "CR", "outside")
                                     for label in ("prompt", "upstream-prompt", "total")]
    totals = [r for r in rows if r[1] == "total"]
    for row, (region, cats) in zip(totals, report.regions(doc)):
        assert row[2:] == [_expected_cell(cats[c]) for c in CATEGORIES]
    assert rows[0] == ["SR", "prompt", "3 ± 0.44", "< 2.3", "1e+03 ± 90"]
    assert rows[1] == ["SR", "upstream-prompt", "0.21 ± 0.09", "< 2.3", "235 ± 40"]
    assert rows[2] == ["SR", "total", "3.21 ± 0.45 ± 0.67", "< 2.3", "1.23e+03 ± 99 ± 12"]
    assert rows[3][3] == "0.0123 ± 0.0045" and rows[4][3] == "< 2"
    assert rows[5][3] == "0.0123 ± 0.0045 ± 0.0021"
    assert rows[8][4] == "< 18"
    srows = _md_rows(md, "variation")
    names = [r[0] for r in srows]
    assert names[-1] == "quadrature" and names[-2] == "field:MNP33"
    assert "pot" in names
    mnp = srows[-2]
    assert mnp[1:5] == ["0.31", "0.052", "0", "0.36"]
    assert mnp[5] == "MNP33 field x 1.05" and mnp[6] == "up +0.12 ± 0.046"
    assert srows[-1][1:6] == ["0.67", "0.09", "0", "0.8", "combined in quadrature"]
    assert f"Tracks per status: {doc['tracks']}." in md
    assert f"Systematics evaluated: {', '.join(doc['systematics']['evaluated'])};" in md
    assert "; 1 histories/track; one pilot round only: add --target-rel-unc 0.05" in md
    assert md.rstrip().endswith("; forcing allocation pilot: equal draws per process within "
                                "each track.")


def test_latex_booktabs_and_numbers(doc):
    tex = report.latex(doc)
    lines = tex.splitlines()
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 2
    assert tex.count("\\toprule") == tex.count("\\bottomrule") == 2
    # header rule of each table, between the regions (2), before quadrature
    assert tex.count("\\midrule") == 5
    for begin, end in (("\\begin{tabular}", "\\end{tabular}"), ("\\toprule", "\\bottomrule")):
        depth = 0
        for line in lines:
            depth += line.startswith(begin) - line.startswith(end)
            assert depth in (0, 1)
        assert depth == 0
    assert lines[0] == "\\begin{tabular}{llccc}"
    # exponents as powers of ten, never "e+03" (LaTeX would print "1.23e + 03")
    assert "SR & prompt & $3 \\pm 0.44$ & $< 2.3$ & $1 \\times 10^{3} \\pm 90$ \\\\" \
        in lines
    assert " & upstream-prompt & $0.21 \\pm 0.09$ & $< 2.3$ & $235 \\pm 40$ \\\\" in lines
    assert " & total & $3.21 \\pm 0.45 \\pm 0.67$ & $< 2.3$ & " \
        "$1.23 \\times 10^{3} \\pm 99 \\pm 12$ \\\\" in lines
    assert "e+" not in tex and "e-" not in tex.replace("\\begin", "")
    assert any(line.startswith(" & total & $< ") and "$0.0123 \\pm 0.0045 \\pm 0.0021$"
               in line for line in lines)
    assert "\\begin{tabular}{lcccc}" in lines  # SR, CR, outside, total
    assert "field:MNP33 & $0.31$ & $0.052$ & $0$ & $0.36$ \\\\" in lines
    assert "scale:pair\\_production & $0$ & $0$ & $0$ & $0$ \\\\" in lines
    quad = lines.index("quadrature & $0.67$ & $0.09$ & $0$ & $0.8$ \\\\")
    assert lines[quad - 1] == "\\midrule" and lines[quad + 1] == "\\bottomrule"
    # every table row has as many cells as its column spec
    for line in lines:
        if line.endswith("\\\\"):
            n = line.count("&") + 1
            assert n == 5


def test_latex_escapes_region_names(doc):
    odd = dict(doc, regions={"SR_low&high": doc["regions"]["SR"]})
    assert "SR\\_low\\&high & " in report.latex(odd)


def test_tex_num_exponent():
    assert report._tex_num(22493819.4) == "2.2 \\times 10^{7}"
    assert report._tex_num(0.000123) == "0.00012"
    assert report._tex_num(1.5e-7) == "1.5 \\times 10^{-7}"


def test_csv_one_row_per_cell_numbers_round_trip(doc):
    text = report.csv_text(doc)
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 3 * len(CATEGORIES)
    assert list(table[0]) == ["region", "category", "value", "stat", "syst",
                              "upper_limit_90", "n_mc", "n_eff", "mc", "prompt", "prompt_stat",
                              "prompt_upper_limit_90", "upstream_prompt",
                              "upstream_prompt_stat", "upstream_prompt_upper_limit_90"]
    assert [(r["region"], r["category"]) for r in table] == \
        [(r, c) for r in ("SR", "CR", "outside") for c in CATEGORIES]
    for row in table:
        e = doc["regions"][row["region"]][row["category"]]
        for key in ("value", "stat", "syst", "n_eff", "mc", "prompt", "upstream_prompt"):
            assert float(row[key]) == e[key]  # exact: repr round trip
        assert int(row["n_mc"]) == e["n_mc"]
        for zone in ("prompt", "upstream_prompt"):
            z = e["zones"][zone]
            assert float(row[zone]) == z["value"] and float(row[f"{zone}_stat"]) == z["stat"]
            limit = row[f"{zone}_upper_limit_90"]
            assert (limit == "") == (z["upper_limit_90"] is None)
        if e["upper_limit_90"] is None:
            assert row["upper_limit_90"] == ""
        else:
            assert float(row["upper_limit_90"]) == e["upper_limit_90"]
    sr = table[0]
    assert (float(sr["value"]), float(sr["n_eff"]), int(sr["n_mc"])) == (3.21, 4.2, 5)
    assert (float(sr["prompt_stat"]), float(sr["upstream_prompt_stat"])) == (0.44, 0.09)


def _filled(rows: list[list[str]]) -> list[list[str]]:
    """Rows with an empty first cell given the region of the row above
    (the terminal prints a region's name on its first row only)."""
    out = []
    for r in rows:
        out.append([r[0] or out[-1][0], *r[1:]] if out else r)
    return out


def _rich_rows(table) -> list[list[str]]:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(table)
    rows = []
    for line in buf.getvalue().splitlines():
        for bar in ("┃", "│"):  # header, body
            if line.startswith(bar):
                rows.append([c.strip() for c in line.strip().strip(bar).split(bar)])
    return rows


def test_terminal_tables_equal_markdown_rows(doc):
    from rich.table import Table

    tables = report.terminal_tables(doc)
    assert len(tables) == 2 and all(isinstance(t, Table) for t in tables)
    md = report.markdown(doc)
    yields = _rich_rows(tables[0])
    assert yields[0] == ["region", "", *CATEGORIES]
    assert _filled(yields[1:]) == _md_rows(md, "region")
    assert [r[1] for r in yields[1:4]] == ["prompt", "upstream-prompt", "total"]
    syst = _rich_rows(tables[1])
    md_syst = _md_rows(md, "variation")
    assert syst[0] == ["variation", "SR", "CR", "outside", "total", "shift ± MC"]
    # terminal: variation, columns, shift; Markdown: the same plus 'what'
    assert syst[1:] == [r[:5] + [r[6]] for r in md_syst]
    assert len(syst) - 1 == len(md_syst) == len(doc["systematics"]["table"])
    assert syst[-2][-1] == "up +0.12 ± 0.046"


def test_terminal_tables_no_syst_table_at_level_none(real_result):
    tables = report.terminal_tables(real_result.document)
    assert len(tables) == 1
    rows = _filled(_rich_rows(tables[0])[1:])
    assert rows == _md_rows(report.markdown(real_result.document), "region")
    ul = real_result.document["regions"]["SR"]["mu-mu"]["upper_limit_90"]
    assert rows[2][:3] == ["SR", "total", f"< {ul:.2g}"]


def test_summary_and_mc_lines(real_result):
    d = real_result.document
    line = report.summary_line(d, "outdir")
    assert line.startswith(f"{sum(d['tracks'].values())} tracks, {d['interactions']} "
                           f"forced interactions, {d['candidates']} selected candidates")
    assert sum(d["tracks"].values()) == 20
    assert line.endswith("→ outdir/background.json")
    mc = report.mc_line(d)
    assert mc.startswith("outside/mu-mu ") and "; 1 histories/track" in mc
    assert "one pilot round only: add --target-rel-unc 0.05" in mc  # no target, no rel. error
    assert mc.endswith("; forcing allocation pilot: equal draws per process within each track")


# ---------------------------------------------------------------- files

def _candidates(n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame({
        "interaction": np.arange(n), "region": rng.choice(["SR", "CR", "outside"], n),
        "category": [CATEGORIES[i % 3] for i in range(n)],
        "zone": rng.choice(["prompt", "upstream_prompt"], n),
        "process": rng.choice(["photonuclear", "mumu_pair"], n),
        "weight": rng.uniform(0.1, 2.0, n), "track_index": rng.integers(0, 20, n),
        "sample_index": np.zeros(n, np.int64), "z_tax_m": rng.uniform(0, 50, n),
        "cda_tax_m": rng.uniform(0, 0.2, n), "vertex_z_m": rng.uniform(105, 180, n),
        "cda_m": rng.uniform(0, 0.05, n), "mass_gev": rng.uniform(0.2, 1.5, n),
        "p1_gev": rng.uniform(5, 100, n), "p2_gev": rng.uniform(5, 100, n),
        "muon_ids": rng.integers(0, 3, n), "history_raw": rng.uniform(0, 1, n)})


@pytest.fixture(scope="module")
def written(doc, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "result"
    cands = _candidates()
    paths = report.write_outputs(out, {**doc, "_private": object()}, cands)
    return out, paths, cands


def test_write_outputs_files(written, doc):
    out, paths, cands = written
    assert sorted(p.name for p in paths) == sorted(OUTPUT_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)  # no temp files
    back = json.loads((out / "background.json").read_text())
    assert "_private" not in back
    assert back == json.loads(json.dumps(doc))
    assert (out / "background.md").read_text() == report.markdown(doc)
    assert (out / "background.tex").read_text() == report.latex(doc)
    assert (out / "background.csv").read_bytes().decode() == report.csv_text(doc)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "candidates.parquet"), cands)
    for png in ("ztax_cdatax.png", "distributions.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000


def test_render_recreates_outputs_from_saved_json(written):
    out, _, cands = written
    before = {n: (out / n).read_bytes() for n in ("background.md", "background.tex",
                                                   "background.csv", "background.json")}
    for name in ("background.md", "background.tex", "background.csv",
                 "ztax_cdatax.png", "distributions.png"):
        (out / name).unlink()
    paths = report.render(out)
    assert sorted(p.name for p in paths) == sorted(OUTPUT_FILES)
    for name, text in before.items():
        # tables from the sorted-key JSON have the regions file order again
        assert (out / name).read_bytes() == text, name
    assert (out / "ztax_cdatax.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "distributions.png").read_bytes()[:8] == PNG_MAGIC
    pd.testing.assert_frame_equal(pd.read_parquet(out / "candidates.parquet"), cands)
    assert report.load_document(out) == json.loads(before["background.json"])


def test_write_outputs_without_candidates(real_result, tmp_path):
    paths = report.write_outputs(tmp_path, real_result.document, None)
    names = sorted(p.name for p in paths)
    assert names == sorted(set(OUTPUT_FILES) - {"candidates.parquet"})
    assert not (tmp_path / "candidates.parquet").exists()
    assert (tmp_path / "ztax_cdatax.png").read_bytes()[:8] == PNG_MAGIC


def test_write_outputs_invalid_document_writes_nothing(doc, tmp_path):
    bad = copy.deepcopy(doc)
    bad["regions"]["SR"]["mu-mu"]["stat"] = -1.0
    out = tmp_path / "res"
    with pytest.raises(DocumentError, match=r"regions\.SR\.mu-mu\.stat"):
        report.write_outputs(out, bad, _candidates())
    assert not out.exists() or list(out.iterdir()) == []


def _corrupt(written_dir, tmp_path, mutate=None, text=None):
    out = tmp_path / "copy"
    out.mkdir()
    doc = json.loads((written_dir / "background.json").read_text())
    if mutate is not None:
        mutate(doc)
        text = json.dumps(doc)
    (out / "background.json").write_text(text)
    return out


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("pot"), r"\(top level\): 'pot' is a required property"),
    (lambda d: d.update(schema_version=99), r"schema version 99 is unknown"),
    (lambda d: d.pop("schema_version"), r"no integer schema_version"),
    (lambda d: d["regions"]["CR"]["other"].pop("n_mc"),
     r"regions\.CR\.other: 'n_mc' is a required property"),
    (lambda d: d["config"].update(tracks_sha256="nothex"), r"config\.tracks_sha256"),
])
def test_load_and_render_corrupted_json(written, tmp_path, mutate, message):
    out = _corrupt(written[0], tmp_path, mutate)
    with pytest.raises(DocumentError, match=message) as err:
        report.load_document(out)
    assert isinstance(err.value, ValueError)
    if "schema version" not in message and "schema_version" not in message:
        assert str(out / "background.json") in str(err.value)
    with pytest.raises(DocumentError, match=message):
        report.render(out)
    assert sorted(p.name for p in out.iterdir()) == ["background.json"]


def test_load_invalid_json(written, tmp_path):
    out = _corrupt(written[0], tmp_path, text='{"schema_version": 1, "pot": ')
    with pytest.raises(DocumentError, match=rf"{out / 'background.json'}: not valid JSON"):
        report.load_document(out)
    with pytest.raises(DocumentError, match="not valid JSON"):
        report.render(out)
    assert sorted(p.name for p in out.iterdir()) == ["background.json"]


@pytest.fixture(scope="module")
def ee_doc(tmp_path_factory):
    """A real tiny e+e− estimate (the channel's categories) with a
    factorised section computed from hand-made candidates."""
    from backtrace.prompt.factorised import factorised_estimate
    from backtrace.prompt.pipeline import RunConfig, run_estimate
    from backtrace.tracks import Tracks, write_tracks

    path = write_tracks(tmp_path_factory.mktemp("report_ee") / "t.parquet",
                        synthetic_tracks(10, seed=3), pot=1e9)
    d = copy.deepcopy(run_estimate(Tracks.open(path), RunConfig(
        samples_per_track=1, interactions_per_history=1, channel="ee"),
        systematics="none", progress=False).document)
    cands = pd.DataFrame({"track_index": [0, 1, 2], "region": ["SR", "CR", "outside"],
                          "weight": [0.01, 0.02, 0.07], "eta_veto_survival": 0.01})
    d["factorised"] = factorised_estimate(cands, ["SR", "CR", "outside"], ["LAV*", "ANTI0"])
    return validate_document(d)


def test_an_ee_document_has_its_channel_columns_and_the_factorised_estimate(ee_doc, tmp_path):
    assert report.categories(ee_doc) == ("e-e", "other")
    assert set(ee_doc["regions"]["SR"]) == {"e-e", "other"}
    md = report.markdown(ee_doc)
    assert "| region | | e-e | other |" in md and "μ-μ" not in md
    assert "## Factorised estimate (η from LAV*, ANTI0)" in md
    assert "N(in FV, PID) before the η vetoes: 10 ± " in md
    assert "| SR | 0.1 ± 0.12 | 0.01 ± 0.01 | 0.01 ± 0.01 | 1 ± " in md   # it factorises
    assert "Region & & $e$-$e$ & other" in report.latex(ee_doc)
    assert {r[1] for r in report.rows(ee_doc)} == {"e-e", "other"}
    titles = [t.title for t in report.terminal_tables(ee_doc)]
    assert any(t.startswith("factorised vs direct") for t in titles)
    report.write_outputs(tmp_path, ee_doc)
    assert "e-e" in (tmp_path / "background.csv").read_text()


def test_negligible_values_are_shown_as_about_zero_in_tables_only():
    """A value below 1e-6 of its column's total prints as '≈ 0' (terminal,
    Markdown, LaTeX); limits and resolvable values print as numbers."""
    assert report.format_value({"value": 1.83e-32, "stat": 1.8e-32}, scale=13.5) == "≈ 0"
    assert report.format_value({"value": 1.5e-4, "stat": 1.5e-4}, scale=13.5) == \
        "0.00015 ± 0.00015"
    assert report.format_value({"value": 0.0, "stat": 0.0, "upper_limit_90": 0.003},
                               scale=13.5) == "< 0.003"
    assert report.format_value({"value": 1.83e-32, "stat": 1.8e-32}) == "1.83e-32 ± 1.8e-32"
    assert report._tex_entry({"value": 1e-30, "stat": 1e-30, "syst": 0.0}, 1.0) == \
        "$\\approx 0$"


def test_summary_cells_scale_each_column_by_its_own_total(real_result):
    doc = copy.deepcopy(real_result.document)
    doc["summary"] = {"components": ["combinatorial", "prompt", "upstream_prompt"],
                      "regions": {r: {c: {"value": v, "stat": 0.1 * v, "syst": 0.0,
                                          "upper_limit_90": None}
                                      for c, v in (("combinatorial", 6e4), ("prompt", p),
                                                   ("upstream_prompt", u),
                                                   ("total", 6e4 + p + u))}
                                  for r, p, u in (("SR", 1.5e-4, 1e-30), ("CR", 1.0, 1.0),
                                                  ("outside", 14.0, 10.0))}}
    cells = {row["region"]: row for row in report.summary_cells(doc)}
    # 1.5e-4 is small next to the combinatorial, not next to the prompt column
    assert cells["SR"]["prompt"] == "0.00015 ± 1.5e-05 ± 0"
    assert cells["SR"]["upstream-prompt"] == "≈ 0"
    assert cells["CR"]["upstream-prompt"] == "1 ± 0.1 ± 0"
