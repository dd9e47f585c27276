"""``backtrace bench``: speed figures against a C driver, on one core."""

from __future__ import annotations

import click

from ._common import console, echo_json


@click.command()
@click.option("--quick", is_flag=True, help="Smaller samples (a few seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench(quick, as_json):
    """Measure transport speed of the Python API against a C driver calling
    PUMAS with the same navigator (built with the system C compiler), and the
    geometry locator against its Python reference. Ratios, not absolute
    times, are the figures to quote (machines are noisy)."""
    from ..bench import run_benchmarks

    report = run_benchmarks(quick=quick)
    if as_json:
        echo_json(report)
        return
    c = console()
    if report["note"]:
        c.print(report["note"])
    for r in report["results"]:
        if "python_per_s" in r:
            line = f"{r['case']:50s} python {r['python_per_s']:10.0f}/s"
            if "c_per_s" in r:
                line += f"   C {r['c_per_s']:10.0f}/s   ratio {r['ratio_python_over_c']:.3f}"
        else:
            line = (f"{r['case']:50s} C {r['c_per_s']:.3g}/s   Python reference "
                    f"{r['python_reference_per_s']:.3g}/s   ratio {r['ratio_c_over_python']:.0f}")
        c.print(line)
    c.print(f"(single core; {report['cpu_count']} cores on this machine)")
