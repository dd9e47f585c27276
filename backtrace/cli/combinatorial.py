"""``backtrace combinatorial``: the accidental-pair background alone."""

from __future__ import annotations

import click

from backtrace.cli._common import (
    check_output_dir,
    console,
    geometry_options,
    jobs_option,
    open_tracks,
    resolve_jobs,
    scheduler_option,
    track_options,
    user_errors,
)
from backtrace.combinatorial.pairing import CombinatorialConfig, run_combinatorial
from backtrace.output.report import combinatorial_lines, combinatorial_terminal, write_combinatorial


def spill_options(func):
    """``--spill FILE`` and ``--max-pairs`` (shared by ``run``)."""
    func = click.option("--max-pairs", type=click.IntRange(min=1), default=20_000_000,
                        show_default=True,
                        help="Pairs evaluated at most: beyond, an unbiased subsample "
                        "(each pair kept with probability max/all, weight all/max; the "
                        "sizes are in the output).")(func)
    func = click.option("--spill", "spill_file", type=click.Path(dir_okay=False),
                        default=None, help="Spill-model file: POT per spill, flat top, "
                        "duty factor or a time-structure file, coincidence window, time "
                        "resolution (default: backtrace/data/spill_na62_dump_2021.toml, "
                        "each value with its source or [est]).")(func)
    return func


@click.command()
@track_options
@geometry_options
@click.option("--regions", "regions_file", type=click.Path(dir_okay=False), default=None,
              help="Selection and SR/CR file (default: the estimated NA62 one).")
@spill_options
@click.option("--target-pot", type=float, default=1.4e17, show_default=True,
              help="POT the estimate is normalised to.")
@click.option("--seed", type=int, default=1, show_default=True)
@jobs_option()
@click.option("--batch-size", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Tracks per batch of the single-track transport (does not change "
                   "results).")
@click.option("--out", default="combinatorial", show_default=True,
              type=click.Path(file_okay=False), help="Output directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scheduler_option
def combinatorial(tracks_file, columns, tree, pot, geometry_file, overrides, regions_file,
                  spill_file, max_pairs, target_pot, seed, jobs, batch_size, out, quiet,
                  scheduler):
    """Estimate the combinatorial background: random in-time pairs of single
    tracks of different events.

    Every track is sent forward through the STRAW chambers, LKr and MUV3
    and backward through the decay volume (vetoes, muon identification),
    then every pair of tracks (or an unbiased subsample beyond --max-pairs)
    goes through the prompt estimate's vertex, Z_TAX/CDA_TAX and selection,
    weighted by the expected number of such accidental coincidences in
    --target-pot protons (the spill model). Opposite-sign pairs are the
    estimate, same-sign pairs the validation sample.

    \b
    $ backtrace combinatorial --tracks examples/sample.parquet --out comb/
    writes comb/combinatorial.json, combinatorial_pairs.parquet and plots.
    """
    check_output_dir(out)
    tracks = open_tracks(tracks_file, columns, pot, tree)
    with user_errors():
        config = CombinatorialConfig(geometry_file=geometry_file, overrides=tuple(overrides),
                                     regions_file=regions_file, spill_file=spill_file,
                                     pot_target=target_pot, seed=seed, max_pairs=max_pairs)
        result = run_combinatorial(tracks, config, jobs=resolve_jobs(jobs),
                                   batch_size=batch_size, progress=not quiet,
                                   scheduler=scheduler)
        write_combinatorial(out, result.document, result.pairs)
    c = console()
    c.print(combinatorial_terminal(result.document))
    for line in combinatorial_lines(result.document):
        c.print(line, markup=False)
    c.print(f"{result.document['elapsed_s']:.0f} s → {out}/combinatorial.json")
