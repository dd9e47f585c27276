"""Options and helpers shared by the CLI commands: track and geometry
options, parallelism, output checks, JSON output, one-line errors."""

from __future__ import annotations

import json
import os

import click

from backtrace.beamline import geometry, materials
from backtrace.beamline.geometry import GeometryError
from backtrace.beamline.materials import MaterialError
from backtrace.executor import SchedulerError, parse_scheduler
from backtrace.io import OutputError, check_writable, check_writable_dir
from backtrace.pumas import PumasError, PumasLibraryError
from backtrace.regions import RegionsError
from backtrace.tracks import TrackFileError, Tracks, parse_column_map

__all__ = ["echo_json", "console", "UserError", "load_physics", "fail", "stderr",
           "scheduler_option", "jobs_option", "track_options", "geometry_options",
           "set_option", "trace_options", "open_tracks", "resolve_jobs", "load_geometry",
           "check_output_file", "check_output_dir", "user_errors"]


class UserError(click.ClickException):
    """A one-line error for the user (exit code 1)."""


def echo_json(payload) -> None:
    """Sorted, indented JSON on stdout."""
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=_default))


def _default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def fail(message: str) -> None:
    raise UserError(message)


def stderr(message: str) -> None:
    click.echo(message, err=True)


class user_errors:
    """Context manager: the library's input and output errors (geometry,
    regions, tracks, materials, outputs, bad values) become one-line
    :class:`UserError` s."""

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if err is not None and isinstance(err, (GeometryError, RegionsError, MaterialError,
                                                TrackFileError, OutputError, ValueError)):
            raise UserError(str(err)) from None
        return False


def load_physics():
    """The cached PUMAS physics, with library problems as one-line errors."""
    try:
        return materials.load_physics()
    except (PumasLibraryError, MaterialError) as err:
        raise UserError(str(err)) from None
    except PumasError as err:
        raise UserError(f"PUMAS physics could not be created: {err}") from None


def load_geometry(path, overrides):
    """A validated geometry, or a one-line error naming what is wrong."""
    try:
        return geometry.load_geometry(path, overrides)
    except (GeometryError, MaterialError) as err:
        raise UserError(str(err)) from None


def resolve_jobs(jobs: int) -> int:
    """``--jobs 0`` means every core of the machine."""
    return jobs if jobs > 0 else (os.cpu_count() or 1)


def open_tracks(path, columns, pot, tree):
    try:
        return Tracks.open(path, columns=parse_column_map(columns), pot=pot, tree=tree)
    except TrackFileError as err:
        raise UserError(str(err)) from None


def check_output_file(path) -> None:
    """Fail before any work when ``path`` cannot be written."""
    if path is None:
        return
    try:
        check_writable(path)
    except OutputError as err:
        raise UserError(str(err)) from None


def check_output_dir(path) -> None:
    """Fail before any work when files cannot be written into ``path``."""
    try:
        check_writable_dir(path)
    except OutputError as err:
        raise UserError(str(err)) from None


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------
def _check_scheduler(ctx, param, value):
    try:
        return parse_scheduler(value)
    except SchedulerError as err:
        raise click.BadParameter(str(err)) from None


def scheduler_option(func):
    """``--scheduler``: where the batches run (local processes or Dask)."""
    return click.option(
        "--scheduler", default=None, metavar="ADDRESS", envvar="BACKTRACE_SCHEDULER",
        show_envvar=True, callback=_check_scheduler,
        help="Run the batches on a Dask cluster: dask://HOST:PORT or "
        "tcp://HOST:PORT of a running 'dask scheduler' (its workers do the "
        "work; --jobs is not used), or 'dask-local' for a LocalCluster of "
        "--jobs worker processes on this machine. Needs the 'dask' extra. "
        "Results are identical to the local run for the same seed. "
        "Default: local processes (--jobs).")(func)


def jobs_option(what: str = "Worker processes"):
    """``--jobs/-j`` (default 0: all cores; results do not depend on it)."""
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
        help=f"{what} (0: all cores of this machine; results do not depend on it).")


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


set_option = click.option(
    "--set", "overrides", multiple=True, metavar="ELEMENT.KEY=VALUE",
    help="Override a geometry value without editing the file, e.g. "
         "--set sweeper.scale=1.2 --set TAX1.material=iron (repeatable).")


def geometry_options(func):
    """``--geometry FILE`` and ``--set`` for commands that take a geometry."""
    func = set_option(func)
    func = click.option(
        "--geometry", "geometry_file", type=click.Path(dir_okay=False),
        default=None, help="Geometry file (default: the shipped NA62 K12 "
        "2021 beam line, geometry/na62_k12_2021.toml).")(func)
    return func


def trace_options(func):
    """Options of ``trace``: energy loss, histories, seed, parallelism."""
    func = click.option("--quiet", "-q", is_flag=True,
                        help="No progress bar.")(func)
    func = click.option("--batch-size", type=click.IntRange(min=1),
                        default=2000, show_default=True,
                        help="Tracks per batch (does not change results).")(func)
    func = jobs_option()(func)
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
