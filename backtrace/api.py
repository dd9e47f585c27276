"""The whole estimate in one call.

    >>> import backtrace
    >>> b = backtrace.estimate("examples/sample.parquet", systematics="none")
    >>> print(b.table)                      # doctest: +SKIP
    >>> b.write("result/")                  # doctest: +SKIP

:func:`estimate` takes a single-track file (or a :class:`~backtrace.tracks.Tracks`)
and any field of :class:`Options` as a keyword; it runs the prompt estimate
(:func:`backtrace.prompt.pipeline.run_estimate`: backward paths, forced
interactions, detector, candidates, rounds of histories, systematics), the
combinatorial estimate (:func:`backtrace.combinatorial.pairing.run_combinatorial`)
and the summary table, checks the document against its schema once and
returns a :class:`Background`. ``backtrace run`` is a thin wrapper over it:
its options are the fields of :class:`Options`, with the same defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from backtrace.combinatorial.pairing import CombinatorialConfig, run_combinatorial
from backtrace.combinatorial.spill import load_spill_model
from backtrace.interactions import PHYSICS
from backtrace.output import report
from backtrace.output.combinatorial_checks import (
    read_selected_events,
    with_same_sign_validation,
    write_checks,
)
from backtrace.output.schema import validate_document
from backtrace.output.summary import build_summary
from backtrace.prompt.allocation import parse_allocation
from backtrace.prompt.config import RunConfig
from backtrace.prompt.estimate import mc_error, weighted_yield
from backtrace.prompt.pipeline import run_estimate
from backtrace.prompt.rounds import STOP_REASONS, parse_target_cell
from backtrace.regions import Regions, load_regions
from backtrace.tracks import Tracks, parse_column_map

__all__ = ["Options", "Background", "estimate", "ReplayError", "default"]


class ReplayError(ValueError):
    """Raised when ``rounds_from`` names a result that the given options
    cannot reproduce (another configuration, or rounds that differ)."""


@dataclass(frozen=True)
class Options:
    """Every option of an estimate, with its default (``backtrace run``
    takes its defaults from here; ``backtrace run --help`` explains each).

    Input: ``pot`` (POT the track file represents; None: its metadata),
    ``columns`` ('NAME=BRANCH' column mapping), ``tree`` (ROOT TTree),
    ``target_pot`` (POT the yields are normalised to).
    Beam line and selection: ``geometry`` (file; None: the shipped NA62 K12
    2021 beam line), ``overrides`` ('ELEMENT.KEY=VALUE'), ``channel``
    ('mumu' or 'ee'), ``regions`` (selection and SR/CR file; None: the
    channel's packaged one).
    Forcing: ``physics`` ('full': every process modelled; 'geant4-default':
    those of Geant4's default physics list, for like-for-like comparisons;
    :data:`backtrace.interactions.PHYSICS`), ``interactions_per_history``,
    ``processes`` (empty: the physics set's for the channel), ``prompt_z_min_m`` (prompt/upstream-prompt boundary [m];
    None: the decay-volume entrance), ``allocation`` ('auto', 'uniform',
    'natural' or 'stratum=share,...'), ``transfer_bias``,
    ``final_states_per_point``, ``q_min_gev`` (the smallest energy given to a
    secondary; Python only), ``resolution_scale`` (every tracker resolution
    term × this, for sensitivity studies; Python only).
    Histories and rounds: ``samples_per_track`` (histories per track of the
    first round), ``track_allocation`` ('weight' or 'uniform'),
    ``target_cell`` ('REGION/CATEGORY', several comma-separated, 'published'
    or 'total'; None: outside/mu-mu for
    μ+μ−, total for e+e−), ``target_rel_unc`` (relative MC uncertainty the
    rounds aim at; None: one round), ``max_samples_per_track``,
    ``max_rounds`` (None: no cap), ``max_time_s`` (seconds after which no
    new round starts; None: no cap; systematics and the combinatorial come
    on top), ``rounds_from`` (a ``background.json`` whose rounds to replay
    exactly: same configuration required, time cap ignored), ``prior``
    ('energy', 'full', 'none'), ``seed``, ``systematics`` ('none', 'fast',
    'full').
    Combinatorial: ``combinatorial`` (estimate it too; μ+μ− only),
    ``spill`` (spill-model file; None: the packaged NA62 2021 one),
    ``max_pairs``, ``pairing_mode`` ('auto': measured times within bursts
    when the track file has ``burst_id`` and ``t_ns``, else the spill model;
    'spill-model'; 'bursts'), ``bursts`` (burst table, columns burst_id and
    pot: the counted bursts and their POT; None: the track file's bursts and
    POT), ``same_sign_data`` (a file of selected same-sign events overlaid
    on the same-sign prediction, with χ²/ndf).
    Execution (never changes a result): ``jobs`` (worker processes; 0: every
    core), ``batch_size``, ``scheduler`` (Dask address or 'dask-local'),
    ``progress`` (progress bars on stderr).
    """

    pot: float | None = None
    columns: tuple[str, ...] = ()
    tree: str | None = None
    target_pot: float = 1.4e17
    geometry: str | None = None
    overrides: tuple[str, ...] = ()
    channel: str | None = None
    regions: str | None = None
    interactions_per_history: int = 8
    processes: tuple[str, ...] = ()
    prompt_z_min_m: float | None = None
    allocation: str = "auto"
    transfer_bias: bool = True
    final_states_per_point: int = 1
    q_min_gev: float = RunConfig.q_min_gev
    physics: str = "full"
    resolution_scale: float = 1.0
    samples_per_track: int = 4
    track_allocation: str = "weight"
    target_cell: str | None = None
    #: aim of the default run: μ-μ outside SR/CR to 20 % (MC) [est: a
    #: usable number in a few minutes on 2 cores; 0.05 for paper tables]
    target_rel_unc: float | None = 0.2
    max_samples_per_track: int = 16384
    max_rounds: int | None = None
    #: the default run's time cap of the sampling rounds [s] [est: with the
    #: systematic re-runs and the combinatorial on top, the default run of
    #: the shipped example stays within 5 minutes on 2 cores]
    max_time_s: float | None = 180.0
    rounds_from: str | None = None
    prior: str = "energy"
    seed: int = 1
    systematics: str = "fast"
    combinatorial: bool = True
    spill: str | None = None
    max_pairs: int = 20_000_000
    jobs: int = 0
    batch_size: int = 200
    scheduler: str | None = None
    progress: bool = True
    pairing_mode: str = "auto"
    bursts: str | None = None
    same_sign_data: str | None = None

    def with_(self, **changes) -> "Options":
        """A copy with ``changes``; an unknown name is a TypeError listing
        the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(known))}")
        return replace(self, **changes)


