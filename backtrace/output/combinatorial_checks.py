"""The checks of the combinatorial estimate: its sensitivity table and the
same-sign validation, as files, lines and a figure.

**Same-sign validation.** NA62 validated its combinatorial estimate on
same-sign pairs in data. :func:`same_sign_block` gives the same-sign
prediction (the same-sign pairs of the estimate, weights = expected events
at the target POT) as histograms of Z_TAX, CDA_TAX, mass and vertex z in
the binning of the plots (:data:`backtrace.output.plots.DISTRIBUTIONS`),
and, with a file of selected same-sign events (:func:`read_selected_events`:
Parquet or CSV, one row per event, columns ``z_tax_m``, ``cda_tax_m``
[m], ``mass_gev``, ``vertex_z_m`` as in ``combinatorial_pairs.parquet``;
the POT in its metadata as for track files), the data histograms and, per
distribution,

    χ² = Σ_k (n_k − μ_k)² / (μ_k + σ_k²),

n_k the events in bin k, μ_k the prediction scaled to the data's POT (to
the data's total in the range when the file gives no POT: a shape
comparison, one degree of freedom less), σ_k its MC error (√Σw²); bins
with neither prediction nor MC error are left out, unless they hold data,
which then add n_k (Neyman's variance). ndf = bins used (− 1 for a shape
comparison); the p-value is that of χ² with ndf degrees of freedom. The
four distributions share the events, so their χ² are not independent and
are not added.

**Sensitivity.** :func:`sensitivity_markdown`, :func:`sensitivity_csv` and
:func:`sensitivity_lines` render the ``sensitivity`` block of
:mod:`backtrace.combinatorial.sensitivity`.

:func:`write_checks` writes ``combinatorial_sensitivity.{md,csv}`` and
``combinatorial_same_sign.png`` next to the other outputs (``backtrace
combinatorial`` and ``backtrace run``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backtrace.io import write_text_atomic
from backtrace.output.plots import (
    DISTRIBUTIONS,
    DYNAMIC_RANGE,
    new_figure,
    pot_title,
    save_figure,
)
from backtrace.tracks import pot_of_file

__all__ = ["SameSignDataError", "SelectedEvents", "read_selected_events", "same_sign_block",
           "with_same_sign_validation", "overlay_figure", "sensitivity_markdown",
           "sensitivity_csv", "sensitivity_lines", "write_checks", "EVENT_COLUMNS"]

#: Columns of a file of selected events (those of the distributions).
EVENT_COLUMNS = tuple(col for col, _, _ in DISTRIBUTIONS)
#: Axis of each distribution in plain text, and the factor from the column's
#: unit to the axis' (CDA_TAX is plotted in mm, as in the plots).
_AXES = {"z_tax_m": ("Z_TAX [m]", 1.0), "cda_tax_m": ("CDA_TAX [mm]", 1e3),
         "mass_gev": ("M_mumu [GeV/c^2]", 1.0), "vertex_z_m": ("vertex z [m]", 1.0)}


class SameSignDataError(ValueError):
    """Raised when a file of selected same-sign events cannot be used."""


@dataclass
class SelectedEvents:
    """A file of selected events: its rows, POT (None: unknown) and digest."""

    path: str
    frame: pd.DataFrame
    pot: float | None
    sha256: str


def read_selected_events(path) -> SelectedEvents:
    """Read a file of selected events (module docstring); at least one of
    :data:`EVENT_COLUMNS` is needed."""
    p = Path(path)
    if not p.is_file():
        raise SameSignDataError(f"{p}: no such file of selected events")
    try:
        frame = pd.read_csv(p, comment="#") if p.suffix.lower() == ".csv" \
            else pd.read_parquet(p)
        pot = pot_of_file(p)
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
        raise SameSignDataError(f"{p}: cannot read the selected events "
                                f"({type(err).__name__}: {err})") from None
    have = [c for c in EVENT_COLUMNS if c in frame]
    if not have:
        raise SameSignDataError(f"{p}: none of the columns {', '.join(EVENT_COLUMNS)} "
                                f"(found {', '.join(map(str, frame.columns)) or 'none'})")
    values = frame[have].apply(pd.to_numeric, errors="coerce")
    return SelectedEvents(str(p), values, pot, hashlib.sha256(p.read_bytes()).hexdigest())


def _histogram(values, weights, edges):
    h, _ = np.histogram(values, edges, weights=weights)
    e2, _ = np.histogram(values, edges, weights=None if weights is None else weights ** 2)
    return h.astype(float), e2.astype(float)


def _prediction(same: pd.DataFrame) -> dict:
    out = {}
    w = same["weight"].to_numpy(float)
    for col, _, edges in DISTRIBUTIONS:
        axis, scale = _AXES[col]
        x = same[col].to_numpy(float) * scale
        h, e2 = _histogram(x, w, edges)
        inside = (x >= edges[0]) & (x <= edges[-1])
        out[col] = {"axis": axis, "column_to_axis": scale, "edges": [float(e) for e in edges],
                    "prediction": h.tolist(), "prediction_stat": np.sqrt(e2).tolist(),
                    "prediction_outside_range": float(w[~inside].sum())}
    return out


def _chi2(n, mu, var) -> tuple[float, int]:
    """χ² and the number of bins used (module docstring)."""
    used = (var > 0) | (n > 0)
    v = np.where(var > 0, var, np.maximum(n, 1.0))
    return float(np.sum((n - mu)[used] ** 2 / v[used])), int(used.sum())


def _compare(pred: dict, events: SelectedEvents, pot_target: float) -> dict:
    from scipy.stats import chi2 as chi2_dist

    out = {}
    for col, entry in pred.items():
        if col not in events.frame:
            continue
        edges = np.asarray(entry["edges"])
        x = events.frame[col].to_numpy(float) * entry["column_to_axis"]
        n, _ = _histogram(x, None, edges)
        mu = np.asarray(entry["prediction"])
        sigma = np.asarray(entry["prediction_stat"])
        shape = events.pot is None
        k = (n.sum() / mu.sum() if mu.sum() > 0 else 0.0) if shape \
            else events.pot / pot_target
        chi2, bins = _chi2(n, mu * k, mu * k + (sigma * k) ** 2)
        ndf = bins - (1 if shape else 0)
        out[col] = {"counts": n.tolist(), "events_outside_range": int(len(x) - n.sum()),
                    "prediction_scale": k, "chi2": chi2, "ndf": ndf,
                    "chi2_ndf": chi2 / ndf if ndf > 0 else None,
                    "p_value": float(chi2_dist.sf(chi2, ndf)) if ndf > 0 else None}
    return out


def same_sign_block(pairs: pd.DataFrame, pot_target: float,
                    events: SelectedEvents | None = None) -> dict:
    """The ``same_sign_validation`` block: the prediction per distribution
    and, with ``events``, the data and χ² (module docstring)."""
    same = pairs[pairs["sign"] == "same"] if len(pairs) else pairs
    block = {"method": "same-sign pairs of the estimate (expected events at the target "
                       "POT) in the binning of the plots; with data: chi2 = sum (n - mu)^2 "
                       "/ (mu + sigma_mu^2), mu scaled to the data's POT (or to its total: "
                       "shape, ndf - 1) (backtrace.output.combinatorial_checks)",
             "pot": pot_target, "pairs": int(len(same)),
             "distributions": _prediction(same), "data": None}
    if events is not None:
        block["data"] = {"file": events.path, "sha256": events.sha256,
                         "events": int(len(events.frame)), "pot": events.pot,
                         "normalisation": "shape" if events.pot is None else "pot",
                         "distributions": _compare(block["distributions"], events,
                                                   pot_target)}
    return block


def with_same_sign_validation(block: dict, pairs: pd.DataFrame, data_path=None) -> dict:
    """A copy of the combinatorial ``block`` with its ``same_sign_validation``
    (the data file ``data_path`` overlaid when given)."""
    events = read_selected_events(data_path) if data_path else None
    pot = block["normalisation"]["pot_target"]
    return {**block, "same_sign_validation": same_sign_block(pairs, pot, events)}


# ---------------------------------------------------------------------------
# Figure
# ---------------------------------------------------------------------------
#: The plots' axis labels (LaTeX) per column.
_LABELS = {col: label for col, label, _ in DISTRIBUTIONS}


def _panel(ax, col: str, entry: dict, data: dict | None) -> None:
    edges = np.asarray(entry["edges"])
    k = data["prediction_scale"] if data else 1.0
    mu = np.asarray(entry["prediction"]) * k
    sigma = np.asarray(entry["prediction_stat"]) * k
    positive = list(mu[mu > 0])
    if np.any(mu > 0):
        ax.stairs(mu, edges, label="same-sign prediction", lw=1.8, color="tab:blue",
                  baseline=None)
        ax.stairs(mu + sigma, edges, baseline=np.maximum(mu - sigma, 0), fill=True,
                  alpha=0.3, color="tab:blue")
    if data:
        n = np.asarray(data["counts"])
        centres = 0.5 * (edges[1:] + edges[:-1])
        ok = n > 0
        ax.errorbar(centres[ok], n[ok], yerr=np.sqrt(n[ok]), fmt="o", color="black", ms=4,
                    label="same-sign data")
        positive += list(n[ok])
        if data["chi2_ndf"] is not None:
            ax.text(0.97, 0.95, rf"$\chi^2$/ndf = {data['chi2']:.3g}/{data['ndf']}",
                    transform=ax.transAxes, ha="right", va="top", fontsize=12)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel(_LABELS.get(col, entry["axis"]), fontsize=18)
    ax.set_ylabel("events per bin", fontsize=16)
    if positive:
        ax.set_yscale("log")
        top = max(positive)
        ax.set_ylim(max(min(positive) / 3, top / DYNAMIC_RANGE), top * 30)
        ax.legend(fontsize=10, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no entry", ha="center", va="center", transform=ax.transAxes)


def overlay_figure(validation: dict):
    """2 × 2 panels: the same-sign prediction (± its MC error) and, when
    present, the data with χ²/ndf."""
    fig, axes = new_figure(2, 2, figsize=(12, 9))
    data = validation.get("data") or {}
    for ax, (col, entry) in zip(axes.ravel(), validation["distributions"].items()):
        _panel(ax, col, entry, (data.get("distributions") or {}).get(col))
    pot = data.get("pot") or validation["pot"]
    what = "same-sign pairs: prediction" + (" and data" if data else "")
    if data and data["normalisation"] == "shape":
        what += " (shape)"
    fig.suptitle(pot_title(what, pot), fontsize=16)
    return fig


# ---------------------------------------------------------------------------
# Sensitivity table
# ---------------------------------------------------------------------------
def _label(name: str, entry: dict) -> str:
    return f"{name} [{entry['unit']}]" if entry.get("unit") else name


def sensitivity_markdown(block: dict) -> str:
    """The sensitivity table and the statements, as Markdown."""
    sens = block["sensitivity"]
    regions = list(sens["nominal"])
    lines = ["# Combinatorial background: sensitivity to its inputs", "",
             f"Estimate ({sens['estimate_sign']} sign, pairing {sens['mode']}) per region "
             f"at {block['normalisation']['pot_target']:.3g} POT, one input moved at a time "
             "(**value** = the input's value). Information only: nothing is fitted.", "",
             "| input | value | " + " | ".join(regions) + " |",
             "|---|---|" + "---|" * len(regions)]
    for name, entry in sens["inputs"].items():
        if not entry["used"]:
            lines.append(f"| {_label(name, entry)} | {entry['reason']} |"
                         + " |" * len(regions))
            continue
        for p in entry["points"]:
            x = f"{p['value']:.4g}"
            x = f"**{x}**" if p["value"] == entry["value"] else x
            lines.append(f"| {_label(name, entry)} | {x} | "
                         + " | ".join(f"{p['regions'][r]:.3g}" for r in regions) + " |")
    lines += ["", *_published_lines(sens, "- ")]
    return "\n".join(lines) + "\n"


def _published_lines(sens: dict, bullet: str) -> list[str]:
    pub = sens.get("published")
    if not pub:
        return []
    values = ", ".join(f"{r} {v:g}" + (f" ± {pub['uncertainties'][r]:g}"
                                       if r in pub["uncertainties"] else "")
                       for r, v in pub["values"].items())
    out = [f"What each input alone would have to be for the estimate to equal the "
           f"published value ({values} at {pub['pot']:.3g} POT; "
           f"{' '.join(pub['source'].split())}):", ""]
    for name, entry in sens["inputs"].items():
        for r, need in (entry.get("to_published") or {}).items():
            out.append(f"{bullet}{need['statement']}")
    return out


def sensitivity_csv(block: dict) -> str:
    """One row per input, point and region: input, value, nominal, region,
    expected events."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["input", "unit", "value", "nominal", "region", "expected_events"])
    for name, entry in block["sensitivity"]["inputs"].items():
        for p in entry.get("points", ()):
            for r, v in p["regions"].items():
                w.writerow([name, entry["unit"], p["value"], p["value"] == entry["value"], r,
                            v])
    return buf.getvalue()


