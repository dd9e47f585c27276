"""``backtrace run`` and ``backtrace report``."""

from __future__ import annotations

import click

from backtrace.cli._common import (
    UserError,
    check_output_dir,
    console,
    geometry_options,
    jobs_option,
    open_tracks,
    resolve_jobs,
    scheduler_option,
    user_errors,
)
from backtrace.cli.combinatorial import spill_options
from backtrace.combinatorial.pairing import CombinatorialConfig, run_combinatorial
from backtrace.combinatorial.spill import load_spill_model
from backtrace.interactions import CHANNEL_PROCESSES
from backtrace.output.report import (
    combinatorial_lines,
    combinatorial_terminal,
    mc_line,
    p_sr_line,
    render,
    selection_line,
    summary_line,
    summary_terminal,
    terminal_tables,
    write_outputs,
)
from backtrace.output.summary import build_summary
from backtrace.prompt.allocation import parse_allocation
from backtrace.prompt.pipeline import RunConfig, run_estimate
from backtrace.prompt.rounds import parse_target_cell
from backtrace.regions import load_regions


def forcing_options(func):
    """The selection and forcing options shared by ``run`` and
    ``simulate-prompt`` (the same estimate, backward or forward)."""
    for option in reversed(_FORCING_OPTIONS):
        func = option(func)
    return func


_FORCING_OPTIONS = [
    click.option("--channel", type=click.Choice(["mumu", "ee"]), default=None,
                 help="Final state searched for: 'mumu' (NA62's A' -> mu+mu- selection, the "
                 "default) or 'ee' (the A' -> e+e- selection: cone fiducial volume, electron "
                 "identification in the LKr, MUV3/ANTI0/LAV vetoes, upstream-activity rule, "
                 "and NA62's factorised estimate next to the direct one). Picks the packaged, "
                 "estimated NA62 selection of the channel; with --regions, the file must be of "
                 "this channel."),
    click.option("--regions", "regions_file", type=click.Path(dir_okay=False), default=None,
                 help="Selection and SR/CR file (default: the estimated NA62 one of the "
                 "channel)."),
    click.option("--interactions-per-history", "-k", type=click.IntRange(min=1),
                 default=8, show_default=True, help="Forced interactions per history "
                 "(run: per back-traced history; simulate-prompt: per forward path), on "
                 "average (the allocation shares them among histories and strata)."),
    click.option("--processes", "processes", multiple=True, metavar="NAME",
                 help="Force only these processes (repeatable; default: the channel's, "
                 "photonuclear, pair_production, mumu_pair, bremsstrahlung, knock_on, and "
                 "for ee also photon_conversion). Estimates over disjoint sets add up; a "
                 "rare process forced alone gets every history."),
    click.option("--prompt-z-min", "prompt_z_min_m", type=float, default=None,
                 metavar="Z_M", help="Boundary [m] between upstream-prompt (interactions "
                 "upstream of it) and prompt (at or downstream of it) in every table "
                 "(default: the geometry's decay-volume entrance, 105.095 m for NA62)."),
    click.option("--allocation", default="auto", show_default=True, metavar="MODE|P=S,...",
                 help="How forced interactions are shared among histories and strata "
                 "(process × volume × muon-energy band; each draw weighted by what it "
                 "represents: unbiased whatever the choice). 'auto': a pilot round (every "
                 "track the same draws, equal per process), then each round the importance "
                 "allocation measured on the target cell (draws in proportion to track "
                 "weight × path importance × the stratum's selected outcome, 10 % kept on "
                 "the pilot rule); 'uniform': equal shares per process; 'natural': the "
                 "former method (points in proportion to the cross sections, the rare "
                 "trident is then almost never forced); or explicit shares, e.g. "
                 "mumu_pair=0.5,bremsstrahlung=0.5."),
    click.option("--transfer-bias/--no-transfer-bias", default=True, show_default=True,
                 help="Importance-sample the energy transfer towards transfers that can "
                 "give a selected track (above 0.9 × the selection's momentum minimum; "
                 "10 % of the draws natural)."),
    click.option("--final-states-per-point", type=click.IntRange(min=1), default=1,
                 show_default=True, help="Final states sampled at each drawn interaction "
                 "point (splitting, each weighted as one draw)."),
]


