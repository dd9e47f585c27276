"""Every figure renders with all its text inside the figure and no labels of
two axes overlapping (backtrace.output.plots.layout_problems)."""

import numpy as np
import pandas as pd

from backtrace.output import plots as plots
from backtrace.regions import load_regions

REGIONS = load_regions().config()["region"]


def _entries(n=400, seed=2):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"z_tax_m": rng.uniform(-30, 110, n),
                         "cda_tax_m": rng.uniform(0, 0.35, n),
                         "mass_gev": rng.uniform(0.2, 2.5, n),
                         "vertex_z_m": rng.uniform(100, 185, n),
                         # weights over 40 decades, as the prompt estimate's
                         "weight": 10 ** rng.uniform(-40, 3, n),
                         "category": rng.choice(["mu-mu", "mu-pi", "other"], n)})


def _check(fig):
    problems = plots.layout_problems(fig)
    import matplotlib.pyplot as plt

    plt.close(fig)
    assert problems == []


def test_plane_figure_log_colour_scale_and_regions():
    fig = plots.plane_figure(_entries(), REGIONS, plots.pot_title("prompt", 1.4e17))
    mesh = fig.axes[0].collections[0]
    from matplotlib.colors import LogNorm

    assert isinstance(mesh.norm, LogNorm)
    assert mesh.norm.vmax / mesh.norm.vmin <= plots.DYNAMIC_RANGE * (1 + 1e-9)
    assert len(fig.axes[0].patches) == len(REGIONS)            # SR and CR contours
    assert "10^{17}" in fig.axes[0].get_title()
    _check(fig)


def test_empty_plane_figure():
    _check(plots.plane_figure(None, REGIONS, "nothing"))


def test_distributions_figure_log_y_with_errors():
    e = _entries()
    fig = plots.distributions_figure({c: e[e["category"] == c] for c in
                                      ("mu-mu", "mu-pi", "other")}, "per category")
    for ax in fig.axes:
        assert ax.get_yscale() == "log"
        assert ax.containers                                      # error bars
    _check(fig)


def _scan_table(n=6):
    x = np.linspace(0, 1.5, n)
    return pd.DataFrame({"sweeper.scale": x, "rate_per_pot": 3e-7 * (1 + x),
                         "rate_rel_err": 0.08, "prompt_total": 4e6 * 10 ** (-3 * x),
                         "prompt_total:stat": 5e6 * 10 ** (-3 * x),
                         "prompt_sr": 1e-3 * (1 + x), "prompt_sr:stat": 1e-3,
                         "prompt_cr": 1e-2 * (1 + x), "prompt_cr:stat": 1e-2})


def test_scan_plot_log_where_decades(tmp_path, monkeypatch):
    from backtrace.magnets import scan as scan

    figs = []
    monkeypatch.setattr(scan, "save_figure", lambda fig, path, dpi=110: figs.append(fig))
    scan._plots(tmp_path, [("sweeper.scale", None)], _scan_table())
    fig, = figs
    rate_ax, prompt_ax = fig.axes
    assert rate_ax.get_yscale() == "log" and prompt_ax.get_yscale() == "log"
    # error bars larger than the values stay above zero on the log axis
    for line in prompt_ax.collections:
        segs = line.get_segments()
        assert all(s[:, 1].min() > 0 for s in segs)
    _check(fig)


def test_scan_plot_2d(tmp_path, monkeypatch):
    from backtrace.magnets import scan as scan

    figs = []
    monkeypatch.setattr(scan, "save_figure", lambda fig, path, dpi=110: figs.append(fig))
    vx, vy = np.array([0.0, 1.0]), np.array([0.5, 1.0, 1.5])
    t = pd.DataFrame({"a": np.repeat(vx, 3), "b": np.tile(vy, 2),
                      "rate_per_pot": np.linspace(1e-7, 3e-7, 6),
                      "prompt_total": np.logspace(-2, 4, 6)})
    scan._plots(tmp_path, [("a", vx), ("b", vy)], t)
    _check(figs[0])


def test_optimize_plot(tmp_path, monkeypatch):
    from backtrace.magnets import scan as scan

    figs = []
    monkeypatch.setattr(scan, "save_figure", lambda fig, path, dpi=110: figs.append(fig))
    doc = {"objective": "prompt_total", "bounds": {"sweeper.scale": [0, 2]},
           "path": [{"setting": {"sweeper.scale": s}, "prompt_total": v,
                     "prompt_total_rel_err": 0.5}
                    for s, v in ((1.0, 1e3), (1.5, 2.0), (0.5, 1e5), (1.8, 0.1))]}
    scan.optimize_plot(tmp_path, doc)
    assert figs[0].axes[0].get_yscale() == "log"
    _check(figs[0])


def test_layout_check_catches_clipped_and_overlapping_text():
    import matplotlib.pyplot as plt

    plt.style.use("default")
    fig, (a, b) = plt.subplots(1, 2, figsize=(3, 2))            # no constrained layout
    a.set_xlabel("a label far too long for a panel of this figure")
    a.text(1.5, 2.0, "off the canvas", transform=a.transAxes)
    a.set_yticks([0, 0.5, 1], ["zero", "a half", "one"])
    b.set_yticks([0, 0.5, 1], ["nought point zero", "nought point five", "one point zero"])
    problems = plots.layout_problems(fig)
    plt.close(fig)
    assert any("'off the canvas' lies outside" in p for p in problems)
    assert any("'a label far too long" in p and "outside" in p for p in problems)
    assert any("overlaps" in p for p in problems)


def test_report_figures_pass_the_layout_check(tmp_path, monkeypatch):
    from backtrace.output import report as report

    figs = {}
    monkeypatch.setattr(report, "save_figure", lambda fig, path, dpi=110:
                        figs.__setitem__(path.name, fig))
    e = _entries().assign(zone="prompt")
    doc = {"pot": 1.4e17, "config": {"regions": {"region": REGIONS}}}
    pairs = _entries(seed=4).assign(sign=np.where(np.arange(400) % 2, "same", "opposite"))
    report._plots(tmp_path, doc, e, pairs)
    assert set(figs) == {"ztax_cdatax.png", "distributions.png",
                         "combinatorial_ztax_cdatax.png", "components.png"}
    for fig in figs.values():
        _check(fig)
