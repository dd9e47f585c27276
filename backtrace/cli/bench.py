"""``backtrace bench``: transport speed against a C driver, the forced-
interaction stage, end-to-end ``run``, and scaling with tracks and jobs."""

from __future__ import annotations

import click

from backtrace.bench import PARTS, run_benchmarks
from backtrace.cli._common import console, echo_json


@click.command()
@click.option("--quick", is_flag=True,
              help="Smaller samples (about a minute): scaling at 10^3 and 10^4 "
              "tracks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--scale", "scaling_tracks", type=click.IntRange(min=1), multiple=True,
              metavar="N", help="Track counts of the scaling study (repeatable; "
              "default 10^3, 10^4 with --quick, else also 10^5; e.g. --scale "
              "1000000 for the streaming check).")
@click.option("--run-tracks", type=click.IntRange(min=1), default=None, metavar="N",
              help="Tracks of the end-to-end run (default 300 with --quick, "
              "else 2000).")
@click.option("--forced-tracks", type=click.IntRange(min=1), default=None,
              metavar="N", help="Tracks (4 histories each) of the forced-"
              "interaction figure (default 300 with --quick, else 2000).")
@click.option("--only", "parts", type=click.Choice(PARTS), multiple=True,
              help="Run only this figure (repeatable): transport (a), forced "
              "(b), run (c), scaling (d), allocation (e). Default: all.")
@click.option("--budget", "allocation_budget_s", type=click.FloatRange(min=1.0),
              default=None, metavar="S", help="Seconds of sampling per method in "
              "the figure of merit (e) (default 40 with --quick, else 240).")
def bench(quick, as_json, scaling_tracks, run_tracks, forced_tracks, parts,
          allocation_budget_s):
    """Measure (a) transport speed of the Python API against a C driver
    calling PUMAS with the same navigator (built with the system C
    compiler; single core), and the geometry locator against its Python
    reference; (b) forced-interaction histories/s including the product
    transport; (c) end-to-end `run` tracks/s and peak memory; (d) `trace`
    tracks/s and peak memory against the number of tracks and --jobs 1, 2;
    (e) the figure of merit 1/(σ_rel² t) of the μ-μ yield outside SR/CR of
    the variance-reduced defaults against plain forcing (all processes, and
    the trident alone) within the same time budget, t the CPU time.
    Ratios and trends, not absolute times, are the figures to quote
    (machines are noisy)."""
    report = run_benchmarks(quick=quick, scaling_tracks=scaling_tracks or None,
                            run_tracks=run_tracks, forced_tracks=forced_tracks,
                            parts=parts or PARTS,
                            allocation_budget_s=allocation_budget_s)
    if as_json:
        echo_json(report)
        return
    _print(report)


def _print(report) -> None:
    c = console()
    if report.get("note"):
        c.print(report["note"])
    printers = {"results": _print_transport, "forced": _print_forced, "run": _print_run,
                "allocation": _print_allocation, "scaling": _print_scaling}
    for key, printer in printers.items():
        if key in report:
            printer(c, report[key])
    c.print(f"({report['cpu_count']} cores on this machine; (a), (b), (c), (e) on one core)")


def _print_transport(c, results) -> None:
    from rich.table import Table

    t = Table(title="(a) transport, single core")
    for col in ("case", "python /s", "C /s", "ratio"):
        t.add_column(col, justify="left" if col == "case" else "right")
    for r in results:
        if "python_per_s" in r:
            t.add_row(r["case"], f"{r['python_per_s']:,.0f}",
                      f"{r['c_per_s']:,.0f}" if "c_per_s" in r else "-",
                      f"{r['ratio_python_over_c']:.3f}" if "c_per_s" in r else "-")
        else:
            t.add_row(f"{r['case']} (C vs Python reference)",
                      f"{r['python_reference_per_s']:,.3g}", f"{r['c_per_s']:,.3g}",
                      f"×{r['ratio_c_over_python']:.0f}")
    c.print(t)


def _print_forced(c, f) -> None:
    c.print(f"(b) forced interactions: {f['histories_per_s']:,.0f} histories/s "
            f"({f['histories']} histories, {f['interactions']} interactions, "
            f"{f['products_transported']} products; sampling "
            f"{f['forced_sampling_s']:.2f} s, products {f['product_transport_s']:.2f} s)")


def _print_run(c, r) -> None:
    c.print(f"(c) run: {r['tracks_per_s']:,.1f} tracks/s, {r['histories_per_s']:,.0f} "
            f"histories/s, {r['interactions_per_s']:,.0f} forced interactions/s "
            f"({r['tracks']} tracks, {r['elapsed_s']:.1f} s), peak RSS "
            f"{r['peak_rss_mb']:.0f} MB")


def _print_allocation(c, a) -> None:
    parts = []
    for mode in ("plain", "plain-trident", "variance-reduced"):
        m = a[mode]
        rel = "no candidate" if m["rel_unc"] is None else f"±{100 * m['rel_unc']:.0f} %"
        parts.append(f"{mode} {m['value']:.3g} {rel} in {m['elapsed_s']:.0f} s CPU "
                     f"(FOM {m['figure_of_merit']:.3g}/s)")
    ratios = ", ".join(
        f"/{ref} " + ("undefined (no candidate)" if a[f"ratio_{ref}"] is None
                      else f"×{a[f'ratio_{ref}']:.3g}") for ref in ("plain", "plain-trident"))
    c.print(f"(e) μ-μ outside SR/CR, {a['tracks']} tracks, {a['budget_s']:.0f} s each: "
            f"{'; '.join(parts)}; figure of merit variance-reduced {ratios}")


def _print_scaling(c, scaling) -> None:
    from rich.table import Table

    t = Table(title="(d) trace scaling (1 history/track, states written)")
    for col in ("tracks", "jobs", "time \\[s]", "tracks/s", "peak RSS \\[MB]",
                "worker peak \\[MB]"):
        t.add_column(col, justify="right")
    for s in scaling:
        t.add_row(f"{s['tracks']:,}", str(s["jobs"]), f"{s['elapsed_s']:.1f}",
                  f"{s['tracks_per_s']:,.0f}", f"{s['peak_rss_mb']:.0f}",
                  f"{s['peak_rss_worker_mb']:.0f}" if s["peak_rss_worker_mb"] else "-")
    c.print(t)
