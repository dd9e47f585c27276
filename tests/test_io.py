"""Atomic outputs and early writability checks (backtrace.io)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from backtrace.io import (
    OutputError,
    atomic_path,
    check_writable,
    check_writable_dir,
    write_json_atomic,
    write_text_atomic,
)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


class _Boom(RuntimeError):
    pass


def test_atomic_path_keeps_old_content_when_body_raises(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old content\n")
    with pytest.raises(_Boom):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp != target
            tmp.write_text("half-written new con")
            raise _Boom("writer failed")
    assert target.read_text() == "old content\n"
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_path_failure_without_old_file_leaves_nothing(tmp_path):
    target = tmp_path / "new.json"
    with pytest.raises(_Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise _Boom()
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keyboard_interrupt_also_cleans_up(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("v1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("v2")
            raise KeyboardInterrupt
    assert target.read_text() == "v1" and _leftovers(tmp_path) == []


def test_atomic_path_replaces_on_success_and_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()  # nothing visible before the rename
    assert target.read_text() == "new"
    assert _leftovers(target.parent) == []
    with atomic_path(target) as tmp:
        tmp.write_text("newer")
    assert target.read_text() == "newer"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_result_has_umask_permissions_not_0600(tmp_path, mask):
    old = os.umask(mask)
    try:
        path = write_text_atomic(tmp_path / f"f{mask:o}.txt", "x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~mask
    if mask == 0o022:
        assert mode == 0o644  # not mkstemp's 0600


def test_umask_is_restored_after_write(tmp_path):
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "f.txt", "x")
        now = os.umask(0o027)
    finally:
        os.umask(old)
    assert now == 0o027


def test_write_json_atomic_sorted_keys_and_numpy_path(tmp_path):
    payload = {"zeta": np.float64(1.5), "alpha": np.int64(7), "mid": np.arange(3),
               "beta": {"y": np.float32(0.25), "x": np.bool_(True)},
               "path": Path("/some/where/file.parquet"),
               "matrix": np.array([[1.0, 2.0], [3.0, 4.5]])}
    path = write_json_atomic(tmp_path / "doc.json", payload)
    text = path.read_text()
    assert text.endswith("\n")
    back = json.loads(text)
    assert back == {"zeta": 1.5, "alpha": 7, "mid": [0, 1, 2],
                    "beta": {"x": True, "y": 0.25}, "path": "/some/where/file.parquet",
                    "matrix": [[1.0, 2.0], [3.0, 4.5]]}
    assert isinstance(back["alpha"], int) and isinstance(back["zeta"], float)
    # keys sorted at every level, in the file itself
    assert list(back) == sorted(back)
    top = [line.split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert top == sorted(payload)
    assert text.index('"x"') < text.index('"y"')


def test_write_json_atomic_unserialisable_keeps_old_file(tmp_path):
    target = tmp_path / "doc.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json_atomic(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert _leftovers(tmp_path) == []


def test_atomic_path_parent_is_a_file_raises_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=str(blocker / "out.txt")):
        with atomic_path(blocker / "out.txt"):
            pass


# ---------------------------------------------------------------- check_writable

def test_check_writable_parent_is_a_file(tmp_path):
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=str(blocker)) as err:
        check_writable(blocker / "out.json")
    assert isinstance(err.value, OSError)
    with pytest.raises(OutputError, match="not a directory"):
        check_writable_dir(blocker)
    with pytest.raises(OutputError, match=str(blocker)):
        check_writable_dir(blocker / "sub")
    assert blocker.read_text() == "x"


def test_check_writable_directory_given_as_file(tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    with pytest.raises(OutputError, match=rf"{d}.*is a directory"):
        check_writable(d)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root bypasses directory permissions")
def test_check_writable_read_only_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        with pytest.raises(OutputError, match=str(d)):
            check_writable_dir(d)
        with pytest.raises(OutputError, match=str(d)):
            check_writable(d / "out.json")
        with pytest.raises(OutputError, match=str(d)):
            check_writable_dir(d / "new_sub")
        assert list(d.iterdir()) == []
    finally:
        d.chmod(0o755)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root bypasses file permissions")
def test_check_writable_read_only_file(tmp_path):
    f = tmp_path / "out.json"
    f.write_text("{}")
    f.chmod(0o444)
    with pytest.raises(OutputError, match=rf"{f}.*read-only"):
        check_writable(f)


def test_check_writable_creates_directories_and_leaves_no_probe(tmp_path):
    out = tmp_path / "deep" / "er" / "results"
    assert check_writable_dir(out) == out
    assert out.is_dir() and list(out.iterdir()) == []
    target = tmp_path / "other" / "x" / "background.json"
    assert check_writable(target) == target
    assert target.parent.is_dir() and not target.exists()
    assert list(target.parent.iterdir()) == []
    # an existing writable file passes and is left alone
    target.write_text("keep")
    assert check_writable(target) == target and target.read_text() == "keep"


def test_check_writable_bare_file_name_uses_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_writable("plain.json") == Path("plain.json")
    assert list(tmp_path.iterdir()) == []


def test_check_writable_dir_permission_error_names_path(tmp_path, monkeypatch):
    """What a read-only directory does, simulated (runs as root too)."""
    import backtrace.io as bio

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(bio.tempfile, "mkstemp", denied)
    d = tmp_path / "locked"
    with pytest.raises(OutputError, match=rf"cannot write into {d}: Permission denied"):
        check_writable_dir(d)
    with pytest.raises(OutputError, match=rf"{d}: Permission denied"):
        check_writable(d / "background.json")
    with pytest.raises(OutputError, match=rf"cannot write {d / 'x.txt'}: Permission denied"):
        write_text_atomic(d / "x.txt", "x")
