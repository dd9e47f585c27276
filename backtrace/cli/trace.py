"""``backtrace trace``: backward transport of a track file."""

from __future__ import annotations

import os

import click

from ._common import UserError, console, scheduler_option
from .geometry import geometry_options


def track_options(func):
    """``--tracks``, ``--columns``, ``--tree`` and ``--pot``."""
    func = click.option("--pot", type=float, default=None,
                        help="Protons on target the file represents "
                        "(overrides the file metadata).")(func)
    func = click.option("--tree", default=None,
                        help="TTree name in a ROOT file (default: the first).")(func)
    func = click.option("--columns", "columns", multiple=True,
                        metavar="NAME=BRANCH",
                        help="Map a track column to a file column/branch, "
                        "e.g. --columns x_m=posX (repeatable).")(func)
    func = click.option("--tracks", "tracks_file", required=True,
                        type=click.Path(dir_okay=False),
                        help="Single-track file: Parquet (default), CSV or "
                        "ROOT.")(func)
    return func


def run_options(func):
    """Options shared by trace and run: sampling, seed, parallelism."""
    func = click.option("--quiet", "-q", is_flag=True,
                        help="No progress bar.")(func)
    func = click.option("--batch-size", type=click.IntRange(min=1),
                        default=2000, show_default=True,
                        help="Tracks per batch (does not change results).")(func)
    func = click.option("--jobs", "-j", type=click.IntRange(min=0), default=1,
                        show_default=True,
                        help="Worker processes (0: all cores; does not change "
                        "results).")(func)
    func = click.option("--seed", type=int, default=1, show_default=True,
                        help="Random seed.")(func)
    func = click.option("--samples-per-track", "-n", type=click.IntRange(min=1),
                        default=1, show_default=True,
                        help="Backward histories per track.")(func)
    func = click.option("--mode", type=click.Choice(["straggled", "mixed",
                                                     "hybrid", "csda"]),
                        default="straggled", show_default=True,
                        help="PUMAS energy-loss mode (hybrid = mixed).")(func)
    return func


def open_tracks(path, columns, pot, tree):
    from ..tracks import TrackFileError, Tracks, parse_column_map

    try:
        return Tracks.open(path, columns=parse_column_map(columns), pot=pot,
                           tree=tree)
    except TrackFileError as err:
        raise UserError(str(err)) from None


def resolve_jobs(jobs: int) -> int:
    return jobs if jobs > 0 else (os.cpu_count() or 1)


@click.command()
@track_options
@geometry_options
@run_options
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
    from ..io import OutputError, write_json_atomic
    from ..transport import TraceConfig, trace_file
    from ..geometry import GeometryError

    tracks = open_tracks(tracks_file, columns, pot, tree)
    config = TraceConfig(
        geometry_file=geometry_file, overrides=tuple(overrides),
        direction="backward", to_z_m=to_z, samples_per_track=samples_per_track,
        seed=seed, energy_loss="mixed" if mode == "hybrid" else mode,
        scattering=not no_scattering, energy_limit_gev=energy_limit,
        planes_m=tuple(planes))
    try:
        summary = trace_file(tracks, config, out, jobs=resolve_jobs(jobs),
                             batch_size=batch_size, progress=not quiet,
                             scheduler=scheduler)
        if summary_json:
            write_json_atomic(summary_json, summary)
    except (GeometryError, ValueError, OutputError) as err:
        raise UserError(str(err)) from None
    c = console()
    c.print(f"{summary['input_rows']} tracks, {summary['histories']} histories "
            f"in {summary['elapsed_s']:.1f} s "
            f"({summary['tracks_per_s']:.0f} tracks/s) → {out}")
    for name, count in summary["status_counts"].items():
        c.print(f"  {name:22s} {count}")
