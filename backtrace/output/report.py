"""Outputs of an estimate: terminal tables, Markdown, LaTeX (booktabs), CSV,
JSON (``background.json``) and plots, all written atomically into a
directory; :func:`render` re-creates tables and plots from a saved JSON
(checked against its schema, :mod:`backtrace.output.schema`). The terminal
(:func:`terminal_tables`) and the files show the same numbers, formatted
by the same functions. The category columns are the run's channel's
(:data:`backtrace.regions.CHANNELS`, recorded in the document); with a
factorised estimate (:mod:`backtrace.prompt.factorised`) the outputs show it next
to the direct one, with their ratio (:func:`factorised_lines`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd

from backtrace.io import atomic_path, write_json_atomic, write_text_atomic
from backtrace.output.plots import distributions_figure, plane_figure, pot_title, save_figure
from backtrace.output.pyhf_model import write_model
from backtrace.output.schema import DocumentError, validate_document
from backtrace.prompt.allocation import describe
from backtrace.prompt.estimate import CATEGORIES
from backtrace.regions import SELECTION_DEFAULTS, describe_selection

__all__ = ["write_outputs", "render", "format_value", "rows", "regions", "syst_rows",
           "shift_note", "mc_line", "terminal_tables", "summary_line", "load_document",
           "selection_line", "summary_rows", "summary_terminal", "summary_markdown",
           "summary_latex", "summary_csv", "summary_notes", "p_sr_line", "region_order",
           "categories", "factorised_lines"]

#: Column labels of the categories (Markdown, LaTeX).
CATEGORY_LABELS = {"mu-mu": ("μ-μ", "$\\mu$-$\\mu$"), "mu-pi": ("μ-π", "$\\mu$-$\\pi$"),
                   "e-e": ("e-e", "$e$-$e$"), "other": ("other", "other")}


def categories(doc: dict) -> tuple[str, ...]:
    """The category columns of a document: its channel's (documents written
    before channels: the μ+μ− ones)."""
    cats = doc.get("config", {}).get("regions", {}).get("categories")
    return tuple(cats) if cats else CATEGORIES

#: A value below this fraction of its column's total is shown as "≈ 0" in
#: the tables (terminal, Markdown, LaTeX); the number stays in the JSON and
#: CSV files. A yield 10⁻⁶ of its column is below anything the estimate can
#: resolve (its own MC uncertainty is ≥ 10⁻³ of the total).
NEGLIGIBLE = 1e-6


def negligible(entry: dict, scale: float | None) -> bool:
    """Whether ``entry`` (without a limit) is below :data:`NEGLIGIBLE` of
    ``scale``, the total of its column."""
    return bool(scale) and entry.get("upper_limit_90") is None \
        and abs(entry["value"]) < NEGLIGIBLE * scale


def column_scales(rows, columns) -> dict:
    """{column: Σ |value|} over ``rows`` (each a {column: entry}): the totals
    the :data:`NEGLIGIBLE` rule compares with."""
    return {c: sum(abs(r[c]["value"]) for r in rows if c in r) for c in columns}


def format_value(entry: dict, scale: float | None = None) -> str:
    """'value ± stat [± syst]', '< limit' (90 % CL), or '≈ 0' when the value
    is negligible against ``scale`` (:func:`negligible`)."""
    if entry.get("upper_limit_90") is not None:
        return f"< {entry['upper_limit_90']:.2g}"
    if negligible(entry, scale):
        return "≈ 0"
    if "syst" not in entry:
        return f"{entry['value']:.3g} ± {entry['stat']:.2g}"
    return f"{entry['value']:.3g} ± {entry['stat']:.2g} ± {entry['syst']:.2g}"


#: Row labels of the prompt / upstream-prompt split.
ZONE_LABELS = {"prompt": "prompt", "upstream_prompt": "upstream-prompt"}


def zone_entry(cell: dict, zone: str) -> dict:
    """The zone part of a cell (value ± stat, or its limit); documents
    written before the split had only the zone's value."""
    if "zones" in cell:
        return cell["zones"][zone]
    return {"value": cell[zone], "stat": 0.0,
            "upper_limit_90": cell["upper_limit_90"] if cell[zone] == 0 else None}


def table_rows(doc: dict):
    """(region, row label, {category: entry}) of the yields table: each
    region's prompt and upstream-prompt rows (value ± stat), then its total
    (± stat ± syst)."""
    for region, cats in regions(doc):
        for zone, label in ZONE_LABELS.items():
            yield region, label, {c: zone_entry(cats[c], zone) for c in categories(doc)}
        yield region, "total", {c: cats[c] for c in categories(doc)}


