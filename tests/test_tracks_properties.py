"""Property tests of the track readers and row validation (backtrace.tracks):
random tables with bad values of every kind, written as CSV and Parquet,
read back in batches; every row gets exactly the status the module
docstring promises, and the backward tracer never raises on them."""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtrace.tracks import REQUIRED, STATUSES, Tracks, validate, write_tracks

# Hypothesis imports libcst to report a failing example; libcst triggers a
# mypy_extensions DeprecationWarning, which filterwarnings=error turns into
# a pytest INTERNALERROR hiding the failure. Import it once, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst not installed: nothing to pre-import
        pass

#: (half_x, half_y, z_min, z_max) [m]: the backward tracer's box (checked below)
WORLD = (3.0, 3.0, 23.07, 247.3)
NAN, INF = math.nan, math.inf

#: non-numeric strings (none of them a pandas missing-value marker, none
#: with a CSV delimiter, quote or the '#' comment character)
BAD_STRINGS = ("plus", "minus", "1.5.2", "--1", "12abc", "one", "x1")
NUMERIC_STRINGS = {"charge": ("1", "-1", "1.0", "-1.0", "0.5", "2", "0"),
                   "momentum": ("1.5", "-2", "0", "1e150", "-1e-5", "150.25", "inf"),
                   "default": ("1.5", "-2", "0", "1e300", "-1e-5", "150.25", "inf")}


def _numeric_strings(column: str):
    if column == "charge":
        return NUMERIC_STRINGS["charge"]
    return NUMERIC_STRINGS["momentum" if column.endswith("_gev") else "default"]


def _finite(lo, hi):
    # no subnormal / vanishing magnitudes: |p|^2 must not underflow to 0
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False).filter(lambda v: v == 0 or abs(v) > 1e-100)


# Huge momenta (p² would overflow) must still get a status, without warnings.
_P_SPECIAL = st.sampled_from([NAN, INF, -INF, 1e150, -1e150, 1e300, -1e300, 0.0, -0.0])
_X_SPECIAL = st.sampled_from([NAN, INF, -INF, 1e300, -1e300, 0.0, -0.0, 2.999, 3.0, -3.0,
                              3.5])
_Z_SPECIAL = st.sampled_from([NAN, INF, -INF, 1e300, -1e300, 0.0, 23.07, 247.3,
                              246.999, 23.0699, 20.0, 250.0])


def _mostly(good, bad):
    """Three draws in four from ``good``: most rows have several good
    columns, so every later check (charge, momentum, weight, world) is hit."""
    return st.one_of(good, good, good, bad)


NUMBERS = {
    "x_m": _mostly(_finite(-2.99, 2.99), st.one_of(_finite(-3.5, 3.5), _X_SPECIAL)),
    "y_m": _mostly(_finite(-2.99, 2.99), st.one_of(_finite(-3.5, 3.5), _X_SPECIAL)),
    "z_m": _mostly(_finite(23.07, 246.99), _Z_SPECIAL),
    "px_gev": _mostly(_finite(-10.0, 10.0), _P_SPECIAL),
    "py_gev": _mostly(_finite(-10.0, 10.0), _P_SPECIAL),
    "pz_gev": _mostly(_finite(1e-3, 300.0), st.one_of(_finite(-5.0, 300.0), _P_SPECIAL)),
    "charge": _mostly(st.sampled_from([-1.0, 1.0]),
                      st.sampled_from([0.0, -0.0, 2.0, 0.5, -0.5, NAN, INF, -INF])),
}


def _weights(huge: bool):
    special = [NAN, INF, -INF, 0.0, -0.0, -1.0, 1e150, 1e300]
    return _mostly(_finite(0.01, 5.0), st.one_of(_finite(-1.0, 5.0),
                                                  st.sampled_from(special)))


