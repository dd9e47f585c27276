"""``backtrace interactions``: secondary-interaction probabilities."""

from __future__ import annotations

import click

from backtrace.cli._common import UserError, console, echo_json, load_physics
from backtrace.interactions import interaction_table


@click.group()
def interactions():
    """Secondary interactions of muons (photonuclear, pairs, δ rays…)."""


@interactions.command("table")
@click.option("--material", "-m", required=True, help="Material name (e.g. iron).")
@click.option("--kinetic-energy", "-k", "energies", type=float, multiple=True,
              required=True, metavar="GEV", help="Muon kinetic energies [GeV].")
@click.argument("more_energies", nargs=-1, type=float, metavar="[GEV]...")
@click.option("--q-min", type=float, default=1.0, show_default=True, metavar="GEV",
              help="Lowest energy given to the secondary [GeV].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def table(material, energies, more_energies, q_min, as_json):
    """Interaction probability per metre and per g/cm² for each process.

    \b
    $ backtrace interactions table --material iron --kinetic-energy 10 50 100 --json
    """
    phys = load_physics()
    if material not in phys.materials:
        raise UserError(f"unknown material {material!r} (known: "
                        f"{', '.join(sorted(phys.materials))})")
    values = list(energies) + list(more_energies)
    if any(not e > 0 for e in values) or not q_min > 0:
        raise UserError("kinetic energies and --q-min must be positive")
    rows = interaction_table(phys, material, values, q_min_gev=q_min)
    if as_json:
        echo_json(rows)
        return
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"muon interactions in {material}, secondary energy > {q_min:g} GeV")
    for col in ("T [GeV]", "process", "category", "P per m", "P per g/cm²"):
        t.add_column(escape(col), justify="right")
    for r in rows:
        t.add_row(f"{r['kinetic_energy_gev']:g}", r["process"], r["category"],
                  f"{r['probability_per_m']:.3e}", f"{r['probability_per_g_cm2']:.3e}")
    console().print(t)
