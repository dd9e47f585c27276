"""``backtrace simulate-tracks``: single-muon samples from the dump model."""

from __future__ import annotations

import click

from ._common import UserError, console, scheduler_option
from .geometry import geometry_options
from .trace import resolve_jobs


@click.command("simulate-tracks")
@geometry_options
@click.option("--pot", type=float, default=1e10, show_default=True,
              help="Protons on target the sample represents (sets weights).")
@click.option("--events", "n_events", type=click.IntRange(min=1), default=20000,
              show_default=True, help="Monte Carlo events (proton interactions "
              "sampled; more events, smaller MC uncertainty).")
@click.option("--method", type=click.Choice(["forward", "backward"]),
              default="forward", show_default=True,
              help="forward: source → detector; backward: proposal at the "
              "detector weighted by the source at the TAX (not available yet).")
@click.option("--plane-z", type=float, default=183.508, show_default=True,
              metavar="M", help="Reference plane [m] (default STRAW1 front).")
@click.option("--acceptance", type=click.Choice(["straw1", "plane"]),
              default="straw1", show_default=True,
              help="straw1: keep 0.1 m < r < 1.0 m at the plane; plane: keep "
              "every crossing inside the world.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=1,
              show_default=True, help="Worker processes (0: all cores).")
@click.option("--batch-size", type=click.IntRange(min=1), default=2000,
              show_default=True, help="Events per batch (does not change results).")
@click.option("--set-source", "source_sets", multiple=True, metavar="COMPONENT=SCALE",
              help="Scale a source component (pion, kaon, charm, eta, rho, "
              "omega, phi, jpsi), e.g. --set-source charm=0.5.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output track file (Parquet).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scheduler_option
def simulate_tracks(geometry_file, overrides, pot, n_events, method, plane_z,
                    acceptance, seed, jobs, batch_size, source_sets, out, quiet,
                    scheduler):
    """Simulate single muons from 400 GeV protons on the dump.

    Muons from π/K decays and prompt sources (charm, η, ρ, ω, φ, J/ψ) are
    sampled per proton interaction in the TAX, transported forward with
    PUMAS to the reference plane, and written in the track schema with
    weights normalised to --pot (POT recorded in the file metadata).
    Reports the muon rate per POT at the plane and the mean momentum.

    \b
    $ backtrace simulate-tracks --pot 1e10 --seed 1 --out tracks.parquet
    """
    from ..geometry import GeometryError
    from ..io import OutputError
    from ..simulate import SimulationConfig, simulate_tracks as run
    from ..source import COMPONENTS, SourceConfig

    if method == "backward":
        raise UserError("--method backward (proposal at the detector weighted "
                        "by the source at the TAX) is not available yet; use "
                        "--method forward")
    scales = {c: 1.0 for c in COMPONENTS}
    for item in source_sets:
        name, _, value = item.partition("=")
        if name not in scales:
            raise UserError(f"--set-source {item!r}: unknown component {name!r} "
                            f"(known: {', '.join(COMPONENTS)})")
        try:
            scales[name] = float(value)
        except ValueError:
            raise UserError(f"--set-source {item!r}: {value!r} is not a number") from None
    config = SimulationConfig(
        geometry_file=geometry_file, overrides=tuple(overrides),
        plane_z_m=plane_z, n_events=n_events, seed=seed, pot=pot,
        acceptance=acceptance, source=SourceConfig(scales=scales))
    try:
        summary = run(config, out, jobs=resolve_jobs(jobs),
                      batch_size=batch_size, progress=not quiet,
                      scheduler=scheduler)
    except (GeometryError, ValueError, OutputError) as err:
        raise UserError(str(err)) from None
    c = console()
    c.print(f"{summary['tracks']} muons at z = {plane_z} m from {n_events} events "
            f"in {summary['elapsed_s']:.1f} s → {out}")
    rel = summary["muons_per_pot_mc_rel_err"]
    c.print(f"  muons per POT at the plane ({acceptance}): "
            f"{summary['muons_per_pot']:.3e}"
            + (f" ± {100 * rel:.1f} % (MC)" if rel is not None else ""))
    c.print(f"  mean momentum: {summary['mean_momentum_gev']:.1f} GeV/c")
    c.print(f"  expected in {pot:.3g} POT: {summary['muons_per_pot'] * pot:.3g} muons")
