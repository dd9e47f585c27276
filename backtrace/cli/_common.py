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


def fail(message: str) -> None:
    raise UserError(message)


def stderr(message: str) -> None:
    click.echo(message, err=True)


__all__ = ["echo_json", "console", "UserError", "load_physics", "fail",
           "stderr", "sys"]
