"""Helpers shared by the CLI commands: JSON output, errors, consoles."""

from __future__ import annotations

import json
import sys

import click

from ..pumas._errors import PumasError, PumasLibraryError


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


class UserError(click.ClickException):
    """A one-line error for the user (exit code 1)."""


def load_physics():
    """The cached PUMAS physics, with library problems as one-line errors."""
    from ..pumas import Physics

    try:
        return Physics()
    except PumasLibraryError as err:
        raise UserError(str(err)) from None
    except PumasError as err:
        raise UserError(f"PUMAS physics could not be created: {err}") from None


def _check_scheduler(ctx, param, value):
    from ..executor import SchedulerError, parse_scheduler

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


def fail(message: str) -> None:
    raise UserError(message)


def stderr(message: str) -> None:
    click.echo(message, err=True)


__all__ = ["echo_json", "console", "UserError", "load_physics", "fail",
           "stderr", "sys", "scheduler_option"]