def forcing_fields(selection, interactions_per_history, processes, prompt_z_min_m,
                   allocation, transfer_bias, final_states_per_point) -> dict:
    """The :class:`backtrace.prompt.config.RunConfig` fields of :func:`forcing_options`
    (``selection``: the loaded regions, for the channel)."""
    return dict(channel=selection.channel, interactions_per_history=interactions_per_history,
                processes=tuple(processes) or None, prompt_z_min_m=prompt_z_min_m,
                allocation=parse_allocation(
                    allocation, tuple(processes) or CHANNEL_PROCESSES[selection.channel]),
                transfer_bias=transfer_bias, final_states_per_point=final_states_per_point)


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
@forcing_options
@click.option("--samples-per-track", "-n", type=click.IntRange(min=1), default=4,
              show_default=True, help="Backward histories per track.")
@click.option("--track-allocation", type=click.Choice(["weight", "uniform"]),
              default="weight", show_default=True,
              help="How rounds after the first (--target-rel-unc) share new histories "
              "among the tracks: 'weight', the tracks furthest below their share of "
              "the importance (input weight × what their paths can give the target "
              "cell, with --allocation auto; else the input weight) double theirs; "
              "'uniform', every track the same number.")
@click.option("--target-cell", default=None, metavar="REGION/CATEGORY",
              help="The cell whose relative MC uncertainty --target-rel-unc aims at and "
              "'auto' optimises ('total': all cells). Default: outside/mu-mu for the mumu "
              "channel, total for ee.")
@click.option("--seed", type=int, default=1, show_default=True)
@jobs_option()
@click.option("--batch-size", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--prior", type=click.Choice(["energy", "full", "none"]), default="energy",
              show_default=True, help="Source prior of the per-track posterior.")
@click.option("--systematics", type=click.Choice(["none", "fast", "full"]), default="fast",
              show_default=True, help="Systematic re-runs (common random numbers): "
              "'none' (POT and cross-section scales by reweighting only), 'fast' (field "
              "scale of each magnet group +5 %, density +3 %, MC method; shifts taken "
              "as symmetric), 'full' (± for fields and density).")
@click.option("--target-rel-unc", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Add rounds of histories until the relative MC uncertainty of the "
              "--target-cell is at most this (e.g. 0.05), or a cap is hit.")
@click.option("--max-samples-per-track", type=click.IntRange(min=1), default=16384,
              show_default=True, help="Cap of the histories per track with --target-rel-unc "
              "(at most 16384: the random-key layout, backtrace.rng).")
@click.option("--max-time", "max_time_s", type=click.FloatRange(min=0, min_open=True),
              default=600.0, show_default=True,
              help="Time cap [s] of the sampling rounds with --target-rel-unc "
              "(systematic re-runs come on top: each repeats the rounds).")
@click.option("--combinatorial/--no-combinatorial", "with_combinatorial", default=True,
              show_default=True, help="Also estimate the combinatorial background (random "
              "in-time pairs of the single tracks; see 'backtrace combinatorial').")
