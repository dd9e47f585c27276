"""``backtrace bench``: runs and reports ratios (no timing assertions)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from backtrace.cli import main


def test_bench_quick_json_structure():
    r = CliRunner().invoke(main, ["bench", "--quick", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    cases = {x["case"].split(":")[0] for x in report["results"]}
    assert {"slab", "k12", "geometry locate"} <= cases
    for x in report["results"]:
        for key, value in x.items():
            if key.endswith("_per_s") or key.startswith("ratio"):
                assert value > 0
