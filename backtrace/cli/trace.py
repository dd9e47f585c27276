"""``backtrace trace``: backward transport of a track file."""

from __future__ import annotations

import click

from backtrace.cli._common import (
    check_output_file,
    console,
    geometry_options,
    open_tracks,
    resolve_jobs,
    scheduler_option,
    trace_options,
    track_options,
    user_errors,
)
from backtrace.io import write_json_atomic
from backtrace.transport import TraceConfig, trace_file


@click.command()
@track_options
@geometry_options
@trace_options
@scheduler_option
@click.option("--to-z", "to_z", type=float, default=None, metavar="M",
              help="End plane of the backward transport [m] (default: the "
              "dump front face from the geometry, 23.07 m).")
@click.option("--plane", "planes", type=float, multiple=True, metavar="M",
              help="Extra reference plane where states are recorded [m] "
              "(repeatable).")
@click.option("--no-scattering", is_flag=True, help="Disable multiple scattering.")
@click.option("--energy-limit", type=float, default=None, metavar="GEV",
              help="Highest kinetic energy upstream [GeV] (default: the beam "
              "momentum); histories above it end with status energy_limit.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output Parquet file: one row per (track, sample, state).")
@click.option("--summary-json", type=click.Path(dir_okay=False), default=None,
              help="Write input_rows, status_counts, … as JSON.")
def trace(tracks_file, columns, tree, pot, geometry_file, overrides, mode,
          samples_per_track, seed, jobs, batch_size, quiet, scheduler, to_z,
          planes, no_scattering, energy_limit, out, summary_json):
    """Transport tracks backward to the dump and record their ancestors.

    Each valid track is transported backward --samples-per-track times with
    PUMAS (straggled energy loss, multiple scattering, fields) from its
    measured state to the end plane. The output has one row per (track,
    sample, state): states at every volume boundary, every 25 cm of dense
    material and at --plane planes, with the history status and weights.
    Rows of the input that cannot be traced get a status and are counted.

    \b
    $ backtrace trace --tracks examples/sample.parquet -n 4 --out traced.parquet \\
          --summary-json summary.json
    """
    check_output_file(out)
    check_output_file(summary_json)
    tracks = open_tracks(tracks_file, columns, pot, tree)
    config = TraceConfig(
        geometry_file=geometry_file, overrides=tuple(overrides),
        direction="backward", to_z_m=to_z, samples_per_track=samples_per_track,
        seed=seed, energy_loss="mixed" if mode == "hybrid" else mode,
        scattering=not no_scattering, energy_limit_gev=energy_limit,
        planes_m=tuple(planes))
    with user_errors():
        summary = trace_file(tracks, config, out, jobs=resolve_jobs(jobs),
                             batch_size=batch_size, progress=not quiet,
                             scheduler=scheduler)
        if summary_json:
            write_json_atomic(summary_json, summary)
    c = console()
    c.print(f"{summary['input_rows']} tracks, {summary['histories']} histories "
            f"in {summary['elapsed_s']:.1f} s "
            f"({summary['tracks_per_s']:.0f} tracks/s) → {out}")
    for name, count in summary["status_counts"].items():
        c.print(f"  {name:22s} {count}")
