"""``backtrace run`` and ``backtrace report``: thin wrappers over
:func:`backtrace.estimate` and :func:`backtrace.output.report.render`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from backtrace.api import Options, default, estimate
from backtrace.cli._common import (
    UserError,
    check_output_dir,
    console,
    geometry_options,
    jobs_option,
    scheduler_option,
    user_errors,
)
from backtrace.cli.combinatorial import spill_options
from backtrace.interactions import PHYSICS
from backtrace.output.pyhf_model import parse_signal
from backtrace.output.report import (
    combinatorial_lines,
    combinatorial_terminal,
    mc_line,
    p_sr_line,
    physics_line,
    render,
    selection_line,
    summary_line,
    summary_terminal,
    terminal_tables,
)
from backtrace.prompt.allocation import parse_allocation


class OptionalFloat(click.ParamType):
    """A positive number, or 'none' (no value)."""

    name = "FLOAT|none"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float):
            return value
        if str(value).strip().lower() == "none":
            return None
        try:
            x = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'none'", param, ctx)
        if not x > 0:
            self.fail(f"{value!r}: expected a positive number or 'none'", param, ctx)
        return x


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
    click.option("--physics", type=click.Choice(list(PHYSICS)), default=default("physics"),
                 show_default=True,
                 help="Named set of forced processes: 'full', every process modelled; "
                 "'geant4-default', those of Geant4's default physics list (FTFP_BERT, "
                 "10.1-11.1: no direct mu -> mu mu+mu- and no gamma -> mu+mu-), for a "
                 "like-for-like comparison with a Geant4-based estimate. Recorded in "
                 "every output (config.physics)."),
    click.option("--interactions-per-history", "-k", type=click.IntRange(min=1),
                 default=default("interactions_per_history"), show_default=True, help="Forced interactions per history "
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
    click.option("--allocation", default=default("allocation"), show_default=True, metavar="MODE|P=S,...",
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
    click.option("--transfer-bias/--no-transfer-bias", default=default("transfer_bias"),
                 show_default=True,
                 help="Importance-sample the energy transfer towards transfers that can "
                 "give a selected track (above 0.9 × the selection's momentum minimum; "
                 "10 % of the draws natural)."),
    click.option("--final-states-per-point", type=click.IntRange(min=1),
                 default=default("final_states_per_point"), show_default=True, help="Final states sampled at each drawn interaction "
                 "point (splitting, each weighted as one draw)."),
]


def forcing_fields(selection, physics, interactions_per_history, processes, prompt_z_min_m,
                   allocation, transfer_bias, final_states_per_point) -> dict:
    """The :class:`backtrace.prompt.config.RunConfig` fields of :func:`forcing_options`
    (``selection``: the loaded regions, for the channel)."""
    return dict(channel=selection.channel, physics=physics,
                interactions_per_history=interactions_per_history,
                processes=tuple(processes) or None, prompt_z_min_m=prompt_z_min_m,
                allocation=parse_allocation(
                    allocation, tuple(processes) or PHYSICS[physics][selection.channel]),
                transfer_bias=transfer_bias, final_states_per_point=final_states_per_point)


#: click parameter name -> :class:`backtrace.Options` field, where they differ
_OPTION_FIELDS = {"geometry_file": "geometry", "regions_file": "regions",
                  "with_combinatorial": "combinatorial", "spill_file": "spill"}


@click.command()
@click.option("--tracks", "tracks_file", required=True, type=click.Path(dir_okay=False),
              help="Single-track file (Parquet, CSV or ROOT).")
@click.option("--columns", multiple=True, metavar="NAME=BRANCH",
              help="Map a track column to a file column/branch, e.g. --columns x_m=posX "
              "(repeatable).")
@click.option("--tree", default=default("tree"), help="TTree name in a ROOT file.")
@click.option("--pot", type=float, default=default("pot"),
              help="POT the track file represents (default: file metadata).")
@click.option("--target-pot", type=float, default=default("target_pot"), show_default=True,
              help="POT the estimate is normalised to.")
@geometry_options
@forcing_options
@click.option("--samples-per-track", "-n", type=click.IntRange(min=1),
              default=default("samples_per_track"), show_default=True,
              help="Backward histories per track of the first round.")
@click.option("--track-allocation", type=click.Choice(["weight", "uniform"]),
              default=default("track_allocation"), show_default=True,
              help="How rounds after the first share new histories among the tracks: "
              "'weight', the tracks furthest below their share of the importance (input "
              "weight × what their paths can give the target cell, with --allocation "
              "auto; else the input weight) double theirs; 'uniform', every track the "
              "same number.")
@click.option("--target-cell", default=default("target_cell"), metavar="REGION/CATEGORY",
              help="The cell whose relative MC uncertainty --target-rel-unc aims at and "
              "'auto' optimises ('total': all cells); several, comma-separated, or "
              "'published' (outside/mu-mu, outside/mu-pi, outside/other: the cells NA62 "
              "quotes) aim at each of them. Default: outside/mu-mu for the mumu channel, "
              "total for ee.")
@click.option("--seed", type=int, default=default("seed"), show_default=True)
@jobs_option()
@click.option("--batch-size", type=click.IntRange(min=1), default=default("batch_size"),
              show_default=True, help="Tracks per batch (does not change results).")
@click.option("--prior", type=click.Choice(["energy", "full", "none"]),
              default=default("prior"), show_default=True,
              help="Source prior of the per-track posterior.")
@click.option("--systematics", type=click.Choice(["none", "fast", "full"]),
              default=default("systematics"), show_default=True,
              help="Systematic re-runs (common random numbers): 'none' (POT and "
              "cross-section scales by reweighting only), 'fast' (field scale of each "
              "magnet group +5 %, density +3 %, MC method; shifts taken as symmetric), "
              "'full' (± for fields and density).")
@click.option("--target-rel-unc", type=OptionalFloat(), default=default("target_rel_unc"),
              show_default=True,
              help="Add rounds of histories until the relative MC uncertainty of the "
              "--target-cell is at most this (0.05 for a paper table), or a limit stops "
              "them; 'none': one round only.")
@click.option("--max-samples-per-track", type=click.IntRange(min=1),
              default=default("max_samples_per_track"), show_default=True,
              help="Histories budget of a track (at most 16384: the random-key layout, "
              "backtrace.rng).")
@click.option("--max-rounds", type=click.IntRange(min=1), default=default("max_rounds"),
              help="At most this many rounds (default: no cap).")
@click.option("--max-time", "max_time_s", type=OptionalFloat(),
              default=default("max_time_s"), show_default=True,
              help="No new round of histories starts when it would end after this many "
              "seconds ('none': no cap). It never changes a round, only whether one "
              "starts: the output records the rounds, and --rounds-from replays them "
              "exactly. Systematic re-runs and the combinatorial come on top.")
@click.option("--rounds-from", type=click.Path(exists=True), default=None,
              metavar="BACKGROUND.JSON",
              help="Replay the rounds of a saved result (its background.json or "
              "directory) whatever this machine's speed: same options required; the "
              "output is then identical but for elapsed times.")
@click.option("--combinatorial/--no-combinatorial", "with_combinatorial",
              default=default("combinatorial"), show_default=True,
              help="Also estimate the combinatorial background (random in-time pairs of "
              "the single tracks; see 'backtrace combinatorial').")
@spill_options
@click.option("--out", default="result", show_default=True, type=click.Path(file_okay=False),
              help="Output directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--verbose", "-v", is_flag=True,
              help="Print every table (prompt yields per category, systematics, "
              "combinatorial), not only the summary.")
@scheduler_option
def run(tracks_file, out, quiet, verbose, **params):
    """Estimate the background from single tracks (prompt, upstream-prompt
    and combinatorial) and write every output into --out.

    Traces every track back to the dump, forces secondary interactions in the
    material upstream of and around the decay volume, transports the
    products through the detector, applies the selection's vetoes and
    identification, reconstructs two-track vertices and Z_TAX/CDA_TAX, and
    gives the μ-μ / μ-π / other yields (e-e / other with --channel ee) in the
    SR, CR and outside, normalised to --target-pot, with statistical and
    systematic uncertainties; with the combinatorial estimate, one summary
    table. Rounds of histories go on until --target-rel-unc (MC) on the
    --target-cell, or a limit. Prints the summary table (--verbose: every
    table); background.md holds the prompt table per category.

    \b
    $ backtrace run --tracks examples/sample.parquet --out result/
    $ backtrace run --tracks examples/sample.parquet --target-rel-unc 0.05 --max-time 1800
    $ backtrace run --tracks examples/sample.parquet --rounds-from result/background.json
    $ backtrace run --tracks examples/sample.parquet --channel ee --out result-ee/
    """
    check_output_dir(out)
    fields = {_OPTION_FIELDS.get(k, k): v for k, v in params.items()}
    opts = Options(**fields, progress=not quiet)
    log = None if quiet else (lambda line: click.echo(line, err=True))
    with user_errors():
        result = estimate(tracks_file, options=opts, command=command_line(), log=log)
        result.write(out)
    _print_result(result.document, out, verbose)


def _print_result(doc: dict, out, verbose: bool) -> None:
    """The summary table and what to know about it (``verbose``: every table)."""
    c = console()
    if verbose:
        for table in terminal_tables(doc):
            c.print(table)
        c.print(selection_line(doc), markup=False)
        if doc.get("combinatorial"):
            c.print(combinatorial_terminal(doc["combinatorial"]))
            for line in combinatorial_lines(doc["combinatorial"]):
                c.print(line, markup=False)
    c.print(summary_terminal(doc))
    c.print(f"MC: {mc_line(doc)}", markup=False)
    c.print(p_sr_line(doc), markup=False)
    c.print(physics_line(doc), markup=False)
    c.print(summary_line(doc, out), markup=False)
    hint = "" if verbose else "--verbose prints every table; "
    c.print(f"{hint}the prompt yields per category are in {Path(out) / 'background.md'}; "
            f"--rounds-from {Path(out) / 'background.json'} replays these rounds exactly",
            markup=False)


def command_line() -> str:
    """The command as typed (recorded in the summary's provenance)."""
    return shlex.join(["backtrace", *sys.argv[1:]]) if Path(sys.argv[0]).name == "backtrace" \
        else shlex.join(sys.argv)


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--signal", multiple=True, metavar="REGION=EVENTS",
              help="Expected signal events at mu_sig = 1 in a region of the pyhf "
              "workspace background.pyhf.json (repeatable; default 0 everywhere).")
def report(directory, signal):
    """Re-render tables, plots and the pyhf workspace of a saved result
    without re-running.

    \b
    $ backtrace report result/
    $ backtrace report result/ --signal SR=5.2 --signal CR=0.4
    $ pyhf cls result/background.pyhf.json
    """
    try:
        paths = render(directory, parse_signal(signal))
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"{directory}: cannot render ({err})") from None
    for p in paths:
        click.echo(f"wrote {p}")