def prompt_scales(doc: dict) -> dict:
    """{category: Σ over regions of its total}: the column totals of the
    prompt table."""
    return column_scales([cats for _, cats in regions(doc)], categories(doc))


def region_order(doc: dict) -> list[str]:
    """Region names in the order of the regions file, 'outside' last (a
    saved ``background.json`` has its keys sorted)."""
    names = [r["name"] for r in doc.get("config", {}).get("regions", {}).get("region", [])]
    names = [n for n in names if n in doc["regions"]]
    rest = sorted(n for n in doc["regions"] if n not in names and n != "outside")
    return names + rest + (["outside"] if "outside" in doc["regions"] else [])


def regions(doc: dict):
    """(region, {category: entry}) in :func:`region_order`."""
    for name in region_order(doc):
        yield name, doc["regions"][name]


def rows(doc: dict):
    for region, cats in regions(doc):
        for cat in categories(doc):
            e = cats[cat]
            yield region, cat, e


def syst_rows(doc: dict):
    """(variation, description, {column: absolute uncertainty}) of the
    systematics table (columns: the regions and 'total'), quadrature last."""
    syst = doc.get("systematics", {})
    table = syst.get("table")
    if not table:
        return
    variations = syst.get("variations", {})
    names = [n for n in syst.get("evaluated", []) if n in table]
    names += [n for n in table if n not in names and n != "quadrature"] + ["quadrature"]
    columns = [c for c in (*region_order(doc), "total") if c in table["quadrature"]]
    for name in names:
        desc = "combined in quadrature" if name == "quadrature" else \
            variations.get(name, {}).get("description", "")
        yield name, desc, {c: table[name][c] for c in columns}


def shift_note(doc: dict, name: str) -> str:
    """'shift of the total ± its paired MC spread' of a re-run variation
    (empty for reweighting ones): a shift within its spread is MC noise."""
    runs = doc.get("systematics", {}).get("variations", {}).get(name, {}).get("runs")
    if not runs:
        return ""
    return ", ".join(f"{d} {r['shift']:+.2g} ± {r['shift_stat']:.2g}"
                     for d, r in sorted(runs.items()))


def _histories(mc: dict) -> str:
    mean = mc.get("histories_per_track_mean")
    if mean is None or abs(mean - mc["samples_per_track"]) < 1e-9:
        return f"{mc['samples_per_track']} histories/track"
    return (f"{mean:.3g} histories/track on average (up to {mc['samples_per_track']}, "
            "in proportion to the track weights)")


LOOSE_REL_UNC = 0.3
"""Above this relative MC uncertainty, a run without --target-rel-unc says
how to get a precise estimate."""


def mc_line(doc: dict) -> str:
    """One line on the Monte Carlo precision reached: the target cell's
    relative MC uncertainty (documents before targets: the total's), the
    total, the histories, the rounds and the allocation."""
    mc = doc.get("mc")
    if not mc:
        return ""
    rel = mc.get("rel_unc")
    cell = mc.get("target_cell", "total")
    value = mc.get("target_value", mc["total_prompt"])
    mc_err = mc.get("target_mc", mc.get("total_prompt_mc"))
    rel_s = f"{100 * rel:.0f} %" if rel is not None else (
        "undefined (no candidate)" if not value else
        "not estimable with one history per track")
    mc_s = "?" if mc_err is None else f"{mc_err:.2g}"
    total_mc = mc.get("total_prompt_mc")
    line = (f"{cell} {value:.3g} ± {mc_s} (MC), relative MC uncertainty {rel_s}; "
            f"total prompt {mc['total_prompt']:.3g} ± "
            f"{'?' if total_mc is None else f'{total_mc:.2g}'} (MC; ± "
            f"{mc['total_prompt_stat']:.2g} with the track sample); "
            + _histories(mc))
    if mc.get("target_rel_unc") is not None:
        reached = mc["stopped_by"] == "target"
        line += (f" after {len(mc['rounds'])} round(s), {mc['elapsed_s']:.0f} s; target "
                 f"{100 * mc['target_rel_unc']:.0f} % "
                 + ("reached" if reached else f"not reached ({mc['stopped_by']} cap)"))
    elif rel is None or rel > LOOSE_REL_UNC:
        line += ("; one pilot round only: add --target-rel-unc 0.05 for a precise "
                 "estimate (rounds of histories, up to --max-time)")
    ts = mc.get("track_sample")
    if ts and mc.get("target_rel_unc") and ts["rel_unc"] > mc["target_rel_unc"]:
        n = sum(doc.get("tracks", {}).values())
        line += (f"; the track sample alone gives ±{100 * ts['rel_unc']:.0f} %: "
                 f"~{ts['tracks_needed_factor'] * n:.2g} tracks would reach the target")
    alloc = mc["rounds"][-1].get("allocation") if mc.get("rounds") else None
    if alloc is not None:
        line += "; forcing allocation " + describe(alloc)
    return line


