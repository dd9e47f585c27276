"""``backtrace scan`` and ``backtrace optimize``: magnet-setting studies."""

from __future__ import annotations

import click

from backtrace.beamline.geometry import GeometryError, load_geometry
from backtrace.cli._common import (
    UserError,
    check_output_dir,
    console,
    geometry_options,
    jobs_option,
    resolve_jobs,
    scheduler_option,
)
from backtrace.io import OutputError
from backtrace.magnets.scan import ScanConfig, parse_grid, run_scan
from backtrace.magnets.scan import optimize as run_optimize


def point_options(func):
    """Options shared by scan and optimize (what one setting evaluates)."""
    for opt in reversed([
        click.option("--tracks", "tracks_file", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="Measured single-track file for the prompt part "
                     "(its flux is that of its own setting: yields are reweighted by the "
                     "source-model flux ratio). Default: tracks simulated from the dump "
                     "source model for each setting (--source)."),
        click.option("--source", "use_source", is_flag=True,
                     help="Use the dump source model for the tracks (the default)."),
        click.option("--pot", "pot_target", type=float, default=1.4e17, show_default=True,
                     help="POT the yields are normalised to."),
        click.option("--events", type=click.IntRange(min=1), default=20000,
                     show_default=True, help="Source-model MC events per setting."),
        click.option("--samples-per-track", "-n", type=click.IntRange(min=1), default=2,
                     show_default=True, help="Backward histories per track."),
        click.option("--interactions-per-history", "-k", type=click.IntRange(min=1),
                     default=2, show_default=True,
                     help="Forced interactions per backward history."),
        click.option("--rate-only", is_flag=True,
                     help="Only the single-muon rate (no prompt estimate)."),
        click.option("--seed", type=int, default=1, show_default=True,
                     help="One seed for all settings (common random numbers)."),
        jobs_option("Settings evaluated in parallel"),
        click.option("--out", required=True, type=click.Path(file_okay=False),
                     help="Output directory (a rerun skips finished settings)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]):
        func = opt(func)
    return geometry_options(func)


def _config(geometry_file, overrides, tracks_file, use_source, pot_target, events,
            samples_per_track, interactions_per_history, rate_only, seed):
    if tracks_file and use_source:
        raise UserError("give either --tracks FILE or --source, not both")
    return ScanConfig(geometry_file=geometry_file, overrides=tuple(overrides),
                      tracks_file=tracks_file, pot_target=pot_target, events=events,
                      seed=seed, samples_per_track=samples_per_track,
                      interactions_per_history=interactions_per_history,
                      estimate=not rate_only)


def _check_geometry(config, targets):
    """Fail early (one line) on unknown elements or keys."""
    try:
        load_geometry(config.geometry_file, tuple(config.overrides)
                      + tuple(f"{t}=1.0" for t in targets))
    except (GeometryError, ValueError) as err:
        raise UserError(str(err)) from None


@click.command()
@click.option("--set-grid", "grid_specs", multiple=True, required=True,
              metavar="ELEMENT.KEY=LO:HI:N",
              help="A scanned value: N evenly spaced values from LO to HI, or a comma "
              "list (repeat for a 2-D grid), e.g. --set-grid sweeper.scale=0:1.5:7.")
@point_options
@scheduler_option
def scan(grid_specs, out, jobs, quiet, scheduler, **kw):
    """Scan magnet settings: muon rate at STRAW1 and prompt background.

    For every setting of the grid, the single-muon rate per POT at STRAW1
    comes from the dump source model (forward simulation of that setting) and
    the prompt μμ/μπ/other yields in SR/CR from the full estimate. All
    settings share one seed (common random numbers): differences between
    neighbouring settings are reported with their paired uncertainty.
    Writes OUT/scan.json, scan.csv, scan.png; finished settings are kept in
    OUT/points and skipped by a rerun.

    \b
    $ backtrace scan --set-grid sweeper.scale=0:1.5:7 --out scan/
    """
    if len(grid_specs) > 2:
        raise UserError("at most two --set-grid (1-D or 2-D scans)")
    try:
        grids = [parse_grid(g) for g in grid_specs]
    except GeometryError as err:
        raise UserError(str(err)) from None
    config = _config(**kw)
    _check_geometry(config, [t for t, _ in grids])
    check_output_dir(out)
    try:
        doc = run_scan(config, grids, out, jobs=resolve_jobs(jobs), progress=not quiet,
                       scheduler=scheduler)
    except (GeometryError, ValueError, OutputError) as err:
        raise UserError(str(err)) from None
    _print_points(doc["points"], [t for t, _ in grids])
    c = console()
    if doc["tracks_mode_note"]:
        c.print(f"note: {doc['tracks_mode_note']}")
    for d in doc["rate_differences"]:
        c.print(f"  Δrate {d['from']} → {d['to']}: {d['difference']:.3e} ± "
                f"{d['paired_err']:.2e} (paired; independent samples: ± "
                f"{d['independent_err']:.2e})")
    c.print(f"{doc['computed']} settings computed, {doc['reused']} reused, "
            f"{doc['elapsed_s']:.0f} s → {out}/scan.json, scan.csv, scan.png")


def _print_points(points, targets):
    from rich.table import Table

    t = Table(title="settings")
    for col in (*targets, "muons/POT at STRAW1", "prompt total", "SR", "CR",
                "candidates"):
        t.add_column(col)
    for p in points:
        rate = f"{p['rate_per_pot']:.3e} ± {100 * (p['rate_rel_err'] or 0):.0f}%"
        ys = [f"{p[k]:.3g} ± {p[k + ':stat']:.2g}" if k in p else "—"
              for k in ("prompt_total", "prompt_sr", "prompt_cr")]
        t.add_row(*(f"{p['setting'][k]:g}" for k in targets), rate, *ys,
                  str(p.get("candidates", "—")))
    console().print(t)


@click.command()
@click.option("--vary", "vary_specs", multiple=True, required=True,
              metavar="ELEMENT.KEY=LO:HI", help="A varied value and its bounds "
              "(repeatable), e.g. --vary sweeper.scale=0:2.")
@click.option("--objective", type=click.Choice(["rate", "prompt_total", "prompt_sr",
                                                "prompt_cr"]),
              default="rate", show_default=True,
              help="What to minimise: the muon rate at STRAW1 per POT, or the prompt "
              "background (all regions, SR or CR).")
@click.option("--max-evaluations", type=click.IntRange(min=2), default=20,
              show_default=True, help="Settings evaluated at most.")
@point_options
def optimize(vary_specs, objective, max_evaluations, out, jobs, quiet, **kw):
    """Find the magnet setting that minimises an objective.

    Bounded Nelder–Mead (scipy) over the --vary ranges, starting from the
    middle of each range; every setting is evaluated as in `backtrace scan`
    with one seed for all (common random numbers, so the objective is a
    deterministic function of the setting and the simplex follows real
    differences, not MC noise). Writes OUT/optimize.json with the best
    setting, its figures and the path taken, and OUT/optimize.png (the
    objective per evaluation and the settings visited).

    \b
    $ backtrace optimize --vary sweeper.scale=0:2 --objective rate --out opt/
    """
    bounds = {}
    for spec in vary_specs:
        target, _, rng = spec.partition("=")
        try:
            lo, hi = (float(v) for v in rng.split(":"))
        except ValueError:
            raise UserError(f"--vary {spec!r}: expected ELEMENT.KEY=LO:HI") from None
        if not lo < hi:
            raise UserError(f"--vary {spec!r}: need LO < HI")
        bounds[target.strip()] = (lo, hi)
    config = _config(**kw)
    _check_geometry(config, list(bounds))
    check_output_dir(out)
    try:
        doc = run_optimize(config, bounds, objective, out,
                           max_evaluations=max_evaluations, progress=not quiet)
    except (GeometryError, ValueError) as err:
        raise UserError(str(err)) from None
    best = doc["best"]
    c = console()
    c.print(f"best setting after {doc['evaluations']} evaluations: {best['setting']}")
    p = best["point"]
    c.print(f"  muons/POT at STRAW1: {p['rate_per_pot']:.3e} ± "
            f"{100 * (p['rate_rel_err'] or 0):.0f}%")
    if "prompt_total" in p:
        c.print(f"  prompt total: {p['prompt_total']:.3g} ± {p['prompt_total:stat']:.2g}")
    c.print(f"  path and figures → {out}/optimize.json, {out}/optimize.png")
