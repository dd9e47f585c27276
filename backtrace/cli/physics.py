"""``backtrace physics``: check PUMAS physics against reference numbers."""

from __future__ import annotations

import click

from backtrace.beamline.slab import slab_transport, stopping_table
from backtrace.cli._common import UserError, console, echo_json, load_physics


@click.group()
def physics():
    """Energy-loss tables and slab transport, for checks against references
    (PDG muon tables, mean losses, dipole deflections)."""


def _check_material(phys, material: str) -> None:
    if material not in phys.materials:
        known = ", ".join(sorted(phys.materials))
        raise UserError(f"unknown material {material!r} (known: {known})")


@physics.command("table")
@click.option("--material", "-m", required=True,
              help="Material name from materials/ (e.g. iron, copper).")
@click.option("--kinetic-energy", "-k", "energies", required=True, type=float,
              multiple=True, metavar="GEV",
              help="Kinetic energies [GeV]; repeat the option or list values.")
@click.argument("more_energies", nargs=-1, type=float, metavar="[GEV]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def table(material, energies, more_energies, as_json):
    """CSDA range and mean stopping power of muons.

    \b
    $ backtrace physics table --material iron --kinetic-energy 10 50 100 --json
    [{"csda_range_m": 7.03, "kinetic_energy_gev": 10.0,
      "stopping_power_gev_per_m": 1.554}, ...]
    """
    phys = load_physics()
    _check_material(phys, material)
    values = list(energies) + list(more_energies)
    try:
        rows = stopping_table(phys, material, values)
    except ValueError as err:
        raise UserError(str(err)) from None
    if as_json:
        echo_json(rows)
        return
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"muon CSDA range and stopping power in {material}")
    for col in ("T [GeV]", "range [m]", "range [g/cm²]", "dE/dx [GeV/m]",
                "dE/dx [MeV cm²/g]"):
        t.add_column(escape(col), justify="right")
    for r in rows:
        t.add_row(f"{r['kinetic_energy_gev']:g}", f"{r['csda_range_m']:.4g}",
                  f"{r['csda_range_g_cm2']:.5g}",
                  f"{r['stopping_power_gev_per_m']:.4g}",
                  f"{r['stopping_power_mev_cm2_g']:.4g}")
    console().print(t)



@physics.command("slab")
@click.option("--material", "-m", required=True,
              help="Slab material (e.g. iron, vacuum).")
@click.option("--thickness", type=float, required=True, metavar="M",
              help="Slab thickness [m].")
@click.option("--kinetic-energy", "-k", type=float, required=True,
              metavar="GEV", help="Initial (forward) or final (backward) "
              "kinetic energy [GeV].")
@click.option("--n", "n", type=click.IntRange(min=1), default=10000,
              show_default=True, help="Number of muons.")
@click.option("--mode", type=click.Choice(["csda", "mixed", "hybrid",
                                           "straggled"]),
              default="straggled", show_default=True,
              help="PUMAS energy-loss mode (hybrid = mixed).")
@click.option("--direction", type=click.Choice(["forward", "backward"]),
              default="forward", show_default=True,
              help="Monte Carlo direction.")
@click.option("--field-tesla", type=float, nargs=3, default=(0.0, 0.0, 0.0),
              metavar="BX BY BZ", help="Uniform magnetic field [T].")
@click.option("--no-scattering", is_flag=True,
              help="Disable multiple scattering.")
@click.option("--charge", type=click.Choice(["1", "-1"]), default="1",
              show_default=True, help="Muon charge.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def slab(material, thickness, kinetic_energy, n, mode, direction,
         field_tesla, no_scattering, charge, seed, as_json):
    """Transport muons along +z through a slab and summarise.

    Reports the weighted mean kinetic energy in and out, the mean loss and
    its standard error, the mean exit direction and the deflection angle.
    In backward mode the given energy is the final one and the weighted
    initial energy is reported.

    \b
    $ backtrace physics slab -m iron --thickness 1 -k 50 --n 10000 --json
    """
    phys = load_physics()
    _check_material(phys, material)
    try:
        result = slab_transport(
            phys, material, thickness, kinetic_energy, n, mode=mode,
            direction=direction, field_tesla=field_tesla,
            scattering=not no_scattering, seed=seed, charge=float(charge))
    except (ValueError, RuntimeError) as err:
        raise UserError(str(err)) from None
    payload = result.as_dict()
    if as_json:
        echo_json(payload)
        return
    c = console()
    c.print(f"{n} muons, {mode}, {direction}, {thickness:g} m of {material}"
            f", B = {tuple(field_tesla)} T")
    c.print(f"  energy in   {payload['energy_in_gev']:.6g} GeV")
    c.print(f"  energy out  {payload['energy_out_gev']:.6g} GeV")
    c.print(f"  mean loss   {payload['mean_loss_gev']:.5g} ± "
            f"{payload['mean_loss_err_gev']:.2g} GeV")
    c.print(f"  direction   {[round(u, 8) for u in payload['direction_out']]}")
    c.print(f"  deflection  {payload['deflection_rad']:.6g} rad")