def default(name: str):
    """The default of the :class:`Options` field ``name``."""
    return {f.name: f.default for f in fields(Options)}[name]


# ---------------------------------------------------------------------------
# From options to configurations
# ---------------------------------------------------------------------------
def open_tracks(tracks, opts: Options) -> Tracks:
    """``tracks`` as a :class:`Tracks` (a path is opened with the options'
    column mapping, POT and tree)."""
    if isinstance(tracks, Tracks):
        return tracks
    return Tracks.open(tracks, columns=parse_column_map(opts.columns), pot=opts.pot,
                       tree=opts.tree)


def run_config(opts: Options, selection: Regions) -> RunConfig:
    """The prompt estimate's configuration."""
    processes = tuple(opts.processes) or None
    return RunConfig(
        geometry_file=opts.geometry, overrides=tuple(opts.overrides),
        regions_file=opts.regions, channel=selection.channel, pot_target=opts.target_pot,
        samples_per_track=opts.samples_per_track, seed=opts.seed, prior=opts.prior,
        track_allocation=opts.track_allocation,
        interactions_per_history=opts.interactions_per_history, processes=processes,
        prompt_z_min_m=opts.prompt_z_min_m,
        allocation=parse_allocation(opts.allocation,
                                    processes or PHYSICS[opts.physics][selection.channel]),
        transfer_bias=opts.transfer_bias, final_states_per_point=opts.final_states_per_point,
        q_min_gev=opts.q_min_gev, physics=opts.physics,
        resolution_scale=opts.resolution_scale)


