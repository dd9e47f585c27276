"""``backtrace combinatorial``: the accidental-pair background alone."""

from __future__ import annotations

import click

from backtrace.api import default
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
from backtrace.combinatorial.pairing import (
    PAIRING_MODES,
    CombinatorialConfig,
    run_combinatorial,
)
from backtrace.output.combinatorial_checks import (
    sensitivity_lines,
    with_same_sign_validation,
    write_checks,
)
from backtrace.output.report import combinatorial_lines, combinatorial_terminal, write_combinatorial


def spill_options(func):
    """``--spill FILE``, ``--max-pairs``, the measured-times options and
    ``--same-sign-data`` (shared by ``run``; defaults from
    :class:`backtrace.Options`)."""
    func = click.option("--same-sign-data", "same_sign_data", type=click.Path(dir_okay=False),
                        default=default("same_sign_data"), metavar="FILE",
                        help="Selected same-sign events of data (Parquet or CSV: z_tax_m, "
                        "cda_tax_m, mass_gev, vertex_z_m; POT in the metadata, else a shape "
                        "comparison) overlaid on the same-sign prediction, with chi2/ndf per "
                        "distribution (combinatorial_same_sign.png, "
                        "same_sign_validation in the JSON).")(func)
    func = click.option("--bursts", "bursts", type=click.Path(dir_okay=False),
                        default=default("bursts"), metavar="FILE",
                        help="Burst table of measured times (CSV or Parquet: burst_id, pot): "
                        "the counted bursts and their POT normalise the pairs (default: the "
                        "track file's bursts and its POT).")(func)
    func = click.option("--pairing-mode", "pairing_mode", type=click.Choice(PAIRING_MODES),
                        default=default("pairing_mode"), show_default=True,
                        help="'bursts': pairs in time within a burst from the tracks' "
                        "burst_id and t_ns (data; map names with --columns), normalised "
                        "by the counted bursts' POT; 'spill-model': every pair weighted "
                        "by the spill model; 'auto': bursts when the file has both "
                        "columns.")(func)
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
                  spill_file, max_pairs, pairing_mode, bursts, same_sign_data, target_pot,
                  seed, jobs, batch_size, out, quiet, scheduler):
    """Estimate the combinatorial background: random in-time pairs of single
    tracks of different events.

    Every track is sent forward through the STRAW chambers, LKr and MUV3
    and backward through the decay volume (vetoes, muon identification),
    then every pair of tracks (or an unbiased subsample beyond --max-pairs)
    goes through the prompt estimate's vertex, Z_TAX/CDA_TAX and selection,
    weighted by the expected number of such accidental coincidences in
    --target-pot protons (the spill model). With measured times (columns
    burst_id and t_ns) the pairs are those in time within a burst instead,
    normalised by the POT of the counted bursts. Opposite-sign pairs are
    the estimate, same-sign pairs the validation sample (--same-sign-data
    overlays data on it). The sensitivity table gives the estimate against
    each input over its range, and what each would have to be to reach the
    published value (information, never a fit).

    \b
    $ backtrace combinatorial --tracks examples/sample.parquet --out comb/
    writes comb/combinatorial.json, combinatorial_pairs.parquet, the
    sensitivity table combinatorial_sensitivity.{md,csv} and plots.
    $ backtrace combinatorial --tracks data.parquet --columns t_ns=time \\
        --bursts bursts.csv --same-sign-data same_sign.parquet --out comb/
    """
    check_output_dir(out)
    tracks = open_tracks(tracks_file, columns, pot, tree)
    with user_errors():
        config = CombinatorialConfig(geometry_file=geometry_file, overrides=tuple(overrides),
                                     regions_file=regions_file, spill_file=spill_file,
                                     pot_target=target_pot, seed=seed, max_pairs=max_pairs,
                                     pairing_mode=pairing_mode, bursts_file=bursts)
        result = run_combinatorial(tracks, config, jobs=resolve_jobs(jobs),
                                   batch_size=batch_size, progress=not quiet,
                                   scheduler=scheduler)
        block = with_same_sign_validation(result.document, result.pairs, same_sign_data)
        write_combinatorial(out, block, result.pairs)
        write_checks(out, block)
    c = console()
    c.print(combinatorial_terminal(block))
    for line in combinatorial_lines(block) + sensitivity_lines(block):
        c.print(line, markup=False)
    c.print(f"{block['elapsed_s']:.0f} s → {out}/combinatorial.json")