def terminal_tables(doc: dict) -> list:
    """rich Tables for the terminal: the yields per region and category
    and, when re-runs were made, the systematic uncertainties."""
    from rich.table import Table

    t = Table(title=f"prompt background, {doc['pot']:.3g} POT (value ± stat [± syst]; "
              "< = 90% CL)")
    cats = categories(doc)
    for col in ("region", "", *cats):
        t.add_column(col)
    labels = list(table_rows(doc))
    scale = prompt_scales(doc)
    for i, (region, label, entries) in enumerate(labels):
        t.add_row(region if label == "prompt" else "", label,
                  *(format_value(entries[c], scale[c]) for c in cats),
                  end_section=label == "total" and i < len(labels) - 1)
    tables = [t]
    srows = list(syst_rows(doc))
    if srows and doc["systematics"]["level"] != "none":
        cols = list(srows[0][2])
        st = Table(title="systematic uncertainties (absolute, all categories)")
        for col in ("variation", *cols):
            st.add_column(col, justify="left" if col == "variation" else "right")
        st.add_column("shift ± MC")
        for i, (name, _, vals) in enumerate(srows):
            st.add_row(name, *(f"{vals[col]:.2g}" for col in cols), shift_note(doc, name),
                       end_section=i == len(srows) - 2)
        tables.append(st)
    ft = factorised_table(doc)
    if ft is not None:
        tables.append(ft)
    return tables


def _ratio(r: dict | None) -> str:
    return "—" if r is None else f"{r['value']:.3g} ± {r['stat']:.2g}"


def factorised_lines(doc: dict) -> list[str]:
    """Markdown lines of the factorised estimate next to the direct one
    (empty without one)."""
    f = doc.get("factorised")
    if not f:
        return []
    head = ["## Factorised estimate (η from " + ", ".join(f["eta_vetoes"]) + ")", ""]
    if not f.get("available"):
        return head + [f"Not available: {f.get('reason', '')}."]
    lines = head + [
        f"N(in FV, PID) before the η vetoes: {format_value(f['n_before_eta'])}; "
        f"1 − η_veto = {format_value(f['one_minus_eta_veto'])}.", "",
        "| region | 1 − η_R | factorised N(R) | direct N(R) | direct / factorised |",
        "|---|---|---|---|---|"]
    for region in region_order(doc):
        e = f["regions"].get(region)
        if e is None:
            continue
        lines.append(f"| {region} | {format_value(e['one_minus_eta'])} | "
                     f"{format_value(e['factorised'])} | {format_value(e['direct'])} | "
                     f"{_ratio(e['direct_over_factorised'])} |")
    return lines + ["", f"Method: {f['method']}."]


def factorised_table(doc: dict):
    """A rich Table of the factorised and the direct estimate (None without)."""
    f = doc.get("factorised")
    if not f or not f.get("available"):
        return None
    from rich.table import Table

    t = Table(title=f"factorised vs direct (all categories): N(in FV, PID) = "
              f"{format_value(f['n_before_eta'])}, 1 − η_veto = "
              f"{format_value(f['one_minus_eta_veto'])} (η from {', '.join(f['eta_vetoes'])})")
    for col in ("region", "1 − η_R", "factorised", "direct", "direct/factorised"):
        t.add_column(col)
    for region in region_order(doc):
        e = f["regions"].get(region)
        if e is not None:
            t.add_row(region, format_value(e["one_minus_eta"]), format_value(e["factorised"]),
                      format_value(e["direct"]), _ratio(e["direct_over_factorised"]))
    return t


