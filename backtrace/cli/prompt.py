"""``backtrace simulate-prompt``: the forward prompt simulation."""

from __future__ import annotations

from pathlib import Path

import click

from backtrace.cli._common import (
    UserError,
    check_output_dir,
    console,
    geometry_options,
    jobs_option,
    resolve_jobs,
    scheduler_option,
    user_errors,
)
from backtrace.cli.run import forcing_fields, forcing_options
from backtrace.cli.simulate import set_source_option, source_config
from backtrace.forward.simulation import PromptSimConfig
from backtrace.forward.simulation import simulate_prompt as run
from backtrace.output.report import terminal_tables, write_outputs
from backtrace.prompt.config import RunConfig
from backtrace.regions import load_regions
from backtrace.tracks import write_tracks


@click.command("simulate-prompt")
@click.option("--events", "n_events", type=click.IntRange(min=1), default=20000,
              show_default=True, help="Monte Carlo source events (proton interactions).")
@click.option("--first-event", type=click.IntRange(min=0), default=0, show_default=True,
              help="Simulate events FIRST … FIRST + EVENTS - 1 (their random streams are "
              "those of one larger run; the yield is normalised to EVENTS), so that runs "
              "over disjoint ranges, e.g. on several machines, are independent and can be "
              "averaged.")
@click.option("--paths-per-muon", type=click.IntRange(min=1, max=16384), default=1,
              show_default=True, help="Forward paths traced from each muon's state at the "
              "TAX exit (splitting: each carries 1/N of its weight).")
@click.option("--target-pot", type=float, default=1.4e17, show_default=True,
              help="POT the estimate is normalised to.")
@click.option("--pot", "pot_sample", type=float, default=1e10, show_default=True,
              help="POT the written single-track sample (tracks.parquet) is normalised to.")
@click.option("--acceptance-r", "acceptance_r", type=(float, float), default=(0.1, 1.0),
              show_default=True, metavar="RMIN RMAX",
              help="STRAW1 annulus [m] of the single-track sample (the visible muons).")
@geometry_options
@forcing_options
@set_source_option
@click.option("--seed", type=int, default=1, show_default=True)
@jobs_option()
@click.option("--importance-pass/--single-pass", default=True, show_default=True,
              help="With the auto allocation: a pilot pass (a quarter of the draws) "
              "measures which strata give selected pairs, then the paths are traced "
              "again and the estimate is an importance pass (draws in proportion to "
              "muon weight x path importance x stratum outcome). --single-pass: one "
              "pass with the pilot rule (every muon the same draws).")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True,
              help="Events per batch (does not change results; memory grows with "
              "batch size x -k).")
@click.option("--out", default="result-forward", show_default=True,
              type=click.Path(file_okay=False), help="Output directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scheduler_option
def simulate_prompt(n_events, first_event, paths_per_muon, target_pot, pot_sample, acceptance_r,
                    geometry_file, overrides, channel, regions_file, physics,
                    interactions_per_history,
                    processes, prompt_z_min_m, allocation, transfer_bias,
                    final_states_per_point, source_sets, seed, importance_pass, jobs,
                    batch_size, out, quiet, scheduler):
    """Simulate the prompt background forward, from the dump source model.

    Muons from --events proton interactions (the source model of
    simulate-tracks) are transported forward with PUMAS to the TAX exit and
    on to STRAW1 along recorded paths; the same forced interactions as
    'run' (processes, strata, allocation, transfer bias, veto-aware
    importance) are drawn along these true paths, and the products go
    through the same detector response, vetoes, reconstruction and
    selection. Writes the same outputs as 'run' into --out (background.json,
    tables, candidates, plots) with a 'forward_prompt' block: the yields of
    the paths the backward method can see (the muon itself crosses STRAW1
    inside the annulus) and of those it cannot, and tracks.parquet, the
    single-track sample of the visible muons, for 'backtrace run'. With the
    auto allocation the draws are made in two passes over the same paths
    (--importance-pass). Results do not depend on --jobs or --batch-size.

    \b
    $ backtrace simulate-prompt --events 20000 --out result-forward/
    $ backtrace run --tracks result-forward/tracks.parquet --out result-backward/
    """
    check_output_dir(out)
    if not 0 <= acceptance_r[0] < acceptance_r[1]:
        raise UserError(f"--acceptance-r {acceptance_r[0]} {acceptance_r[1]}: "
                        "need 0 <= RMIN < RMAX")
    with user_errors():
        selection = load_regions(regions_file, channel)
        config = PromptSimConfig(
            run=RunConfig(geometry_file=geometry_file, overrides=tuple(overrides),
                          regions_file=regions_file, pot_target=target_pot, seed=seed,
                          **forcing_fields(selection, physics, interactions_per_history,
                                           processes, prompt_z_min_m, allocation,
                                           transfer_bias, final_states_per_point)),
            n_events=n_events, source=source_config(source_sets),
            acceptance_r_m=tuple(acceptance_r), pot_sample=pot_sample,
            paths_per_muon=paths_per_muon, importance_round=importance_pass,
            first_event=first_event)
        result = run(config, jobs=resolve_jobs(jobs), batch_size=batch_size,
                     progress=not quiet, scheduler=scheduler)
        write_outputs(out, result.document, result.candidates)
        write_tracks(Path(out) / "tracks.parquet", result.tracks, pot=pot_sample,
                     metadata={"method": "simulate-prompt", "n_events": n_events,
                               "first_event": first_event, "seed": seed})
    c = console()
    for table in terminal_tables(result.document):
        c.print(table)
    fwd = result.document["forward_prompt"]
    c.print(f"{n_events} events, {fwd['source_muons']} source muons, "
            f"{fwd['visible_paths']} visible paths at STRAW1 "
            f"({fwd['visible_muons_per_pot']:.3g} muons per POT) → {out}/tracks.parquet")
    vis, missed = fwd["yields_visible"], fwd["yields_missed"]
    for cat in selection.categories:
        v = sum(vis[r][cat]["value"] for r in vis)
        m = sum(missed[r][cat]["value"] for r in missed)
        share = f"{100 * m / (v + m):.1f} %" if v + m > 0 else "n/a (no entry)"
        c.print(f"  {cat}: missed by the backward method (all regions): {share}")
    c.print(f"forward prompt simulation in {result.document['elapsed_s']:.1f} s → {out}/")