@dataclass
class Table:
    """Cells as (kind, value): kind 'num' (a float), 'numstr' (a string that
    is a number), 'bad' (a string that is not) or 'empty' ('')."""

    n: int
    columns: tuple[str, ...]
    cells: dict
    string_columns: frozenset
    int_charge: bool

    def frame(self, fmt: str) -> pd.DataFrame:
        data = {}
        for c in self.columns:
            cells = self.cells[c]
            if c not in self.string_columns:
                values = [v for _, v in cells]
                data[c] = np.array(values, dtype=np.int64 if c == "charge" and self.int_charge
                                   else float)
            elif fmt == "csv":
                # mixed object column; NaN is written as an empty field
                data[c] = pd.Series([v for _, v in cells], dtype=object)
            else:
                # Parquet cannot mix strings and floats in a column: numbers
                # become their text, NaN a null
                data[c] = pd.Series(
                    [None if k == "num" and math.isnan(v) else
                     (repr(v) if k == "num" else v) for k, v in cells], dtype=object)
        return pd.DataFrame(data, columns=list(self.columns))

    def expected(self, fmt: str) -> list[str]:
        """Row statuses from the rules of the backtrace.tracks docstring."""
        parsed, non_numeric = {}, np.zeros(self.n, bool)
        for c in self.columns:
            vals = []
            for i, (kind, v) in enumerate(self.cells[c]):
                if kind == "num":
                    vals.append(v)
                elif kind == "numstr":
                    vals.append(float(v))
                elif kind == "empty" and fmt == "csv":
                    vals.append(NAN)  # an empty CSV field is a missing value
                else:  # 'bad', or '' in a Parquet string column: not a number
                    vals.append(NAN)
                    non_numeric[i] = True
            parsed[c] = vals
        out = []
        hx, hy, z0, z1 = WORLD
        for i in range(self.n):
            r = {c: parsed[c][i] for c in self.columns}
            if non_numeric[i]:
                out.append("non_numeric")
            elif not all(math.isfinite(r[c]) for c in REQUIRED):
                out.append("nan")
            elif r["charge"] not in (-1.0, 1.0):
                out.append("bad_charge")
            elif not r["pz_gev"] > 0:
                out.append("non_positive_momentum")
            elif "weight" in r and not (math.isfinite(r["weight"]) and r["weight"] > 0):
                out.append("bad_weight")
            elif not (abs(r["x_m"]) < hx and abs(r["y_m"]) < hy and z0 <= r["z_m"] < z1):
                out.append("outside_world")
            else:
                out.append("ok")
        return out


@st.composite
def tables(draw, huge_weight: bool = True, max_rows: int = 12):
    n = draw(st.integers(0, max_rows))
    columns = REQUIRED + (("weight",) if draw(st.booleans()) else ())
    string_columns = frozenset(draw(st.sets(st.sampled_from(columns), max_size=3)))
    cells = {}
    for c in columns:
        numbers = _weights(huge_weight) if c == "weight" else NUMBERS[c]
        cell = numbers.map(lambda v: ("num", v))
        if c in string_columns:
            cell = st.one_of(
                cell,
                st.sampled_from(BAD_STRINGS).map(lambda s: ("bad", s)),
                st.sampled_from(_numeric_strings(c))
                .map(lambda s: ("numstr", s)),
                st.just(("empty", "")))
        cells[c] = draw(st.lists(cell, min_size=n, max_size=n))
    charges = [v for _, v in cells["charge"]]
    int_charge = ("charge" not in string_columns
                  and all(math.isfinite(v) and v == int(v) for v in charges)
                  and draw(st.booleans()))
    return Table(n, columns, cells, string_columns, int_charge)


def _write(table: Table, fmt: str, directory: Path) -> Path:
    df = table.frame(fmt)
    if fmt == "csv":
        path = directory / "tracks.csv"
        path.write_text("# pot = 5e9\n" + df.to_csv(index=False))
    else:
        path = write_tracks(directory / "tracks.parquet", df)
    return path


def _read_batches(path: Path, batch_size: int) -> tuple[Tracks, list[pd.DataFrame]]:
    tracks = Tracks.open(path, pot=1e10)
    return tracks, list(tracks.iter_batches(batch_size))