def selection_line(doc: dict) -> str:
    """The selection cuts of the run (every output prints them)."""
    regions = doc.get("config", {}).get("regions", {})
    text = regions.get("description") or describe_selection(
        {**SELECTION_DEFAULTS, **regions.get("selection", {})})
    boxes = "; ".join(f"{r['name']}: {r['z_tax_min_m']:g} <= Z_TAX < {r['z_tax_max_m']:g} m, "
                      f"{1e3 * r['cda_tax_min_m']:g} <= CDA_TAX < "
                      f"{1e3 * r['cda_tax_max_m']:g} mm" for r in regions.get("region", []))
    estimated = " [est]" if regions.get("estimated") else ""
    return f"selection{estimated}: {text}. Regions: {boxes}."


def physics_line(doc: dict) -> str:
    """Which physics set the run forced (config.physics; documents before
    the sets: 'full')."""
    cfg = doc.get("config", {})
    return (f"physics: {cfg.get('physics', 'full')} (forced: "
            f"{', '.join(cfg.get('processes', []))})")


def summary_line(doc: dict, out_dir) -> str:
    """The closing line of ``backtrace run``: counts, time, where it went."""
    return (f"{sum(doc['tracks'].values())} tracks, {doc['interactions']} forced "
            f"interactions, {doc['candidates']} selected candidates, "
            f"{doc['elapsed_s']:.0f} s → {out_dir}/background.json")


def markdown(doc: dict) -> str:
    cats = categories(doc)
    lines = [f"# Prompt background, {doc['pot']:.3g} POT", "",
             "| region | | " + " | ".join(CATEGORY_LABELS.get(c, (c,))[0] for c in cats)
             + " |", "|---|---|" + "---|" * len(cats)]
    scale = prompt_scales(doc)
    for region, label, entries in table_rows(doc):
        lines.append(f"| {region} | {label} | "
                     + " | ".join(format_value(entries[c], scale[c]) for c in cats) + " |")
    lines += ["", f"{selection_line(doc)[0].upper()}{selection_line(doc)[1:]}", "",
              "Values: yield ± stat ± syst; `<` = 90 % CL upper limit "
              f"({doc['upper_limit_method']}); ≈ 0: below {NEGLIGIBLE:g} of the "
              "column's total (the number is in background.json and background.csv).",
              f"Systematics evaluated: {', '.join(doc['systematics']['evaluated'])}; "
              f"not evaluated: {', '.join(doc['systematics']['not_evaluated'])}.",
              f"Tracks per status: {doc['tracks']}.", f"{physics_line(doc).capitalize()}."]
    srows = list(syst_rows(doc))
    if srows:
        cols = list(srows[0][2])
        lines += ["", "## Systematic uncertainties (absolute, events; all categories)", "",
                  "| variation | " + " | ".join(cols) + " | what | re-run shift of the total ± paired MC spread |",
                  "|---|" + "---|" * (len(cols) + 2)]
        for name, desc, vals in srows:
            lines.append(f"| {name} | " + " | ".join(f"{vals[c]:.2g}" for c in cols)
                         + f" | {desc} | {shift_note(doc, name)} |")
    lines += process_lines(doc)
    if factorised_lines(doc):
        lines += ["", *factorised_lines(doc)]
    if mc_line(doc):
        lines += ["", f"Monte Carlo: {mc_line(doc)}."]
    return "\n".join(lines) + "\n"


def process_lines(doc: dict) -> list[str]:
    """The Markdown table of each cell per forced process (value ± its MC
    error, prompt / upstream-prompt), cells and processes with an entry;
    empty for documents without ``by_process``."""
    procs = doc.get("config", {}).get("processes", [])   # the run's order (JSON is sorted)
    rows = [(region, cat, proc, cats[cat]["by_process"][proc])
            for region, cats in regions(doc) for cat in categories(doc)
            for proc in procs if cats[cat].get("by_process", {}).get(proc, {}).get("n_mc")]
    if not rows:
        return []
    out = ["", "## Per forced process (value ± MC error; prompt / upstream-prompt)", "",
           "| region | category | process | value | prompt | upstream-prompt | MC entries |",
           "|---|---|---|---|---|---|---|"]
    for region, cat, proc, p in rows:
        label = CATEGORY_LABELS.get(cat, (cat,))[0]
        out.append(f"| {region} | {label} | {proc} | {p['value']:.3g} ± {p['mc']:.2g} | "
                   f"{p['prompt']:.3g} | {p['upstream_prompt']:.3g} | {p['n_mc']} |")
    return out


