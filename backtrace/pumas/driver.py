"""A C driver of the transport loop, for the speed benchmark.

``c_driver.c`` (beside this file) loads the same PUMAS library and physics
dump as Python and runs the same C batch loop (``_shim.c``) on a job file
written here: the navigator's geometry structs, the transport options and
the initial states. ``backtrace bench`` times it against the Python API on
the same histories. This module is part of the binding because it writes
the C structs byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from backtrace.pumas._lib import library_path, load
from backtrace.pumas.context import TransportOptions, fill_options

__all__ = ["build_driver", "write_job", "run_driver"]

HERE = Path(__file__).resolve().parent


def build_driver(workdir: Path) -> Path | None:
    """Compile the driver with the system C compiler (None: no compiler)."""
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        return None
    exe = Path(workdir) / "c_driver"
    subprocess.run([cc, "-O3", "-std=c99", "-D_GNU_SOURCE", f"-I{HERE}",
                    str(HERE / "c_driver.c"), str(HERE / "_shim.c"),
                    "-o", str(exe), "-ldl", "-lm"], check=True)
    return exe


def write_job(path: Path, navigator, options: TransportOptions, seed: int, record: bool,
              states: dict, track) -> None:
    """The driver's job file: geometry, options, states of ``track``."""
    ffi, _ = load()
    c_opts = fill_options(ffi.new("struct bt_options *"), options, seed=seed, record=record)
    n = len(track)
    g = navigator.ptr
    with open(path, "wb") as f:
        f.write(ffi.buffer(g))
        f.write(ffi.buffer(c_opts))
        f.write(np.int64(n).tobytes())
        f.write(np.int32(navigator.n_regions).tobytes())
        f.write(ffi.buffer(g.slabs, ffi.sizeof("struct bt_slab") * g.n_slabs))
        f.write(ffi.buffer(g.regions, ffi.sizeof("struct bt_region") * navigator.n_regions))
        f.write(np.ascontiguousarray(track, np.int64).tobytes())
        for key in ("charge", "energy", "weight", "position", "direction"):
            f.write(np.ascontiguousarray(states[key], float).tobytes())


def run_driver(exe: Path, physics, job: Path, repeat: int = 3) -> dict:
    """Run a job ``repeat`` times; the driver's JSON (histories/s...)."""
    with open(physics.cache_path, "rb") as f:
        header = f.readline()
    out = subprocess.run([str(exe), str(library_path()), str(physics.cache_path),
                          str(len(header)), str(job), str(repeat)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)
