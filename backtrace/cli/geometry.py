"""``backtrace geometry``: check, describe and draw geometry files."""

from __future__ import annotations

import click

from backtrace.beamline.view import draw_geometry
from backtrace.cli._common import UserError, console, echo_json, set_option
from backtrace.cli._common import load_geometry as load
from backtrace.io import OutputError


@click.group()
def geometry():
    """Beam-line geometry files: validate, list and draw them."""


file_argument = click.argument("file", required=False,
                               type=click.Path(dir_okay=False))


@geometry.command("check")
@file_argument
@set_option
def check(file, overrides):
    """Validate a geometry file and print a one-screen summary.

    Exit status 0 when valid; otherwise one line naming the element and key
    at fault.
    """
    g = load(file, overrides)
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"{g.name} — {len(g.elements)} elements "
                           f"(valid)"), show_lines=False)
    for col in ("element", "role", "z [m]", "material", "B [T]", "est."):
        t.add_column(escape(col))
    for d in g.describe():
        b = "" if d["field_tesla"] is None else \
            "(" + ", ".join(f"{c:g}" for c in d["field_tesla"]) + ")"
        t.add_row(d["name"], d["role"], f"{d['z_min_m']:.3f}–{d['z_max_m']:.3f}",
                  d["material"], b, "yes" if d["estimated"] else "")
    c = console()
    c.print(t)
    p, _ = g.beam_axis
    c.print(f"world {g.world['z_min_m']}–{g.world['z_max_m']} m, "
            f"|x| < {g.world['half_x_m']} m, |y| < {g.world['half_y_m']} m; "
            f"proton impact {g.beam['impact_point_m']} m; backward transport "
            f"ends at z = {g.target_z_m} m")
    if g.overrides:
        c.print("overrides: " + ", ".join(g.overrides))


@geometry.command("describe")
@file_argument
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def describe(file, overrides, as_json):
    """List the elements: name, z range, material, field, role, estimated.

    \b
    $ backtrace geometry describe --json
    [{"name": "B1A", "z_min_m": 14.96, "z_max_m": 18.56, "material":
      "iron", "field_tesla": [-1.82, 0.0, 0.0], "role": "dipole", ...}, ...]
    """
    g = load(file, overrides)
    rows = g.describe()
    if as_json:
        echo_json(rows)
        return
    for d in rows:
        click.echo(f"{d['name']:18s} {d['role']:13s} {d['z_min_m']:9.3f} "
                   f"{d['z_max_m']:9.3f}  {d['material']:15s} "
                   f"{d['field_tesla'] or ''}{'  [est]' if d['estimated'] else ''}")


@geometry.command("show")
@file_argument
@set_option
@click.option("--out", type=click.Path(dir_okay=False), default="geometry.png",
              show_default=True, help="Output image (PNG, PDF, SVG).")
@click.option("--tracks", "traces", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Traced-tracks file (from `backtrace trace`) "
              "to overlay.")
@click.option("--max-tracks", type=click.IntRange(min=1), default=200,
              show_default=True, help="Trajectories drawn at most.")
def show(file, overrides, out, traces, max_tracks):
    """Draw side views (y–z and x–z) of the beam line."""
    g = load(file, overrides)
    try:
        path = draw_geometry(g, out, traces=traces, max_tracks=max_tracks)
    except OutputError as err:
        raise UserError(str(err)) from None
    click.echo(f"wrote {path}")
