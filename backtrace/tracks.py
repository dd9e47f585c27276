"""Single-track files: schema, readers (Parquet, CSV, ROOT) and validation.

Schema (one row per track, units in the names):

==============  ========  =================================================
column          required  meaning
==============  ========  =================================================
x_m, y_m, z_m   yes       position [m] (NA62 frame, see geometry/README.md)
px_gev, py_gev,
pz_gev          yes       momentum [GeV/c]
charge          yes       +1 or -1
t_ns            no        time [ns] (within its burst, for the measured-times
                          combinatorial)
weight          no        event weight (default 1)
event_id        no        identifier carried through to outputs
burst_id        no        burst (spill) identifier: with ``t_ns``, the
                          combinatorial pairs tracks in time within a burst
                          (:mod:`backtrace.combinatorial.bursts`)
==============  ========  =================================================

The number of protons on target (POT) a file represents is read from its
metadata (Parquet key-value metadata ``backtrace.pot`` or ``pot``; a CSV
comment line ``# pot = 1.0e12``) and can be given or overridden with
``--pot``. Column names can be mapped (``--columns x_m=posX``), which is how
ROOT TTrees with other branch names are read.

Every row gets a status: ``ok`` or the first problem found, in this order:
``non_numeric`` (a required value, or the weight, is not a number, e.g.
``charge = plus`` in a CSV), ``nan`` (a required value is NaN or infinite),
``bad_charge`` (not ±1),
``non_positive_momentum`` (|p| = 0 or p_z <= 0: the muon must move
downstream), ``bad_weight`` (weight <= 0 or not finite), ``outside_world``
(position outside the geometry's world). Bad rows are counted and
reported, never dropped silently, and never stop a run.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from backtrace.constants import MUON_MASS_GEV
from backtrace.io import atomic_path

__all__ = ["REQUIRED", "OPTIONAL", "STATUSES", "TrackFileError", "Tracks",
           "validate", "numeric_columns", "kinetic_energy_gev", "momentum_gev",
           "parse_column_map", "write_tracks", "pot_of_file"]

REQUIRED = ("x_m", "y_m", "z_m", "px_gev", "py_gev", "pz_gev", "charge")
OPTIONAL = ("t_ns", "weight", "event_id", "burst_id")
#: Row statuses, in the order they are checked.
STATUSES = ("ok", "non_numeric", "nan", "bad_charge", "non_positive_momentum",
            "bad_weight", "outside_world")
#: Columns read as numbers (event_id and burst_id are identifiers, kept as they are).
NUMERIC = REQUIRED + ("t_ns", "weight")
POT_KEYS = (b"backtrace.pot", b"pot")


class TrackFileError(ValueError):
    """Raised when a track file cannot be read or lacks required columns."""


def parse_column_map(items) -> dict[str, str]:
    """``["x_m=posX", ...]`` → {"x_m": "posX"} (schema name → file name)."""
    mapping = {}
    for item in items or ():
        if "=" not in item:
            raise TrackFileError(f"--columns {item!r}: expected NAME=BRANCH")
        name, branch = (s.strip() for s in item.split("=", 1))
        if name not in REQUIRED + OPTIONAL:
            raise TrackFileError(
                f"--columns {item!r}: {name!r} is not a track column "
                f"(expected one of {', '.join(REQUIRED + OPTIONAL)})")
        mapping[name] = branch
    return mapping


def kinetic_energy_gev(p_gev, mass_gev: float = MUON_MASS_GEV):
    """Kinetic energy [GeV] of a particle of momentum p [GeV/c]."""
    p = np.asarray(p_gev, float)
    with np.errstate(over="ignore"):
        t = np.sqrt(p * p + mass_gev * mass_gev) - mass_gev
    # p beyond ~1e154 GeV: p² overflows, the hypot form does not
    return np.where(np.isfinite(t), t, np.hypot(p, mass_gev) - mass_gev)


def momentum_gev(kinetic_gev, mass_gev: float = MUON_MASS_GEV):
    """Momentum [GeV/c] of a particle of kinetic energy T [GeV]: √(T(T+2m))."""
    t = np.asarray(kinetic_gev, float)
    return np.sqrt(t * (t + 2 * mass_gev))


def numeric_columns(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``df`` with its numeric track columns as float (a value that is not a
    number becomes NaN), and which rows held such a value."""
    bad = np.zeros(len(df), dtype=bool)
    out = df.copy() if any(c in df and df[c].dtype.kind not in "fiub"
                           for c in NUMERIC) else df
    for c in NUMERIC:
        if c not in df or df[c].dtype.kind in "fiub":
            continue
        values = pd.to_numeric(df[c], errors="coerce")
        bad |= (values.isna() & df[c].notna()).to_numpy()
        out[c] = values.astype(float)
    return out, bad


