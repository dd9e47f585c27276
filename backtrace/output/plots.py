"""Publication-quality figures of the background estimates, and a layout check.

Every figure uses matplotlib's constrained layout (no clipped labels, no
panels overlapping their neighbours' tick labels), the mplhep ROOT style,
logarithmic scales where values span decades, and a title with the POT:

- :func:`plane_figure`: the (Z_TAX, CDA_TAX) plane as a weighted 2-D
  histogram with a logarithmic colour scale (a cell of 1e-6 events stays
  visible beside one of 1e3) and the SR/CR contours;
- :func:`distributions_figure`: Z_TAX, CDA_TAX, mass and vertex z per
  category or component, log y, error bars √Σw² per bin;
- :func:`layout_problems`: what a test checks on every figure — text
  outside the figure, and the tick labels, axis labels or titles of two
  different axes overlapping.
"""

from __future__ import annotations

import numpy as np

from backtrace.io import atomic_path

#: Decades shown by a colour scale or a log y axis (cells below the range
#: take its lowest colour; bins below it are off the axis).
DYNAMIC_RANGE = 1e8

__all__ = ["plane_figure", "distributions_figure", "layout_problems", "save_figure",
           "new_figure", "DISTRIBUTIONS"]

#: (column, axis label, bin edges) of the distribution panels.
DISTRIBUTIONS = (("z_tax_m", r"$Z_\mathrm{TAX}$ [m]", np.linspace(-20, 100, 41)),
                 ("cda_tax_m", r"$\mathrm{CDA}_\mathrm{TAX}$ [mm]", np.linspace(0, 300, 31)),
                 ("mass_gev", r"$M_{\mu\mu}$ [GeV/$c^2$]", np.linspace(0, 2, 41)),
                 ("vertex_z_m", r"vertex $z$ [m]", np.linspace(100, 185, 35)))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    return plt


def new_figure(nrows=1, ncols=1, figsize=(8, 6)):
    """(fig, axes) with the project style and constrained layout."""
    plt = _pyplot()
    return plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", squeeze=False)


def pot_title(what: str, pot: float) -> str:
    mant, exp = f"{pot:.2e}".split("e")
    return rf"{what}, ${float(mant):.3g} \times 10^{{{int(exp)}}}$ POT"


def _regions_contours(ax, regions: list[dict]) -> None:
    from matplotlib.patches import Rectangle

    colours = {"SR": "tab:red", "CR": "black"}
    for r in regions:
        c = colours.get(r["name"], "tab:blue")
        ax.add_patch(Rectangle((r["z_tax_min_m"], r["cda_tax_min_m"] * 1e3),
                               r["z_tax_max_m"] - r["z_tax_min_m"],
                               (r["cda_tax_max_m"] - r["cda_tax_min_m"]) * 1e3,
                               fill=False, lw=2, ec=c, zorder=3))
        ax.annotate(r["name"], (r["z_tax_max_m"], r["cda_tax_max_m"] * 1e3),
                    xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom",
                    color=c, fontsize=14, zorder=4)


def plane_figure(frame, regions: list[dict], title: str, *, weight="weight"):
    """Weighted 2-D histogram of (Z_TAX [m], CDA_TAX [mm]) of ``frame``
    (columns z_tax_m, cda_tax_m, ``weight``), log colour scale, SR/CR."""
    from matplotlib.colors import LogNorm

    fig, axes = new_figure(figsize=(8, 6))
    ax = axes[0, 0]
    xe, ye = np.linspace(-20, 100, 61), np.linspace(0, 300, 61)
    w = frame[weight].to_numpy(float) if frame is not None and len(frame) else np.zeros(0)
    if len(w) and np.any(w > 0):
        h, _, _ = np.histogram2d(frame["z_tax_m"], frame["cda_tax_m"] * 1e3, [xe, ye],
                                 weights=w)
        top = float(h.max())
        low = max(float(h[h > 0].min()), top / DYNAMIC_RANGE)
        norm = LogNorm(vmin=low, vmax=top) if low < top else LogNorm(vmin=top / 10,
                                                                     vmax=top * 10)
        im = ax.pcolormesh(xe, ye, np.where(h > 0, np.maximum(h, low), np.nan).T, norm=norm,
                           cmap="viridis")
        fig.colorbar(im, ax=ax, label="expected events per bin",
                     extend="min" if low > h[h > 0].min() else "neither")
        outside = int(np.sum((frame["z_tax_m"] < xe[0]) | (frame["z_tax_m"] > xe[-1])
                             | (frame["cda_tax_m"] * 1e3 > ye[-1])))
        if outside:
            ax.text(0.02, 0.97, f"{outside} entries outside the axes", transform=ax.transAxes,
                    va="top", fontsize=11)
    else:
        ax.text(0.5, 0.5, "no entry passed the selection", ha="center", va="center",
                transform=ax.transAxes, fontsize=14)
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    _regions_contours(ax, regions)
    ax.set_xlabel(r"$Z_\mathrm{TAX}$ [m]")
    ax.set_ylabel(r"$\mathrm{CDA}_\mathrm{TAX}$ [mm]")
    ax.set_title(title, fontsize=14)
    return fig


