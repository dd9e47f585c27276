"""Counter-based random numbers keyed by (seed, index, sample, stream).

The same SplitMix64 construction as the C transport (``pumas/_shim.c``): the
numbers drawn for an event depend only on its key, never on the batch it is
processed in or the worker that processes it. Streams separate independent
uses (source sampling, interactions, smearing…) of the same event index.
"""

from __future__ import annotations

import numpy as np

__all__ = ["uniforms", "normals", "STREAMS"]

#: Named streams (stream 0 is PUMAS transport inside C).
STREAMS = {"transport": 0, "source": 1, "source_decay": 2, "interaction": 3,
           "secondary": 4, "smearing": 5, "proposal": 6}


def uniforms(seed: int, index, m: int, *, stream: str | int, sample=None) -> np.ndarray:
    """(n, m) uniforms in (0, 1) for events ``index`` (int64 array)."""
    from .pumas import load

    ffi, lib = load()
    index = np.ascontiguousarray(index, dtype=np.int64)
    n = len(index)
    out = np.empty((n, m))
    if n == 0 or m == 0:
        return out
    s = STREAMS[stream] if isinstance(stream, str) else int(stream)
    samp = ffi.NULL if sample is None else \
        ffi.from_buffer("long long[]", np.ascontiguousarray(sample, dtype=np.int64))
    lib.bt_rng_uniforms(int(seed) & 0xFFFFFFFFFFFFFFFF, n,
                        ffi.from_buffer("long long[]", index), samp, s, m,
                        ffi.from_buffer("double[]", out))
    return out


def normals(u1, u2):
    """Standard normal variates from pairs of uniforms (Box–Muller)."""
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
