"""The ``backtrace`` command line: one group per topic, assembled here."""

from __future__ import annotations

import click

from backtrace._version import __version__

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
    from backtrace.cli.geometry import geometry
    from backtrace.cli.physics import physics

    main.add_command(physics)
    main.add_command(geometry)
    from backtrace.cli.trace import trace

    main.add_command(trace)
    from backtrace.cli.simulate import simulate_tracks

    main.add_command(simulate_tracks)
    from backtrace.cli.prompt import simulate_prompt

    main.add_command(simulate_prompt)
    from backtrace.cli.interactions import interactions

    main.add_command(interactions)
    from backtrace.cli.run import report, run

    main.add_command(run)
    main.add_command(report)
    from backtrace.cli.combinatorial import combinatorial

    main.add_command(combinatorial)
    from backtrace.cli.bench import bench

    main.add_command(bench)
    from backtrace.cli.scan import optimize, scan

    main.add_command(scan)
    main.add_command(optimize)


_register()