@lru_cache(maxsize=1)
def _tracer():
    """One backward tracer for the module (slow to build)."""
    from backtrace.transport import TraceConfig, Tracer

    return Tracer(TraceConfig(samples_per_track=1))


# ---------------------------------------------------------------- properties

@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), fmt=st.sampled_from(["csv", "parquet"]),
       batch_size=st.integers(1, 5))
def test_every_row_gets_its_documented_status(table, fmt, batch_size):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(table, fmt, Path(tmp))
        tracks, batches = _read_batches(path, batch_size)
        assert tracks.format == fmt and tracks.pot == 1e10
        assert tracks.n_rows == table.n
        statuses = [validate(b, WORLD) for b in batches]
    assert all(len(s) == len(b) for s, b in zip(statuses, batches))
    assert all(len(b) <= batch_size for b in batches)
    got = [str(s) for part in statuses for s in part]
    assert len(got) == table.n  # counts sum to the input rows
    assert set(got) <= set(STATUSES)
    index = np.concatenate([b["track_index"].to_numpy() for b in batches]) \
        if batches else np.zeros(0, int)
    assert index.tolist() == list(range(table.n))
    assert got == table.expected(fmt)


@settings(max_examples=40, deadline=None, database=None)
@given(table=tables(max_rows=8), fmt=st.sampled_from(["csv", "parquet"]))
def test_status_does_not_depend_on_format_except_empty_strings(table, fmt):
    """The same table read from CSV and Parquet gives the same statuses,
    but for '' (a missing CSV field, a non-number in a Parquet string)."""
    with tempfile.TemporaryDirectory() as tmp:
        got = {}
        for f in ("csv", "parquet"):
            sub = Path(tmp) / f
            sub.mkdir()
            t = Tracks.open(_write(table, f, sub), pot=1e10)
            got[f] = validate(t.read(), WORLD).tolist()
    empty_rows = {i for c in table.columns for i, (k, _) in enumerate(table.cells[c])
                  if k == "empty"}
    for i in range(table.n):
        if i not in empty_rows:
            assert got["csv"][i] == got["parquet"][i]
        else:
            assert got["csv"][i] != "ok" and got["parquet"][i] == "non_numeric"


@settings(max_examples=60, deadline=None, database=None)
@given(table=tables(max_rows=10))
def test_validate_in_memory_frames(table):
    """validate() on the DataFrame itself (no file): the same statuses as
    after a Parquet round trip; without a world box no row is outside it."""
    df = table.frame("parquet")
    expected = table.expected("parquet")
    assert validate(df, WORLD).tolist() == expected
    no_world = validate(df).tolist()
    assert no_world == [("ok" if s == "outside_world" else s) for s in expected]
    # validate does not modify its input
    pd.testing.assert_frame_equal(df, table.frame("parquet"))


def test_world_box_is_the_tracers():
    assert _tracer().world_box == WORLD


@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(huge_weight=False, max_rows=8), fmt=st.sampled_from(["csv", "parquet"]))
def test_tracer_gives_every_row_a_status_and_never_raises(table, fmt):
    from backtrace.transport import HISTORY_STATUSES

    tracer = _tracer()
    with tempfile.TemporaryDirectory() as tmp:
        _, batches = _read_batches(_write(table, fmt, Path(tmp)), 4)
    expected = table.expected(fmt)
    seen = 0
    for batch in batches:
        result = tracer.trace(batch)
        rows = result.row_status.tolist()
        assert len(rows) == len(batch)
        assert result.track_index.tolist() == batch["track_index"].tolist()
        ok = [expected[i] == "ok" for i in batch["track_index"]]
        for row, good, i in zip(rows, ok, batch["track_index"]):
            if good:  # transported: its status is the histories'
                assert row in HISTORY_STATUSES
            else:     # rejected before transport, with the same status
                assert row == expected[i]
        # one history per transported track, none for the rejected rows
        assert len(result.histories) == sum(ok)
        assert sorted(result.histories["track_index"]) == \
            [i for i, g in zip(batch["track_index"], ok) if g]
        seen += len(rows)
    assert seen == table.n