def sensitivity_lines(block: dict) -> list[str]:
    """Terminal lines: per region with a published value, what each input
    alone would have to be; the same-sign χ² when data were given."""
    sens = block.get("sensitivity")
    lines = []
    for r in ((sens or {}).get("published") or {}).get("at_target_pot", {}):
        needs = [f"{name} {n['relation']} {n['value']:.3g}" if n["value"] is not None
                 else f"{name} not reachable"
                 for name, e in sens["inputs"].items()
                 for reg, n in (e.get("to_published") or {}).items() if reg == r]
        target = sens["published"]["at_target_pot"][r]
        lines.append(f"to reach the published {r} value ({target:.3g}, information only): "
                     + "; ".join(needs))
    data = (block.get("same_sign_validation") or {}).get("data")
    if data:
        lines.append(f"same-sign data {data['file']} ({data['events']} events, "
                     f"{data['normalisation']}): " + "; ".join(
                         f"{c} chi2/ndf {d['chi2']:.3g}/{d['ndf']}"
                         for c, d in data["distributions"].items()))
    return lines


def write_checks(out_dir, block: dict) -> list[Path]:
    """combinatorial_sensitivity.md/.csv and combinatorial_same_sign.png of a
    combinatorial ``block`` (those of its parts it has)."""
    out = Path(out_dir)
    written = []
    if block.get("sensitivity"):
        written += [write_text_atomic(out / "combinatorial_sensitivity.md",
                                      sensitivity_markdown(block)),
                    write_text_atomic(out / "combinatorial_sensitivity.csv",
                                      sensitivity_csv(block))]
    if block.get("same_sign_validation"):
        save_figure(overlay_figure(block["same_sign_validation"]),
                    out / "combinatorial_same_sign.png")
        written.append(out / "combinatorial_same_sign.png")
    return written
