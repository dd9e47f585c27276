"""Smoke tests of the cffi binding: library lookup, version, errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from backtrace.pumas import PumasError, pumas_version
from backtrace.pumas._errors import error_class
from backtrace.pumas._lib import ENV_LIBRARY, check, library_path, load


def test_version_is_1_2_3():
    assert pumas_version() == (1, 2, 3)


def test_default_library_is_mulder_wheel():
    path = library_path()
    assert path.name == "libmulder.so"
    assert path.parent.parent.name == "mulder"


def _run_cli(env_value: str):
    env = dict(os.environ, **{ENV_LIBRARY: env_value})
    return subprocess.run(
        [sys.executable, "-m", "backtrace.cli", "physics", "table",
         "--material", "iron", "--kinetic-energy", "10"],
        env=env, capture_output=True, text=True, timeout=120)


def test_wrong_library_path_is_one_line_error(tmp_path):
    result = _run_cli(str(tmp_path / "nope.so"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert ENV_LIBRARY in lines[0] and "no such file" in lines[0]


def test_non_pumas_library_is_one_line_error():
    import ctypes.util

    libz = ctypes.util.find_library("z") or "libz.so.1"
    # a real shared object that is not PUMAS
    import ctypes

    path = ctypes.CDLL(libz)._name
    real = next((p for p in ("/lib/x86_64-linux-gnu/" + path,
                             "/usr/lib/x86_64-linux-gnu/" + path, path)
                 if os.path.isfile(p)), None)
    if real is None:
        pytest.skip("no libz to test with")
    result = _run_cli(real)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "does not export pumas_" in lines[0]


def test_pumas_error_becomes_exception_not_exit(physics):
    # An invalid material index makes PUMAS call its error handler; the
    # default handler would exit() the process.
    ffi, lib = load()
    out = ffi.new("double *")
    rc = lib.bt_pumas.pumas_physics_property_range(
        physics.ptr, 0, 999, 10.0, out)
    assert rc != 0
    with pytest.raises(PumasError) as info:
        from backtrace.pumas._lib import check

        check(rc)
    assert info.value.function == "pumas_physics_property_range"
    assert info.value.message  # PUMAS's own text
    assert isinstance(info.value, error_class(rc))


def test_unopenable_physics_paths_are_path_errors(physics, tmp_path):
    """bt_physics_dump / bt_physics_load report a file they cannot open as
    PUMAS's path error, from fopen, with the path in the message."""
    ffi, lib = load()
    missing = str(tmp_path / "no" / "such.pumas")
    rc = lib.bt_physics_dump(physics.ptr, missing.encode())
    with pytest.raises(PumasError) as info:
        check(rc)
    assert isinstance(info.value, error_class(rc)) and rc == lib.PUMAS_RETURN_PATH_ERROR
    assert info.value.function == "fopen"
    assert info.value.message == f"could not open {missing} for writing"
    loaded = ffi.new("struct pumas_physics **")
    rc = lib.bt_physics_load(loaded, missing.encode(), 0)
    with pytest.raises(PumasError) as info:
        check(rc)
    assert rc == lib.PUMAS_RETURN_PATH_ERROR and info.value.function == "fopen"
    assert info.value.message == f"could not open {missing}"


def test_broken_mdf_raises(tmp_path, monkeypatch):
    from backtrace.pumas import Physics

    mdf = tmp_path / "bad.xml"
    mdf.write_text("<pumas><material name='x' density='1'>"
                   "<component name='Unobtainium' fraction='1'/>"
                   "</material></pumas>")
    monkeypatch.setenv("BACKTRACE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(PumasError):
        Physics(mdf=mdf)


def test_unknown_material_lists_known(physics):
    with pytest.raises(KeyError, match="known: air, aluminium, concrete, copper"):
        physics.material_index("Steell")
