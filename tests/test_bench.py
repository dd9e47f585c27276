"""``backtrace bench``: runs and reports every figure (no timing assertions)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from backtrace.cli import main


@pytest.mark.slow
def test_bench_quick_json_structure():
    """Slow: compiles the C driver and runs fresh-process measurements."""
    r = CliRunner().invoke(main, ["bench", "--quick", "--json", "--scale", "150",
                                  "--run-tracks", "40", "--forced-tracks", "60"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    cases = {x["case"].split(":")[0] for x in report["results"]}
    assert {"slab", "k12", "geometry locate"} <= cases
    for x in report["results"]:
        for key, value in x.items():
            if key.endswith("_per_s") or key.startswith("ratio"):
                assert value > 0
    forced = report["forced"]
    assert forced["histories"] == 60 * 4 and forced["histories_per_s"] > 0
    assert forced["interactions"] > 0
    run = report["run"]
    assert run["tracks"] == 40 and run["histories"] == 160
    assert run["tracks_per_s"] > 0 and run["peak_rss_mb"] > 50
    assert [(s["tracks"], s["jobs"]) for s in report["scaling"]] == [(150, 1), (150, 2)]
    for s in report["scaling"]:
        assert s["histories"] == 150 and s["tracks_per_s"] > 0 and s["peak_rss_mb"] > 50
    assert report["scaling"][1]["peak_rss_worker_mb"] > 50
    assert report["cpu_count"] >= 1
    alloc = report["allocation"]
    assert alloc["tracks"] == 40
    for mode in ("plain", "plain-trident", "variance-reduced"):
        assert alloc[mode]["elapsed_s"] > 0 and alloc[mode]["figure_of_merit"] >= 0
    assert "ratio_plain" in alloc and "ratio_plain-trident" in alloc


def test_bench_only_runs_the_named_figure():
    """--only forced: the forced-interaction figure alone, nothing else run."""
    r = CliRunner().invoke(main, ["bench", "--only", "forced", "--json",
                                  "--forced-tracks", "20"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["parts"] == ["forced"]
    assert report["forced"]["histories"] == 20 * 4 and report["forced"]["histories_per_s"] > 0
    for other in ("results", "run", "allocation", "scaling"):
        assert other not in report
    bad = CliRunner().invoke(main, ["bench", "--only", "everything"])
    assert bad.exit_code == 2 and "everything" in bad.output