def latex(doc: dict) -> str:
    tex = _tex_entry
    cats = categories(doc)
    out = ["\\begin{tabular}{ll" + "c" * len(cats) + "}", "\\toprule",
           "Region & & " + " & ".join(CATEGORY_LABELS.get(c, (c, _tex_text(c)))[1]
                                      for c in cats) + " \\\\", "\\midrule"]
    rows_ = list(table_rows(doc))
    scale = prompt_scales(doc)
    for i, (region, label, entries) in enumerate(rows_):
        name = _tex_text(region) if label == "prompt" else ""
        out.append(f"{name} & {label} & "
                   + " & ".join(tex(entries[c], scale[c]) for c in cats) + " \\\\")
        if label == "total" and i < len(rows_) - 1:
            out.append("\\midrule")
    out += ["\\bottomrule", "\\end{tabular}", f"% {selection_line(doc)}"]
    srows = list(syst_rows(doc))
    if srows:
        cols = list(srows[0][2])
        out += ["", "% systematic uncertainties (absolute, events; all categories)",
                "\\begin{tabular}{l" + "c" * len(cols) + "}", "\\toprule",
                "Variation & " + " & ".join(cols) + " \\\\", "\\midrule"]
        for name, _, vals in srows:
            if name == "quadrature":
                out.append("\\midrule")
            label = _tex_text(name)
            out.append(f"{label} & " + " & ".join(f"${_tex_num(vals[c])}$" for c in cols)
                       + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(out) + "\n"


def _tex_text(text: str) -> str:
    """Text with LaTeX's special characters (but the backslash) escaped."""
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    return text


def _tex_num(x: float, digits: int = 2) -> str:
    text = f"{x:.{digits}g}"
    if "e" in text:
        mant, exp = text.split("e")
        return f"{mant} \\times 10^{{{int(exp)}}}"
    return text


def csv_text(doc: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["region", "category", "value", "stat", "syst", "upper_limit_90",
                "n_mc", "n_eff", "mc", "prompt", "prompt_stat", "prompt_upper_limit_90",
                "upstream_prompt", "upstream_prompt_stat", "upstream_prompt_upper_limit_90"])
    for region, cat, e in rows(doc):
        zones = [(zone_entry(e, z)["value"], zone_entry(e, z)["stat"],
                  zone_entry(e, z)["upper_limit_90"]) for z in ZONE_LABELS]
        w.writerow([region, cat, e["value"], e["stat"], e["syst"], e["upper_limit_90"],
                    e["n_mc"], e["n_eff"], e.get("mc", ""), *zones[0], *zones[1]])
    return buf.getvalue()


#: The figures of a result: the prompt estimate's (Z_TAX, CDA_TAX) plane and
#: distributions per category and, with a combinatorial estimate, its plane
#: and the components' distributions (combinatorial, same-sign, prompt,
#: upstream-prompt).
FIGURES = ("ztax_cdatax", "distributions", "combinatorial_ztax_cdatax", "components")


def figure(name: str, doc: dict, candidates: pd.DataFrame | None,
           comb_pairs: pd.DataFrame | None = None):
    """The matplotlib figure ``name`` (one of :data:`FIGURES`) of a result."""
    if name not in FIGURES:
        raise ValueError(f"figure {name!r}: expected one of {', '.join(FIGURES)}")
    if name in FIGURES[2:] and comb_pairs is None:
        raise ValueError(f"figure {name!r} needs the combinatorial estimate "
                         "(run with combinatorial=True)")
    regions_cfg = doc["config"]["regions"].get("region", [])
    have = candidates is not None and len(candidates)
    if name == "ztax_cdatax":
        return plane_figure(candidates if have else None, regions_cfg,
                            pot_title("prompt background (all categories)", doc["pot"]))
    if name == "distributions":
        groups = {cat: candidates[candidates["category"] == cat]
                  for cat in categories(doc)} if have else {}
        return distributions_figure(groups, pot_title("prompt background per category",
                                                      doc["pot"]))
    opposite = comb_pairs[comb_pairs["sign"] == "opposite"]
    if name == "combinatorial_ztax_cdatax":
        return plane_figure(opposite, regions_cfg,
                            pot_title("combinatorial background", doc["pot"]))
    components = {"combinatorial": opposite,
                  "same-sign pairs (validation)": comb_pairs[comb_pairs["sign"] == "same"]}
    if have:
        components["prompt"] = candidates[candidates["zone"] == "prompt"]
        components["upstream-prompt"] = candidates[candidates["zone"] == "upstream_prompt"]
    return distributions_figure(components, pot_title("background components", doc["pot"]))


def _plots(out: Path, doc: dict, candidates: pd.DataFrame | None,
           comb_pairs: pd.DataFrame | None = None) -> list[Path]:
    """The :data:`FIGURES` of a result as PNG files in ``out`` (the
    combinatorial ones with a combinatorial estimate)."""
    names = FIGURES if comb_pairs is not None else FIGURES[:2]
    written = []
    for name in names:
        save_figure(figure(name, doc, candidates, comb_pairs), out / f"{name}.png")
        written.append(out / f"{name}.png")
    return written


# ---------------------------------------------------------------------------
# The summary table (backtrace.output.summary)
# ---------------------------------------------------------------------------
#: Column headers of the summary table.
COMPONENT_LABELS = {"combinatorial": "combinatorial", "prompt": "prompt",
                    "upstream_prompt": "upstream-prompt", "total": "total"}


def summary_rows(doc: dict):
    """(region, [(column, entry)]) of the summary table, regions in order."""
    summ = doc["summary"]
    cols = [*summ["components"], "total"]
    for region in region_order(doc):
        if region in summ["regions"]:
            yield region, [(c, summ["regions"][region][c]) for c in cols]


def summary_scales(doc: dict) -> dict:
    """{column: Σ over regions}: the column totals of the summary table."""
    rows = [dict(entries) for _, entries in summary_rows(doc)]
    return column_scales(rows, rows[0] if rows else ())


def summary_cells(doc: dict) -> list[dict]:
    """The summary table as text: per region {column label: cell}."""
    scale = summary_scales(doc)
    return [{"region": region, **{COMPONENT_LABELS[c]: format_value(e, scale[c])
                                  for c, e in entries}}
            for region, entries in summary_rows(doc)]


def p_sr_line(doc: dict) -> str:
    """P(at least one background event in the SR) and its inputs."""
    p = doc["summary"].get("sr")
    if not p:
        return "no SR in the regions file: no P(>= 1 event in SR)"
    lo, hi = p["p_range"]
    return (f"P(>= 1 background event in SR) = 1 - exp(-b) = {100 * p['p_at_least_one']:.3g} % "
            f"for b = {p['expected']:.3g} (range {100 * lo:.3g}–{100 * hi:.3g} %; "
            f"<= {100 * p['p_with_limits']:.3g} % with the limits of empty cells; "
            f"NA62 quotes {100 * p['published_na62']:.3g} %)")


def summary_title(doc: dict) -> str:
    return f"Expected background, {doc['pot']:.3g} POT"


def summary_terminal(doc: dict):
    """The summary as a rich Table."""
    from rich.table import Table

    t = Table(title=summary_title(doc) + " (value ± stat [± syst]; < = 90% CL)")
    rows = list(summary_rows(doc))
    t.add_column("region")
    for c, _ in rows[0][1]:  # long labels break at the hyphen: 80 columns stay uncut
        label = COMPONENT_LABELS[c]
        t.add_column(label.replace("-", "-\n") if len(label) > 12 else label)
    scale = summary_scales(doc)
    for region, entries in rows:
        t.add_row(region, *(format_value(e, scale[c]) for c, e in entries))
    return t


def summary_notes(doc: dict) -> list[str]:
    """The lines under the summary table (in every format)."""
    summ = doc["summary"]
    notes = [p_sr_line(doc), physics_line(doc)]
    if not summ["combinatorial_included"]:
        notes.append("combinatorial background not estimated (--no-combinatorial)")
    else:
        comb = doc["combinatorial"]
        s = comb["sampling"]
        notes.append(f"combinatorial: {s['tracks_paired']} of {s['tracks']} single tracks "
                     f"paired, {s['pairs_evaluated']} of {s['pairs_different_events']} pairs "
                     f"evaluated ({s['method']}); spill model: {comb['spill_model']['name']} "
                     f"(P2 = {comb['spill_model']['pairing_probability']:.3g}, T_eff = "
                     f"{comb['spill_model']['effective_spill_length_s']:.3g} s)")
    notes.append("prompt / upstream-prompt: all categories, ± stat (their systematics per "
                 "region are in the total: POT added linearly between components, the rest "
                 "in quadrature)")
    m = summ["upper_limit_methods"]
    notes.append(f"upper limits: prompt: {m['prompt']}; combinatorial: {m['combinatorial']}")
    prov = summ["provenance"]
    notes.append(f"provenance: {prov.get('command') or ' '.join(prov.get('argv') or [])}; "
                 f"seed {prov['seed']}; tracks {prov['tracks']} (sha256 "
                 f"{(prov['tracks_sha256'] or '')[:16]}…); versions "
                 + ", ".join(f"{k} {v}" for k, v in sorted(prov["versions"].items())))
    return notes


def summary_markdown(doc: dict) -> str:
    rows = list(summary_rows(doc))
    head = [COMPONENT_LABELS[c] for c, _ in rows[0][1]]
    lines = [f"# {summary_title(doc)}", "", "| region | " + " | ".join(head) + " |",
             "|---|" + "---|" * len(head)]
    scale = summary_scales(doc)
    for region, entries in rows:
        lines.append(f"| {region} | "
                     + " | ".join(format_value(e, scale[c]) for c, e in entries) + " |")
    lines += ["", "Values: expected events ± stat [± syst]; `<` = 90 % CL upper limit; "
              f"≈ 0: below {NEGLIGIBLE:g} of the column's total (the number is in "
              "summary.json and summary.csv).", ""]
    lines += [f"- {n}" for n in summary_notes(doc)]
    lines += ["", selection_line(doc)]
    return "\n".join(lines) + "\n"


def _tex_entry(e: dict, scale: float | None = None) -> str:
    if e.get("upper_limit_90") is not None:
        return f"$< {_tex_num(e['upper_limit_90'])}$"
    if negligible(e, scale):
        return "$\\approx 0$"
    syst = f" \\pm {_tex_num(e['syst'])}" if "syst" in e else ""
    return f"${_tex_num(e['value'], 3)} \\pm {_tex_num(e['stat'])}{syst}$"


def summary_latex(doc: dict) -> str:
    rows = list(summary_rows(doc))
    head = [_tex_text(COMPONENT_LABELS[c]) for c, _ in rows[0][1]]
    out = ["\\begin{tabular}{l" + "c" * len(head) + "}", "\\toprule",
           "Region & " + " & ".join(head) + " \\\\", "\\midrule"]
    scale = summary_scales(doc)
    for region, entries in rows:
        out.append(f"{_tex_text(region)} & "
                   + " & ".join(_tex_entry(e, scale[c]) for c, e in entries) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}"]
    out += [f"% {n}" for n in summary_notes(doc)]
    return "\n".join(out) + "\n"


def summary_csv(doc: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["region", "component", "value", "stat", "syst", "upper_limit_90", "n_mc"])
    for region, entries in summary_rows(doc):
        for c, e in entries:
            w.writerow([region, c, e["value"], e["stat"], e.get("syst", ""),
                        e.get("upper_limit_90") if e.get("upper_limit_90") is not None else "",
                        e.get("n_mc", "")])
    return buf.getvalue()


def write_outputs(out_dir, doc: dict, candidates: pd.DataFrame | None = None,
                  comb_pairs: pd.DataFrame | None = None, *, validate: bool = True,
                  signal: dict | None = None) -> list[Path]:
    """background.json/.md/.tex/.csv, candidates.parquet and the plots
    (the document is checked against its schema first, unless ``validate``
    is False: a document :func:`backtrace.estimate` already checked); with
    a ``summary`` block also summary.md/.tex/.csv/.json and, with the
    combinatorial estimate, combinatorial_pairs.parquet and its plots;
    ``signal``: {region: expected signal events} of the pyhf workspace."""
    out = Path(out_dir)
    payload = {k: v for k, v in doc.items() if not k.startswith("_")}
    if validate:
        payload = validate_document(payload)
    written = [write_json_atomic(out / "background.json", payload),
               write_text_atomic(out / "background.md", markdown(payload)),
               write_text_atomic(out / "background.tex", latex(payload)),
               write_text_atomic(out / "background.csv", csv_text(payload))]
    if "summary" in payload:
        written += [write_text_atomic(out / "summary.md", summary_markdown(payload)),
                    write_text_atomic(out / "summary.tex", summary_latex(payload)),
                    write_text_atomic(out / "summary.csv", summary_csv(payload)),
                    write_json_atomic(out / "summary.json", payload["summary"])]
    if candidates is not None:
        with atomic_path(out / "candidates.parquet") as tmp:
            candidates.to_parquet(tmp, index=False)
        written.append(out / "candidates.parquet")
    if comb_pairs is not None:
        with atomic_path(out / "combinatorial_pairs.parquet") as tmp:
            comb_pairs.to_parquet(tmp, index=False)
        written.append(out / "combinatorial_pairs.parquet")
    written += _plots(out, payload, candidates, comb_pairs)
    if "summary" in payload:
        written.append(write_model(out / "background.pyhf.json", payload, signal))
    return written


def load_document(out_dir) -> dict:
    """``background.json`` of a result directory, checked against its schema
    (:class:`backtrace.output.schema.DocumentError` if it does not match)."""
    path = Path(out_dir) / "background.json"
    try:
        doc = json.loads(path.read_text())
    except ValueError as err:
        raise DocumentError(f"{path}: not valid JSON ({err})") from None
    return validate_document(doc, str(path))


def render(out_dir, signal: dict | None = None) -> list[Path]:
    """Re-create tables and plots from ``background.json`` (and candidates,
    combinatorial pairs); ``signal``: {region: expected signal events} of
    the pyhf workspace."""
    out = Path(out_dir)
    doc = load_document(out)
    frames = [pd.read_parquet(p) if p.exists() else None
              for p in (out / "candidates.parquet", out / "combinatorial_pairs.parquet")]
    return write_outputs(out, doc, *frames, signal=signal)


# ---------------------------------------------------------------------------
# The combinatorial estimate alone (backtrace combinatorial)
# ---------------------------------------------------------------------------
def combinatorial_terminal(block: dict):
    """Opposite-sign (estimate) and same-sign (validation) yields per region."""
    from rich.table import Table

    pot = block["normalisation"]["pot_target"]
    t = Table(title=f"combinatorial background, {pot:.3g} POT (value ± pairing stat ± "
              "spill-model syst; < = 90% CL)")
    t.add_column("region")
    for s in ("opposite", "same"):
        t.add_column(f"{s}-sign" + (" (estimate)" if s == "opposite" else " (validation)"))
    for region in block["regions"]["opposite"]:
        t.add_row(region, *(format_value(block["regions"][s][region])
                            for s in ("opposite", "same")))
    return t


def combinatorial_lines(block: dict) -> list[str]:
    """Spill model, sampling sizes and cut flow of a combinatorial estimate."""
    n, s, sm = block["normalisation"], block["sampling"], block["spill_model"]
    flow = block["cutflow"]["opposite"]
    lines = [f"spill model: {sm['name']}: P2 = {sm['pairing_probability']:.3g} "
             f"(T_eff = {sm['effective_spill_length_s']:.3g} s, window ± "
             f"{sm['parameters']['window_ns']['value']:g} ns), "
             f"{sm['parameters']['pot_per_spill']['value']:.3g} POT/spill; "
             f"{n['muons_per_spill']:.3g} muons per spill in the sample's acceptance "
             f"({n['muon_rate_mhz']:.3g} MHz), {n['paired_muons_per_spill']:.3g} paired "
             "(4 chambers, not vetoed)",
             f"pairs: {s['tracks_paired']} of {s['tracks']} tracks paired "
             f"({', '.join(f'{k} {v}' for k, v in block['track_status'].items())}); "
             f"{s['pairs_evaluated']} of {s['pairs_different_events']} pairs of different "
             f"events evaluated ({s['method']}), {s['pairs_same_event_excluded']} same-event "
             "pairs excluded",
             "cut flow (opposite sign, pairs / expected events): "
             + "; ".join(f"{k} {v['pairs']} / {v['weight']:.3g}" for k, v in flow.items())]
    return lines


def write_combinatorial(out_dir, block: dict, pairs: pd.DataFrame) -> list[Path]:
    """combinatorial.json, combinatorial_pairs.parquet and its plots."""
    out = Path(out_dir)
    written = [write_json_atomic(out / "combinatorial.json", block)]
    with atomic_path(out / "combinatorial_pairs.parquet") as tmp:
        pairs.to_parquet(tmp, index=False)
    written.append(out / "combinatorial_pairs.parquet")
    pot = block["normalisation"]["pot_target"]
    regions_cfg = block["config"]["regions"].get("region", [])
    save_figure(plane_figure(pairs[pairs["sign"] == "opposite"], regions_cfg,
                             pot_title("combinatorial background", pot)),
                out / "combinatorial_ztax_cdatax.png")
    save_figure(distributions_figure({f"{s}-sign": pairs[pairs["sign"] == s]
                                      for s in ("opposite", "same")},
                                     pot_title("combinatorial background", pot)),
                out / "combinatorial_distributions.png")
    return written + [out / "combinatorial_ztax_cdatax.png",
                      out / "combinatorial_distributions.png"]
