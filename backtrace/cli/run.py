"""``backtrace run`` and ``backtrace report``."""

from __future__ import annotations

import click

from ._common import UserError, console, scheduler_option
from .geometry import geometry_options
from .trace import open_tracks, resolve_jobs


@click.command()
@click.option("--tracks", "tracks_file", required=True, type=click.Path(dir_okay=False),
              help="Single-track file (Parquet, CSV or ROOT).")
@click.option("--columns", multiple=True, metavar="NAME=BRANCH", help="Column mapping.")
@click.option("--tree", default=None, help="TTree name in a ROOT file.")
@click.option("--pot", "pot_sample", type=float, default=None,
              help="POT the track file represents (default: file metadata).")
@click.option("--target-pot", type=float, default=1.4e17, show_default=True,
              help="POT the estimate is normalised to.")
@geometry_options
@click.option("--regions", "regions_file", type=click.Path(dir_okay=False), default=None,
              help="Selection and SR/CR file (default: the estimated NA62 one).")
@click.option("--samples-per-track", "-n", type=click.IntRange(min=1), default=4,
              show_default=True, help="Backward histories per track.")
@click.option("--interactions-per-history", "-k", type=click.IntRange(1, 127), default=4,
              show_default=True, help="Independent forced interactions per backward "
              "history (each weighted 1/K).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=1, show_default=True,
              help="Worker processes (0: all cores; results do not depend on it).")
@click.option("--batch-size", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--prior", type=click.Choice(["energy", "full", "none"]), default="energy",
              show_default=True, help="Source prior of the per-track posterior.")
@click.option("--target-rel-unc", type=float, default=None,
              help="Keep sampling until this relative MC uncertainty (not available yet).")
@click.option("--out", default="result", show_default=True, type=click.Path(file_okay=False),
              help="Output directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scheduler_option
def run(tracks_file, columns, tree, pot_sample, target_pot, geometry_file, overrides,
        regions_file, samples_per_track, interactions_per_history, seed, jobs, batch_size,
        prior, target_rel_unc, out, quiet, scheduler):
    """Estimate the prompt background from single tracks.

    Traces every track back to the dump, forces secondary interactions
    (--interactions-per-history per backward history) in the material
    upstream of and around the decay volume,
    transports the products to the STRAW chambers and MUV3, reconstructs
    two-track vertices and Z_TAX/CDA_TAX, and writes the μ-μ / μ-π / other
    yields in the SR, CR and outside, normalised to --target-pot, with
    statistical and (reweighting) systematic uncertainties.

    \b
    $ backtrace run --tracks examples/sample.parquet --out result/
    """
    from ..geometry import GeometryError
    from ..io import OutputError
    from ..pipeline import RunConfig, run_estimate
    from ..regions import RegionsError
    from ..report import format_value, write_outputs

    if target_rel_unc is not None:
        raise UserError("--target-rel-unc is not available yet: raise "
                        "--samples-per-track or give more tracks")
    tracks = open_tracks(tracks_file, columns, pot_sample, tree)
    config = RunConfig(geometry_file=geometry_file, overrides=tuple(overrides),
                       regions_file=regions_file, pot_target=target_pot,
                       samples_per_track=samples_per_track, seed=seed, prior=prior,
                       interactions_per_history=interactions_per_history)
    try:
        doc = run_estimate(tracks, config, jobs=resolve_jobs(jobs),
                           batch_size=batch_size, progress=not quiet,
                           scheduler=scheduler)
        candidates = doc.pop("_candidates")
        write_outputs(out, doc, candidates)
    except (GeometryError, RegionsError, ValueError, OutputError) as err:
        raise UserError(str(err)) from None
    from rich.table import Table

    t = Table(title=f"prompt background, {target_pot:.3g} POT (value ± stat ± syst; "
              "< = 90% CL)")
    for col in ("region", "mu-mu", "mu-pi", "other"):
        t.add_column(col)
    for region, cats in doc["regions"].items():
        t.add_row(region, *(format_value(cats[c]) for c in ("mu-mu", "mu-pi", "other")))
    c = console()
    c.print(t)
    c.print(f"{sum(doc['tracks'].values())} tracks, {doc['interactions']} forced "
            f"interactions, {doc['candidates']} selected candidates, "
            f"{doc['elapsed_s']:.0f} s → {out}/background.json")


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def report(directory):
    """Re-render tables and plots of a saved result without re-running."""
    from ..report import render

    try:
        paths = render(directory)
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise UserError(f"{directory}: cannot render ({err})") from None
    for p in paths:
        click.echo(f"wrote {p}")