@spill_options
@click.option("--out", default="result", show_default=True, type=click.Path(file_okay=False),
              help="Output directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scheduler_option
def run(tracks_file, columns, tree, pot_sample, target_pot, geometry_file, overrides,
        channel, regions_file, samples_per_track, interactions_per_history, processes,
        prompt_z_min_m, allocation, transfer_bias, final_states_per_point, track_allocation,
        target_cell, seed, jobs, batch_size, prior, systematics, target_rel_unc,
        max_samples_per_track, max_time_s, with_combinatorial, spill_file, max_pairs, out,
        quiet, scheduler):
    """Estimate the prompt background from single tracks.

    Traces every track back to the dump, forces secondary interactions
    (--interactions-per-history per backward history) in the material
    upstream of and around the decay volume, transports the products
    through the detector, applies the selection's vetoes (the LAVs for
    μ+μ−, as weights with each detector's inefficiency) and muon
    identification (MUV3, LKr E/p), reconstructs two-track vertices and
    Z_TAX/CDA_TAX, and writes the μ-μ / μ-π / other yields (e-e / other with
    --channel ee) in the SR, CR and outside, prompt and upstream-prompt,
    normalised to --target-pot, with statistical and systematic
    uncertainties (reweighting, and re-runs with common random numbers per
    --systematics). Every particle is taken as in time (no timing is
    simulated).

    \b
    $ backtrace run --tracks examples/sample.parquet --out result/
    $ backtrace run --tracks examples/sample.parquet --target-rel-unc 0.05 --systematics none
    $ backtrace run --tracks examples/sample.parquet --channel ee --out result-ee/
    """
    check_output_dir(out)
    tracks = open_tracks(tracks_file, columns, pot_sample, tree)
    log = None if quiet else (lambda line: click.echo(line, err=True))
    with user_errors():
        selection = load_regions(regions_file, channel)
        if target_cell is None:
            target_cell = "total" if selection.channel == "ee" else "outside/mu-mu"
        cell = parse_target_cell(target_cell, selection.categories)
        config = RunConfig(geometry_file=geometry_file, overrides=tuple(overrides),
                           regions_file=regions_file, pot_target=target_pot,
                           samples_per_track=samples_per_track, seed=seed, prior=prior,
                           track_allocation=track_allocation,
                           **forcing_fields(selection, interactions_per_history, processes,
                                            prompt_z_min_m, allocation, transfer_bias,
                                            final_states_per_point))
        comb_config = CombinatorialConfig(
            geometry_file=geometry_file, overrides=tuple(overrides), regions_file=regions_file,
            spill_file=spill_file, pot_target=target_pot, seed=seed, max_pairs=max_pairs)
        if with_combinatorial and selection.channel != "mumu":
            # single tracks are muons: their random pairs only fake a μ+μ− pair
            with_combinatorial = False
            if log is not None:
                log(f"combinatorial estimate: implemented for the mumu selection only, "
                    f"skipped for the {selection.channel} channel")
        if with_combinatorial:
            load_spill_model(spill_file)            # a bad spill file fails before the run
        result = run_estimate(tracks, config, jobs=resolve_jobs(jobs),
                              batch_size=batch_size, progress=not quiet,
                              systematics=systematics, target_rel_unc=target_rel_unc,
                              max_samples_per_track=max_samples_per_track,
                              max_time_s=max_time_s, scheduler=scheduler, target_cell=cell,
                              log=log)
        doc, pairs = dict(result.document), None
        if with_combinatorial:
            comb = run_combinatorial(tracks, comb_config, jobs=resolve_jobs(jobs),
                                     progress=not quiet, scheduler=scheduler, log=log)
            doc["combinatorial"], pairs = comb.document, comb.pairs
        doc["summary"] = build_summary(doc, result.candidates, doc.get("combinatorial"),
                                       command=command_line())
        write_outputs(out, doc, result.candidates, pairs)
    c = console()
    for table in terminal_tables(doc):
        c.print(table)
    c.print(selection_line(doc), markup=False)
    c.print(f"MC: {mc_line(doc)}")
    if with_combinatorial:
        c.print(combinatorial_terminal(doc["combinatorial"]))
        for line in combinatorial_lines(doc["combinatorial"]):
            c.print(line, markup=False)
    c.print(summary_terminal(doc))
    c.print(p_sr_line(doc), markup=False)
    c.print(summary_line(doc, out))


def command_line() -> str:
    """The command as typed (recorded in the summary's provenance)."""
    import shlex
    import sys
    from pathlib import Path

    return shlex.join(["backtrace", *sys.argv[1:]]) if Path(sys.argv[0]).name == "backtrace" \
        else shlex.join(sys.argv)


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def report(directory):
    """Re-render tables and plots of a saved result without re-running."""
    try:
        paths = render(directory)
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"{directory}: cannot render ({err})") from None
    for p in paths:
        click.echo(f"wrote {p}")
