"""The C layer's counter-based random numbers, seen from numpy.

SplitMix64 keyed by (seed, index, sample, stream), the same generator the
C transport loop uses (``_shim.c``). :mod:`backtrace.rng` names the streams
and the key layout; this module only moves the arrays across.
"""

from __future__ import annotations

import numpy as np

from backtrace.pumas._lib import load

__all__ = ["counter_uniforms"]


def counter_uniforms(seed: int, index, m: int, stream: int, sample=None) -> np.ndarray:
    """(n, m) uniforms in (0, 1): row i from the stream keyed by
    (seed, index[i], sample[i] or 0, stream)."""
    ffi, lib = load()
    index = np.ascontiguousarray(index, dtype=np.int64)
    n = len(index)
    out = np.empty((n, m))
    if n == 0 or m == 0:
        return out
    samp = ffi.NULL if sample is None else \
        ffi.from_buffer("long long[]", np.ascontiguousarray(sample, dtype=np.int64))
    lib.bt_rng_uniforms(int(seed) & 0xFFFFFFFFFFFFFFFF, n,
                        ffi.from_buffer("long long[]", index), samp, int(stream), m,
                        ffi.from_buffer("double[]", out))
    return out
