"""Loading of the PUMAS shared library into backtrace's C layer.

Lookup order:

1. ``BACKTRACE_PUMAS_LIB``: path to a user's own ``libpumas.so`` (PUMAS 1.2.x
   built from source, patch level >= 3);
2. ``libmulder.so`` shipped in the PyPI wheel ``mulder==0.1.0`` (it exports the
   full PUMAS 1.2.3 API).

This is the only module (with its siblings in ``backtrace.pumas``) that
touches ``ffi``/``lib``.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from backtrace.pumas._errors import PumasLibraryError, error_class

ENV_LIBRARY = "BACKTRACE_PUMAS_LIB"
#: The PUMAS API our declarations (_pumas_api.h) were written for.
REQUIRED_VERSION = (1, 2, 3)


def _core():
    try:
        from backtrace.pumas import _core
    except ImportError as err:  # pragma: no cover - broken install
        raise PumasLibraryError(
            "backtrace's compiled C layer is missing "
            f"({err}); reinstall with `pip install -e .`") from err
    return _core


def mulder_library_path() -> Path:
    """Path of libmulder.so inside the installed mulder wheel."""
    spec = importlib.util.find_spec("mulder")
    if spec is None or not spec.submodule_search_locations:
        raise PumasLibraryError(
            "PUMAS not found: install the `mulder==0.1.0` wheel "
            f"(`pip install mulder==0.1.0`) or set {ENV_LIBRARY}")
    path = Path(list(spec.submodule_search_locations)[0]) / "lib" / "libmulder.so"
    if not path.is_file():
        raise PumasLibraryError(f"PUMAS not found: {path} does not exist")
    return path


def library_path() -> Path:
    """The PUMAS library backtrace will load."""
    override = os.environ.get(ENV_LIBRARY)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise PumasLibraryError(
                f"{ENV_LIBRARY}={override}: no such file")
        return path
    return mulder_library_path()


@lru_cache(maxsize=None)
def _load(path: str):
    core = _core()
    ffi, lib = core.ffi, core.lib
    buffer = ffi.new("char[]", 1024)
    if lib.bt_load(path.encode(), buffer, 1024) != 0:
        raise PumasLibraryError(ffi.string(buffer).decode())
    version = pumas_version(lib)
    if version[:2] != REQUIRED_VERSION[:2] or version[2] < REQUIRED_VERSION[2]:
        found = ".".join(map(str, version))
        raise PumasLibraryError(
            f"{path} is PUMAS {found}; backtrace needs PUMAS "
            f"{REQUIRED_VERSION[0]}.{REQUIRED_VERSION[1]}.x with x >= "
            f"{REQUIRED_VERSION[2]}")
    return ffi, lib


def pumas_version(lib=None) -> tuple[int, int, int]:
    """(major, minor, patch) reported by the loaded PUMAS library."""
    if lib is None:
        _, lib = load()
    ffi = _core().ffi
    v = ffi.new("int[3]")
    lib.bt_pumas.pumas_version(v, v + 1, v + 2)
    return (v[0], v[1], v[2])


def load():
    """(ffi, lib) with PUMAS loaded; raises PumasLibraryError with one line."""
    return _load(str(library_path()))


def check(rc: int) -> None:
    """Raise the PumasError subclass of a non-zero PUMAS return code."""
    if rc != 0:
        ffi, lib = load()
        function = ffi.string(lib.bt_error_function()).decode() or "?"
        message = ffi.string(lib.bt_error_message()).decode()
        lib.bt_error_clear()
        raise error_class(rc)(rc, function, message)