def validate(df: pd.DataFrame, world=None) -> np.ndarray:
    """Status string of every row (see module docstring).

    ``world``: optional (half_x, half_y, z_min, z_max) in m.
    """
    n = len(df)
    status = np.full(n, "ok", dtype=object)
    df, non_numeric = numeric_columns(df)
    values = np.column_stack([df[c].to_numpy(dtype=float) for c in REQUIRED]) \
        if n else np.zeros((0, len(REQUIRED)))

    def mark(mask, name):
        status[(status == "ok") & mask] = name

    mark(non_numeric, "non_numeric")
    mark(~np.all(np.isfinite(values), axis=1), "nan")
    charge = df["charge"].to_numpy(dtype=float)
    mark(~np.isin(charge, (-1.0, 1.0)), "bad_charge")
    px, py, pz = (df[c].to_numpy(dtype=float) for c in ("px_gev", "py_gev", "pz_gev"))
    with np.errstate(invalid="ignore"):
        # |p| by hypot: no overflow for momenta beyond 1e154 GeV
        mark(~(pz > 0) | ~(np.hypot(np.hypot(px, py), pz) > 0), "non_positive_momentum")
    if "weight" in df:
        w = df["weight"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            mark(~np.isfinite(w) | ~(w > 0), "bad_weight")
    if world is not None:
        hx, hy, z0, z1 = world
        x, y, z = (df[c].to_numpy(dtype=float) for c in ("x_m", "y_m", "z_m"))
        with np.errstate(invalid="ignore"):
            inside = (np.abs(x) < hx) & (np.abs(y) < hy) & (z >= z0) & (z < z1)
        mark(~inside, "outside_world")
    return status


@dataclass
class Tracks:
    """A track file opened for streaming (see :meth:`open`)."""

    path: Path
    format: str
    n_rows: int
    pot: float | None
    columns: dict[str, str] = field(default_factory=dict)
    tree: str | None = None
    metadata: dict = field(default_factory=dict)

    @classmethod
    def open(cls, path, *, columns=None, pot: float | None = None,
             tree: str | None = None) -> "Tracks":
        """Open a Parquet (default), CSV or ROOT file and check its columns.

        Raises :class:`TrackFileError` with one line naming the file and
        the problem (missing file, unreadable, missing column).
        """
        path = Path(path)
        mapping = dict(columns or {})
        if not path.exists():
            raise TrackFileError(f"{path}: no such file")
        if path.is_dir():
            raise TrackFileError(f"{path}: is a directory, expected a track file")
        extension = os.path.splitext(str(path))[1].lower()
        fmt = {".csv": "csv", ".root": "root"}.get(extension, "parquet")
        try:
            if fmt == "parquet":
                names, n_rows, file_pot, meta = _parquet_info(path)
            elif fmt == "csv":
                names, n_rows, file_pot, meta = _csv_info(path)
            else:
                names, n_rows, file_pot, meta, tree = _root_info(path, tree)
        except TrackFileError:
            raise
        except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
            raise TrackFileError(
                f"{path}: cannot read as {fmt} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else 'corrupt file'})"
            ) from None
        file_names = set(names)
        missing = [c for c in REQUIRED if mapping.get(c, c) not in file_names]
        if missing:
            shown = [f"{c} (mapped to {mapping[c]!r})" if c in mapping else c
                     for c in missing]
            raise TrackFileError(
                f"{path}: missing required column(s) {', '.join(shown)}; "
                f"found {', '.join(sorted(file_names)) or 'none'} "
                "(map names with --columns NAME=BRANCH)")
        for c in OPTIONAL:
            if c not in mapping and c in file_names:
                mapping[c] = c
        for c in REQUIRED:
            mapping.setdefault(c, c)
        chosen = pot if pot is not None else file_pot
        if chosen is not None and not (math.isfinite(chosen) and chosen > 0):
            raise TrackFileError(f"{path}: POT must be positive, got {chosen}")
        return cls(path, fmt, n_rows, chosen, mapping, tree, meta)

    def _rename(self, df: pd.DataFrame) -> pd.DataFrame:
        inverse = {v: k for k, v in self.columns.items()}
        df = df.rename(columns=inverse)
        keep = [c for c in REQUIRED + OPTIONAL if c in df.columns]
        return df[keep]

    def iter_batches(self, batch_size: int = 10_000) -> Iterator[pd.DataFrame]:
        """DataFrames of at most ``batch_size`` rows with schema names and a
        ``track_index`` column (row number in the file)."""
        start = 0
        file_cols = list(dict.fromkeys(self.columns.values()))
        if self.format == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(self.path) as pf:
                for batch in pf.iter_batches(batch_size=batch_size,
                                             columns=file_cols):
                    df = self._rename(batch.to_pandas())
                    df.insert(0, "track_index", np.arange(start, start + len(df)))
                    start += len(df)
                    yield df
        elif self.format == "csv":
            for chunk in pd.read_csv(self.path, comment="#", chunksize=batch_size,
                                     usecols=file_cols):
                df = self._rename(chunk)
                df.insert(0, "track_index", np.arange(start, start + len(df)))
                start += len(df)
                yield df
        else:
            import uproot

            with uproot.open(self.path) as f:
                tree = f[self.tree]
                for arrays in tree.iterate(file_cols, step_size=batch_size,
                                           library="pd"):
                    df = self._rename(arrays)
                    df.insert(0, "track_index", np.arange(start, start + len(df)))
                    start += len(df)
                    yield df

    def read(self) -> pd.DataFrame:
        """The whole file (small files only)."""
        parts = list(self.iter_batches(1 << 20))
        if not parts:
            return pd.DataFrame(columns=["track_index", *REQUIRED])
        return pd.concat(parts, ignore_index=True)

    def digest(self) -> str:
        """SHA-256 of the file bytes (recorded in outputs)."""
        import hashlib

        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()


def _pot_from(meta: dict) -> float | None:
    for key in POT_KEYS:
        if key in meta:
            try:
                return float(meta[key])
            except (TypeError, ValueError):
                raise TrackFileError(f"POT metadata {meta[key]!r} is not a number") from None
    return None


def pot_of_file(path) -> float | None:
    """The POT a Parquet or CSV file records (Parquet key-value metadata
    ``backtrace.pot`` or ``pot``, a CSV comment ``# pot = 1.0e12``), or None."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _csv_info(path)[2]
    return _parquet_info(path)[2]


def _parquet_info(path: Path):
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as pf:
        meta = pf.schema_arrow.metadata or {}
        names = pf.schema_arrow.names
        n = pf.metadata.num_rows
    decoded = {k.decode(errors="replace"): v.decode(errors="replace")
               for k, v in meta.items() if not k.startswith(b"pandas")}
    return names, n, _pot_from(meta), decoded


def _csv_info(path: Path):
    pot = None
    n = 0
    header = None
    with open(path, newline="") as f:
        for line in f:
            stripped = line.strip()
            if stripped.startswith("#"):
                body = stripped.lstrip("#").strip()
                if body.replace(" ", "").lower().startswith("pot="):
                    try:
                        pot = float(body.split("=", 1)[1])
                    except ValueError:
                        raise TrackFileError(
                            f"{path}: POT comment {body!r} is not a number") from None
                continue
            if not stripped:
                continue
            if header is None:
                header = [h.strip() for h in stripped.split(",")]
            else:
                n += 1
    if header is None:
        raise TrackFileError(f"{path}: empty CSV file (no header line)")
    return header, n, pot, {}


def _root_info(path: Path, tree: str | None):
    try:
        import uproot
    except ImportError:
        raise TrackFileError(
            f"{path}: reading ROOT files needs uproot "
            "(pip install 'backtrace[root]')") from None
    with uproot.open(path) as f:
        trees = [k.split(";")[0] for k, cls in f.classnames().items()
                 if cls in ("TTree", "ROOT::RNTuple")]
        if tree is None:
            if not trees:
                raise TrackFileError(f"{path}: no TTree or RNTuple found")
            tree = trees[0]
        elif tree not in trees:
            raise TrackFileError(f"{path}: no TTree or RNTuple {tree!r} (found: "
                                 f"{', '.join(trees) or 'none'})")
        t = f[tree]
        names = list(t.keys())
        n = t.num_entries
    return names, n, None, {}, tree


def write_tracks(path, df: pd.DataFrame, *, pot: float | None = None,
                 metadata: dict | None = None) -> Path:
    """Write a track table as Parquet (atomically) with POT metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    if pot is not None:
        meta[b"backtrace.pot"] = repr(float(pot)).encode()
    for k, v in (metadata or {}).items():
        meta[f"backtrace.{k}".encode()] = str(v).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def env_default_batch() -> int:
    """Default batch size (``BACKTRACE_BATCH_SIZE`` or 2000)."""
    return int(os.environ.get("BACKTRACE_BATCH_SIZE", "2000"))