def combinatorial_config(opts: Options) -> CombinatorialConfig:
    """The combinatorial estimate's configuration."""
    return CombinatorialConfig(
        geometry_file=opts.geometry, overrides=tuple(opts.overrides),
        regions_file=opts.regions, spill_file=opts.spill, pot_target=opts.target_pot,
        seed=opts.seed, max_pairs=opts.max_pairs, pairing_mode=opts.pairing_mode,
        bursts_file=opts.bursts)


def resolved_jobs(jobs: int) -> int:
    """``jobs`` 0 means every core of the machine."""
    return jobs if jobs > 0 else (os.cpu_count() or 1)


# ---------------------------------------------------------------------------
# Replaying the rounds of a saved result
# ---------------------------------------------------------------------------
#: The recorded keys a replay must match (beyond the run configuration).
_REPLAY_MC_KEYS = ("target_rel_unc", "target_cell", "max_samples_per_track")


def replay_plan(path, config: RunConfig, tracks: Tracks, opts: Options, cell_label: str):
    """(rounds to run, the recorded stop reason, the recorded rounds) of the
    result ``path`` (a ``background.json`` or its directory), after checking
    that it was made with the same configuration (:class:`ReplayError`
    naming the keys that differ)."""
    p = Path(path)
    p = p / "background.json" if p.is_dir() else p
    try:
        doc = json.loads(p.read_text())
        recorded, mc = doc["config"], doc["mc"]
        rounds = mc["rounds"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ReplayError(f"{p}: cannot read the recorded rounds ({err})") from None
    given = {**config.to_dict(), "tracks_sha256": tracks.digest(),
             "samples_per_track": rounds[0]["samples_per_track"]}
    first = dict(recorded, samples_per_track=rounds[0]["samples_per_track"])
    differ = [k for k in sorted(given) if k in first and first[k] != given[k]]
    differ += [f"mc.{k}" for k in _REPLAY_MC_KEYS
               if mc.get(k) != {"target_rel_unc": opts.target_rel_unc,
                                "target_cell": cell_label,
                                "max_samples_per_track": opts.max_samples_per_track}[k]]
    if doc.get("systematics", {}).get("level", opts.systematics) != opts.systematics:
        differ.append("systematics")
    if differ:
        raise ReplayError(f"{p}: recorded with other options ({', '.join(differ)}); "
                          "give the same options to replay its rounds")
    if mc.get("stopped_by") not in STOP_REASONS:
        raise ReplayError(f"{p}: mc.stopped_by {mc.get('stopped_by')!r} is not a known "
                          "stop reason")
    return len(rounds), mc["stopped_by"], rounds


def check_replayed(doc: dict, recorded: list[dict], source) -> None:
    """The replayed rounds must have the recorded histories and values."""
    keys = ("histories", "samples_per_track", "interactions", "target_value")
    for i, (a, b) in enumerate(zip(doc["mc"]["rounds"], recorded)):
        bad = [k for k in keys if a.get(k) != b.get(k)]
        if bad:
            raise ReplayError(f"{source}: round {i + 1} differs from the recorded one "
                              f"({', '.join(bad)}): not the same inputs or software")


# ---------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------
class TextTable(pd.DataFrame):
    """A DataFrame of text cells that prints whole (no column elided at the
    terminal's width)."""

    @property
    def _constructor(self):
        return TextTable

    def __str__(self) -> str:
        return self.to_string()

    __repr__ = __str__


class Background:
    """The result of :func:`estimate` (or of a saved run, :meth:`load`).

    ``document``: the ``background.json`` content (configuration, yields per
    region/zone/category, systematics, Monte Carlo record, the summary);
    ``candidates``: the selected prompt candidates (one row each, weights
    normalised to the target POT); ``combinatorial``: the combinatorial
    block (None when not estimated) and ``pairs`` its selected pairs;
    ``table`` / ``yields``: the expected background per region and
    component, as text and as numbers; ``prompt_table``: the prompt yields
    per region, zone and category."""

    def __init__(self, document: dict, candidates: pd.DataFrame | None = None,
                 pairs: pd.DataFrame | None = None, estimate=None):
        self.document = document
        self.candidates = candidates if candidates is not None else pd.DataFrame()
        self.pairs = pairs
        self._estimate = estimate      # per-track norms: MC errors of subsets

    def __repr__(self) -> str:
        mc = self.document.get("mc", {})
        rel = mc.get("rel_unc")
        precision = f"{100 * rel:.3g} %" if rel is not None else "not estimable"
        return (f"<Background {self.document['pot']:.3g} POT, {len(self.candidates)} prompt "
                f"candidates, {mc.get('target_cell')} MC uncertainty {precision}>\n"
                f"{self.table}")

    @property
    def combinatorial(self) -> dict | None:
        return self.document.get("combinatorial")

    @property
    def yields(self) -> pd.DataFrame:
        """Expected events per region and component (combinatorial, prompt,
        upstream_prompt, total): value, stat, syst, upper_limit_90."""
        rows = [{"region": region, "component": c, "value": e["value"],
                 "stat": e["stat"], "syst": e.get("syst"),
                 "upper_limit_90": e.get("upper_limit_90")}
                for region, entries in report.summary_rows(self.document)
                for c, e in entries]
        return pd.DataFrame(rows)

    @property
    def table(self) -> pd.DataFrame:
        """The summary table as text cells (value ± stat [± syst], limits,
        '≈ 0' below 10⁻⁶ of the column's total)."""
        return TextTable(report.summary_cells(self.document)).set_index("region")

    @property
    def prompt_table(self) -> pd.DataFrame:
        """Prompt yields per region, zone and category (value, stat, syst
        of the total rows, upper_limit_90)."""
        rows = [{"region": region, "zone": label, "category": cat, **entry}
                for region, label, cells in report.table_rows(self.document)
                for cat, entry in cells.items()]
        return pd.DataFrame(rows)

    def cells(self, where=None) -> pd.DataFrame:
        """Prompt yield of every region × category cell from the candidates
        that pass ``where`` (a function of the candidates table giving a
        boolean mask, e.g. a tighter cut than the run's selection; None:
        all): value, stat (per-track Σw²), mc (the Monte Carlo part, when
        the estimate was made in this session; else NaN), n_mc."""
        c = self.candidates
        if where is not None and len(c):
            c = c[np.asarray(where(c), bool)]
        rows = []
        for region in self.document["regions"]:
            for cat in report.categories(self.document):
                sel = c[(c["region"] == region) & (c["category"] == cat)] if len(c) else c
                y = weighted_yield(sel["weight"], sel["track_index"]) if len(sel) \
                    else weighted_yield([], [])
                mc = float("nan") if self._estimate is None else (
                    mc_error(sel, self._estimate.norm, self._estimate.norm2) if len(sel)
                    else 0.0)
                rows.append({"region": region, "category": cat, "value": y.value,
                             "stat": y.stat, "mc": mc, "n_mc": y.n_mc})
        return pd.DataFrame(rows)

    def plot(self, name: str = "ztax_cdatax"):
        """The matplotlib figure ``name``: one of
        :data:`backtrace.output.report.FIGURES`."""
        return report.figure(name, self.document, self.candidates, self.pairs)

    def write(self, directory) -> list[Path]:
        """Every output file (JSON, Markdown, LaTeX, CSV, Parquet, PNG,
        pyhf) into ``directory``, each written atomically; returns the
        paths. With a combinatorial estimate, also its sensitivity table and
        same-sign validation (:mod:`backtrace.output.combinatorial_checks`)."""
        written = report.write_outputs(directory, self.document, self.candidates, self.pairs,
                                       validate=False)
        if self.combinatorial is not None:
            written += write_checks(directory, self.combinatorial)
        return written

    @classmethod
    def load(cls, directory) -> "Background":
        """A result written by :meth:`write` or ``backtrace run``."""
        out = Path(directory)
        doc = report.load_document(out)
        frames = [pd.read_parquet(p) if p.exists() else None
                  for p in (out / "candidates.parquet", out / "combinatorial_pairs.parquet")]
        return cls(doc, *frames)


# ---------------------------------------------------------------------------
# The whole job
# ---------------------------------------------------------------------------
def estimate(tracks, *, options: Options | None = None, command: str | None = None,
             log=None, **changes) -> Background:
    """The expected background of a single-track sample (module docstring).

    ``tracks``: a file path (Parquet, CSV or ROOT) or a :class:`Tracks`;
    ``options``: an :class:`Options` (default: all defaults); ``changes``:
    fields of :class:`Options` to change; ``command``: the command line to
    record in the provenance (the CLI gives it); ``log``: a callable given
    one line per round and per notice."""
    opts = (options or Options()).with_(**changes)
    sample = open_tracks(tracks, opts)
    selection = load_regions(opts.regions, opts.channel)
    target = opts.target_cell or ("total" if selection.channel == "ee" else "outside/mu-mu")
    cell = parse_target_cell(target, selection.categories)
    config = run_config(opts, selection)
    with_comb = opts.combinatorial and selection.channel == "mumu"
    if opts.combinatorial and not with_comb and log is not None:
        log("combinatorial estimate: implemented for the mumu selection only, "
                   f"skipped for the {selection.channel} channel")
    if with_comb:
        load_spill_model(opts.spill)            # a bad spill file fails before the run
        if opts.same_sign_data:                 # and so does a bad same-sign data file
            read_selected_events(opts.same_sign_data)
    replay = replay_plan(opts.rounds_from, config, sample, opts, target) \
        if opts.rounds_from else None
    result = _prompt(sample, config, opts, cell, replay, log)
    doc, pairs = dict(result.document), None
    if with_comb:
        comb = run_combinatorial(sample, combinatorial_config(opts),
                                 jobs=resolved_jobs(opts.jobs), progress=opts.progress,
                                 scheduler=opts.scheduler, log=log)
        doc["combinatorial"] = with_same_sign_validation(comb.document, comb.pairs,
                                                         opts.same_sign_data)
        pairs = comb.pairs
    doc["summary"] = build_summary(doc, result.candidates, doc.get("combinatorial"),
                                   command=command)
    return Background(validate_document(doc), result.candidates, pairs, result.estimate)


def _prompt(sample: Tracks, config: RunConfig, opts: Options, cell, replay, log):
    """The prompt estimate, or the replay of recorded rounds."""
    result = run_estimate(sample, config, jobs=resolved_jobs(opts.jobs),
                          batch_size=opts.batch_size, progress=opts.progress,
                          systematics=opts.systematics, target_rel_unc=opts.target_rel_unc,
                          max_samples_per_track=opts.max_samples_per_track,
                          max_rounds=opts.max_rounds, max_time_s=opts.max_time_s,
                          replay=None if replay is None else replay[:2],
                          scheduler=opts.scheduler, target_cell=cell, log=log)
    if replay is not None:
        check_replayed(result.document, replay[2], opts.rounds_from)
    return result