# ---------------------------------------------------------------- fixed cases

_GOOD = dict(x_m=0.1, y_m=-0.2, z_m=183.52, px_gev=0.5, py_gev=-0.3, pz_gev=50.0,
             charge=1.0, weight=1.0)
#: (changes to a good row, status), boundaries of each check
_CASES = [
    ({}, "ok"),
    ({"charge": -1.0, "weight": 1e300, "x_m": 1e300, "z_m": 23.07}, "outside_world"),
    ({"charge": -1.0, "weight": 1e300, "z_m": 23.07}, "ok"),
    ({"z_m": 247.3}, "outside_world"), ({"z_m": 247.299}, "ok"),
    ({"z_m": 23.0699}, "outside_world"), ({"x_m": 3.0}, "outside_world"),
    ({"y_m": -3.0}, "outside_world"), ({"x_m": 2.999, "y_m": -2.999}, "ok"),
    ({"charge": 0.5}, "bad_charge"), ({"charge": 0.0}, "bad_charge"),
    ({"charge": 2.0}, "bad_charge"), ({"charge": -0.5, "pz_gev": -1.0}, "bad_charge"),
    ({"pz_gev": 0.0}, "non_positive_momentum"),
    ({"pz_gev": -0.0, "px_gev": 5.0}, "non_positive_momentum"),
    ({"pz_gev": -3.0}, "non_positive_momentum"), ({"px_gev": 0.0, "py_gev": 0.0}, "ok"),
    ({"pz_gev": 1e150}, "ok"),
    ({"pz_gev": 1e300}, "ok"),
    ({"px_gev": 1e200, "pz_gev": 1.0}, "ok"),
    ({"weight": 0.0}, "bad_weight"), ({"weight": -1.0}, "bad_weight"),
    ({"weight": NAN}, "bad_weight"), ({"weight": INF}, "bad_weight"),
    ({"weight": 0.0, "x_m": 5.0}, "bad_weight"),
    ({"x_m": NAN, "charge": 0.5}, "nan"), ({"z_m": INF}, "nan"), ({"py_gev": -INF}, "nan"),
    ({"charge": NAN}, "nan"), ({"pz_gev": NAN, "weight": 0.0}, "nan"),
    ({"charge": "plus"}, "non_numeric"), ({"x_m": "1.5.2", "z_m": NAN}, "non_numeric"),
    ({"weight": "heavy"}, "non_numeric"), ({"pz_gev": "12abc"}, "non_numeric"),
    ({"charge": "-1"}, "ok"), ({"pz_gev": "75.5"}, "ok"),
]


def _fixed_frame(fmt):
    rows = [{**_GOOD, **change} for change, _ in _CASES]
    df = pd.DataFrame(rows, columns=[*REQUIRED, "weight"])
    for c in df.columns:
        if df[c].map(lambda v: isinstance(v, str)).any():
            df[c] = df[c].astype(object)
            if fmt == "parquet":
                df[c] = [None if isinstance(v, float) and math.isnan(v) else str(v)
                         if not isinstance(v, str) else v for v in df[c]]
        else:
            df[c] = df[c].astype(float)
    return df


def test_fixed_rows_every_status_in_both_formats():
    expected = [status for _, status in _CASES]
    assert set(expected) == set(STATUSES)
    for fmt in ("csv", "parquet"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"t.{fmt}"
            df = _fixed_frame(fmt)
            if fmt == "csv":
                path.write_text(df.to_csv(index=False))
            else:
                write_tracks(path, df)
            tracks = Tracks.open(path, pot=1e10)
            got = [s for b in tracks.iter_batches(7) for s in validate(b, WORLD)]
        assert tracks.n_rows == len(_CASES)
        assert got == expected, fmt
