"""cffi build script for backtrace's C layer over PUMAS (API mode).

The compiled module ``backtrace.pumas._core`` holds our navigator, random
numbers, error capture and batch loops. It does not link to PUMAS: the PUMAS
library is opened at run time (``bt_load``), so ``BACKTRACE_PUMAS_LIB`` can
point to any PUMAS 1.2.3 build. Only a C compiler is needed to build it.
"""

from __future__ import annotations

from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent
HEADERS = ("_pumas_api.h", "_shim.h")


def cdef_source() -> str:
    """The declarations given to cffi: our two headers, verbatim."""
    return "\n".join((HERE / name).read_text() for name in HEADERS)


def _relative(path: Path) -> str:
    """Source paths relative to the build directory, as setuptools wants."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def make_ffi() -> cffi.FFI:
    """Configure the cffi builder for ``backtrace.pumas._core``."""
    ffi = cffi.FFI()
    ffi.cdef(cdef_source())
    ffi.set_source(
        "backtrace.pumas._core",
        '#include "_pumas_api.h"\n#include "_shim.h"\n',
        sources=[_relative(HERE / "_shim.c")],
        include_dirs=[str(HERE)],
        libraries=["dl", "m"],
        extra_compile_args=["-O3", "-std=c99", "-D_GNU_SOURCE"],
    )
    return ffi


ffi = make_ffi()

if __name__ == "__main__":  # pragma: no cover - manual build
    ffi.compile(verbose=True)
