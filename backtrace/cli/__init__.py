"""The ``backtrace`` command line: one group per topic, assembled here."""

from __future__ import annotations

import click

from backtrace._version import __version__
from backtrace.cli.bench import bench
from backtrace.cli.combinatorial import combinatorial
from backtrace.cli.geometry import geometry
from backtrace.cli.interactions import interactions
from backtrace.cli.physics import physics
from backtrace.cli.prompt import simulate_prompt
from backtrace.cli.run import report, run
from backtrace.cli.scan import optimize, scan
from backtrace.cli.simulate import simulate_tracks
from backtrace.cli.trace import trace

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="backtrace")
def main():
    """Prompt-background estimates for beam-dump searches.

    Single muon tracks measured downstream are transported backward with
    PUMAS through the beam line; their secondary interactions are sampled,
    sent forward through the detector, and the two-track vertices pointing
    to the dump are counted in the signal and control regions.
    """


def _register() -> None:
    main.add_command(physics)
    main.add_command(geometry)

    main.add_command(trace)

    main.add_command(simulate_tracks)

    main.add_command(simulate_prompt)

    main.add_command(interactions)

    main.add_command(run)
    main.add_command(report)

    main.add_command(combinatorial)

    main.add_command(bench)

    main.add_command(scan)
    main.add_command(optimize)


_register()