def _step_with_errors(ax, values, weights, bins, label):
    h, _ = np.histogram(values, bins, weights=weights)
    e2, _ = np.histogram(values, bins, weights=np.square(weights))
    if not np.any(h > 0):
        return False
    centres = 0.5 * (bins[1:] + bins[:-1])
    line = ax.stairs(h, bins, label=label, lw=1.8)
    ok = h > 0
    ax.errorbar(centres[ok], h[ok], yerr=np.sqrt(e2[ok]), fmt="none",
                ecolor=line.get_edgecolor(), elinewidth=1.2, capsize=0)
    return True


def distributions_figure(groups: dict, title: str):
    """2 × 2 panels (Z_TAX, CDA_TAX, mass, vertex z) of ``groups`` ({label:
    frame with the columns of :data:`DISTRIBUTIONS` and ``weight``}), log y."""
    fig, axes = new_figure(2, 2, figsize=(12, 9))
    for ax, (col, label, bins) in zip(axes.ravel(), DISTRIBUTIONS):
        scale = 1e3 if col == "cda_tax_m" else 1.0
        drawn = False
        for name, frame in groups.items():
            if frame is None or not len(frame) or col not in frame:
                continue
            drawn |= _step_with_errors(ax, frame[col].to_numpy(float) * scale,
                                       frame["weight"].to_numpy(float), bins, name)
        ax.set_xlabel(label, fontsize=20)
        ax.set_ylabel("expected events per bin", fontsize=18)
        ax.set_xlim(bins[0], bins[-1])
        if drawn:
            ax.set_yscale("log")
            top = max(line.get_data()[0].max() for line in ax.patches
                      if hasattr(line, "get_data"))
            ax.set_ylim(top / DYNAMIC_RANGE, top * 30)
            ax.legend(fontsize=11, loc="best")
        else:
            ax.text(0.5, 0.5, "no entry", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=16)
    return fig


def save_figure(fig, path, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` (PNG, atomically) and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def _boxes_overlap(a, b, pad: float = 0.0) -> bool:
    return not (a.x1 <= b.x0 + pad or b.x1 <= a.x0 + pad or a.y1 <= b.y0 + pad
                or b.y1 <= a.y0 + pad)


def _drawn_tick_labels(axis) -> list:
    """Tick labels an axis really draws (ticks inside its view interval)."""
    lo, hi = sorted(axis.get_view_interval())
    out = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        if not (lo - 1e-12 * abs(hi - lo) <= tick.get_loc() <= hi + 1e-12 * abs(hi - lo)):
            continue
        out += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text()]
    return out


def _axes_texts(ax) -> list:
    """Drawn tick labels, axis labels and title of an axes."""
    items = _drawn_tick_labels(ax.xaxis) + _drawn_tick_labels(ax.yaxis)
    return items + [t for t in (ax.xaxis.label, ax.yaxis.label, ax.title)
                    if t.get_visible() and t.get_text()]


def layout_problems(fig) -> list[str]:
    """Text of ``fig`` outside the figure, and labels of two different axes
    that overlap (tick labels, axis labels, titles), as messages."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    problems = []

    def outside(box) -> bool:
        return box.x0 < frame.x0 - 1 or box.y0 < frame.y0 - 1 or box.x1 > frame.x1 + 1 \
            or box.y1 > frame.y1 + 1

    free = list(fig.texts) + ([fig._suptitle] if fig._suptitle is not None else [])
    labelled = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts = _axes_texts(ax)
        free += [t for t in ax.texts if t.get_visible() and t.get_text()]
        legend = ax.get_legend()
        if legend is not None and outside(legend.get_window_extent(renderer)):
            problems.append("a legend lies outside the figure")
        labelled.append([(t.get_text(), t.get_window_extent(renderer)) for t in texts])
        problems += [f"text {text!r} lies outside the figure" for text, box in labelled[-1]
                     if outside(box)]
    problems += [f"text {t.get_text()!r} lies outside the figure" for t in free
                 if t.get_visible() and t.get_text() and outside(t.get_window_extent(renderer))]
    for i, a_items in enumerate(labelled):
        for b_items in labelled[i + 1:]:
            for ta, ba in a_items:
                for tb, bb in b_items:
                    if _boxes_overlap(ba, bb):
                        problems.append(f"{ta!r} of one axes overlaps {tb!r} of another")
    return problems
