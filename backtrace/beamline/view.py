"""Side views (y–z and x–z) of a geometry, with optional trajectories.

Materials are coloured, magnetised volumes hatched and labelled with their
field; the transverse axis is linear within ±5 cm and logarithmic beyond
(symlog), so that beam apertures of a few cm stay visible next to metre-wide
yokes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from backtrace.beamline.geometry import Geometry
from backtrace.io import atomic_path

__all__ = ["draw_geometry", "MATERIAL_COLOURS"]

MATERIAL_COLOURS = {
    "iron": "#7f8c8d", "copper": "#d35400", "tungsten": "#2c3e50",
    "concrete": "#bdc3c7", "standard_rock": "#a0522d", "air": "#eaf2f8",
    "vacuum": "#ffffff", "liquid_krypton": "#76d7c4", "lead_glass": "#8e44ad",
    "aluminium": "#d5dbdb", "scintillator": "#f5b041", "mylar": "#f9e79f",
    "glass": "#aed6f1", "lead": "#34495e", "neon": "#fdedec",
}
#: Edge colour of each detector role's active layer.
ROLE_COLOURS = {"veto": "tab:red", "tracker": "tab:cyan", "calorimeter": "tab:green",
                "muon": "tab:purple", "hodoscope": "tab:orange"}


def _extent(center, half, axis):
    return center[axis] - half[axis], center[axis] + half[axis]


def _draw_view(ax, geometry: Geometry, axis: int, label: str):
    from matplotlib.patches import Rectangle

    world = geometry.world
    hw = world["half_y_m"] if axis == 1 else world["half_x_m"]
    for e in geometry.elements:
        half = (e.half_x_m if np.isfinite(e.half_x_m) else world["half_x_m"],
                e.half_y_m if np.isfinite(e.half_y_m) else world["half_y_m"])
        lo, hi = _extent(e.center_m, half, axis)
        for p in e.parts:
            magnetised = e.field_tesla is not None and any(e.field_tesla) and e.scale
            ax.add_patch(Rectangle(
                (p.z_min_m, lo), p.z_max_m - p.z_min_m, hi - lo,
                facecolor=MATERIAL_COLOURS.get(p.material, "#95a5a6"),
                edgecolor="k", linewidth=0.3,
                hatch="////" if magnetised else None))
            active = e.detector.get("active_layer", "body") if e.detector else None
            for a in reversed(p.apertures):
                alo, ahi = _extent(a.center_m, (a.half_x_m, a.half_y_m), axis)
                afield = a.field_tesla is not None and any(a.field_tesla) and e.scale
                is_active = active is not None and a.name == active
                ax.add_patch(Rectangle(
                    (p.z_min_m, alo), p.z_max_m - p.z_min_m, ahi - alo,
                    facecolor=MATERIAL_COLOURS.get(a.material, "#ffffff"),
                    edgecolor=ROLE_COLOURS[e.detector["role"]] if is_active
                    else ("tab:blue" if afield else "k"),
                    linewidth=1.0 if is_active else 0.3,
                    hatch="...." if afield else None))
            if active == "body":
                ax.add_patch(Rectangle((p.z_min_m, lo), p.z_max_m - p.z_min_m, hi - lo,
                                       fill=False, linewidth=1.0,
                                       edgecolor=ROLE_COLOURS[e.detector["role"]]))
        if e.role not in ("detector",) or e.name.startswith("STRAW1"):
            ax.text(0.5 * (e.z_min_m + e.z_max_m), hw * 0.9, e.name,
                    rotation=90, fontsize=5, ha="center", va="top")
    for f in geometry.fills:
        for a in reversed(f["layer"]):
            if a.material == "vacuum":
                continue
            for sign in (-1, 1):       # the wall of a tank: two thin bands
                inner = max((b.half_y_m if axis == 1 else b.half_x_m)
                            for b in f["layer"] if b is not a and b.material == "vacuum") \
                    if any(b.material == "vacuum" for b in f["layer"]) else 0.0
                outer = a.half_y_m if axis == 1 else a.half_x_m
                ax.add_patch(Rectangle((f["z_min_m"], sign * inner if sign > 0 else -outer),
                                       f["z_max_m"] - f["z_min_m"], outer - inner,
                                       facecolor=MATERIAL_COLOURS.get(a.material, "#95a5a6"),
                                       edgecolor="none"))
    ax.set_xlim(world["z_min_m"], world["z_max_m"])
    ax.set_ylim(-hw, hw)
    ax.set_yscale("symlog", linthresh=0.05)
    ax.set_ylabel(f"{label} [m]")
    p, d = geometry.beam_axis
    z = np.array([world["z_min_m"], world["z_max_m"]])
    ax.plot(z, p[axis] + d[axis] / d[2] * (z - p[2]), "r--", lw=0.5,
            label="beam axis")


def _read_traces(path: Path, max_tracks: int):
    import pandas as pd

    df = pd.read_parquet(path, columns=["track_index", "sample_index", "x_m",
                                        "y_m", "z_m"])
    groups = df.groupby(["track_index", "sample_index"], sort=True)
    out = []
    for _, g in groups:
        out.append(g[["x_m", "y_m", "z_m"]].to_numpy())
        if len(out) >= max_tracks:
            break
    return out


def draw_geometry(geometry: Geometry, out: str | Path, *,
                  traces: str | Path | None = None, max_tracks: int = 200,
                  dpi: int = 150) -> Path:
    """Write a PNG (or any matplotlib format, by file extension) with both views."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(2, 1, figsize=(16, 8), sharex=True)
    _draw_view(axes[0], geometry, 1, "y")
    _draw_view(axes[1], geometry, 0, "x")
    if traces is not None:
        for xyz in _read_traces(Path(traces), max_tracks):
            axes[0].plot(xyz[:, 2], xyz[:, 1], lw=0.4, color="tab:green", alpha=0.6)
            axes[1].plot(xyz[:, 2], xyz[:, 0], lw=0.4, color="tab:green", alpha=0.6)
    axes[1].set_xlabel("z [m]")
    used = sorted({p.material for e in geometry.elements for p in e.parts}
                  | {a.material for e in geometry.elements for p in e.parts
                     for a in p.apertures})
    handles = [Patch(facecolor=MATERIAL_COLOURS.get(m, "#95a5a6"),
                     edgecolor="k", label=m) for m in used]
    handles.append(Patch(facecolor="w", edgecolor="k", hatch="////",
                         label="magnetised"))
    roles = sorted({e.detector["role"] for e in geometry.detectors()})
    handles += [Patch(facecolor="w", edgecolor=ROLE_COLOURS[r], linewidth=1.5,
                      label=f"active: {r}") for r in roles]
    axes[0].legend(handles=handles, loc="lower right", fontsize=6, ncol=4)
    overrides = ", ".join(geometry.overrides) or "none"
    fig.suptitle(f"{geometry.name} (overrides: {overrides})", fontsize=9)
    fig.tight_layout()
    out = Path(out)

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format=os.path.splitext(str(out))[1].lstrip(".") or "png")
    plt.close(fig)
    return out
