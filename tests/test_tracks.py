"""Track files: readers, column mapping, POT metadata, row statuses."""

from __future__ import annotations

import numpy as np
import pytest

from backtrace.tracks import (
    TrackFileError,
    Tracks,
    kinetic_energy_gev,
    parse_column_map,
    validate,
    write_tracks,
)

from .conftest import synthetic_tracks


def test_parquet_roundtrip_with_pot(tmp_path):
    df = synthetic_tracks(25)
    path = write_tracks(tmp_path / "t.parquet", df, pot=2.5e11)
    t = Tracks.open(path)
    assert t.format == "parquet" and t.n_rows == 25 and t.pot == 2.5e11
    back = t.read()
    assert list(back["track_index"]) == list(range(25))
    assert np.allclose(back["px_gev"], df["px_gev"])
    assert Tracks.open(path, pot=1e9).pot == 1e9  # --pot overrides


def test_batches_cover_all_rows(tmp_path):
    path = write_tracks(tmp_path / "t.parquet", synthetic_tracks(103))
    batches = list(Tracks.open(path).iter_batches(10))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert np.array_equal(np.concatenate([b["track_index"] for b in batches]),
                          np.arange(103))


def test_csv_with_pot_comment_and_mapping(tmp_path):
    df = synthetic_tracks(7).rename(columns={"x_m": "posX", "charge": "q"})
    path = tmp_path / "t.csv"
    path.write_text("# pot = 3e12\n" + df.to_csv(index=False))
    t = Tracks.open(path, columns=parse_column_map(["x_m=posX", "charge=q"]))
    assert t.pot == 3e12 and t.n_rows == 7
    got = t.read()
    assert np.allclose(got["x_m"], df["posX"]) and set(got["charge"]) <= {-1, 1}


def test_root_tree_with_branch_mapping(tmp_path):
    uproot = pytest.importorskip("uproot")
    df = synthetic_tracks(12)
    path = tmp_path / "t.root"
    branches = {("posX" if c == "x_m" else c): df[c].to_numpy()
                for c in df.columns}
    with uproot.recreate(path) as f:
        f.mktree("muons", {k: np.float64 for k in branches})
        f["muons"].extend(branches)
        f["ntuple"] = branches  # uproot >= 5.4 writes an RNTuple
    t = Tracks.open(path, columns={"x_m": "posX"}, pot=1e10)
    assert t.format == "root" and t.tree == "muons" and t.n_rows == 12
    assert np.allclose(t.read()["x_m"], df["x_m"])
    rn = Tracks.open(path, tree="ntuple", columns={"x_m": "posX"})
    assert np.allclose(rn.read()["x_m"], df["x_m"])
    with pytest.raises(TrackFileError, match="no TTree or RNTuple 'other'"):
        Tracks.open(path, tree="other", columns={"x_m": "posX"})


def test_missing_column_is_one_line_error(tmp_path):
    path = write_tracks(tmp_path / "t.parquet", synthetic_tracks(3).drop(columns="charge"))
    with pytest.raises(TrackFileError) as info:
        Tracks.open(path)
    msg = str(info.value)
    assert "missing required column(s) charge" in msg and "\n" not in msg


@pytest.mark.parametrize("content,match", [
    (b"PAR1\x00\x00garbage", "cannot read as parquet"),
    (b"", "cannot read as parquet"),
])
def test_corrupt_parquet(tmp_path, content, match):
    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    with pytest.raises(TrackFileError, match=match):
        Tracks.open(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(TrackFileError, match="no such file"):
        Tracks.open(tmp_path / "nope.parquet")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TrackFileError, match="empty CSV"):
        Tracks.open(empty)


def test_empty_parquet_is_valid_with_zero_rows(tmp_path):
    path = write_tracks(tmp_path / "e.parquet", synthetic_tracks(0))
    t = Tracks.open(path)
    assert t.n_rows == 0 and list(t.iter_batches(10)) == []


def test_bad_pot(tmp_path):
    path = write_tracks(tmp_path / "t.parquet", synthetic_tracks(2))
    with pytest.raises(TrackFileError, match="POT must be positive"):
        Tracks.open(path, pot=-1.0)


def test_row_statuses():
    df = synthetic_tracks(6)
    df["weight"] = 1.0
    df.loc[0, "px_gev"] = np.nan
    df.loc[1, "charge"] = 2.0
    df.loc[2, "pz_gev"] = -5.0
    df.loc[3, "weight"] = 0.0
    df.loc[4, "x_m"] = 10.0
    status = validate(df, world=(3.0, 3.0, 23.07, 247.0))
    assert list(status) == ["nan", "bad_charge", "non_positive_momentum",
                            "bad_weight", "outside_world", "ok"]


def test_kinetic_energy():
    assert kinetic_energy_gev(0.0) == 0.0
    assert kinetic_energy_gev(100.0) == pytest.approx(
        np.hypot(100.0, 0.1056583755) - 0.1056583755, rel=1e-12)


def test_column_map_errors():
    with pytest.raises(TrackFileError, match="expected NAME=BRANCH"):
        parse_column_map(["x_m"])
    with pytest.raises(TrackFileError, match="not a track column"):
        parse_column_map(["xx=posX"])
