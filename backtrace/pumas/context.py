"""A PUMAS transport context driven by batches of numpy arrays.

The per-step work (navigation, locals, random numbers) and the loop over
histories run in C (``bt_transport_batch``); Python hands over arrays.
Random numbers come from a counter-based generator keyed by
(seed, track index, sample index), so each history is reproducible whatever
the batch it is transported in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtrace.pumas._lib import check, load
from backtrace.pumas.navigator import Navigator
from backtrace.pumas.physics import MODES, Physics

__all__ = ["Context", "TransportOptions", "STATUS_NAMES", "RECORD_DTYPE",
           "EVENTS"]

#: enum bt_status (see _shim.h), index = value.
STATUS_NAMES = ("reached_z_min", "reached_z_max", "left_world",
                "energy_limit", "stopped", "decayed", "weight_zero",
                "outside_world", "pumas_error", "record_overflow")

#: enum pumas_event flags used in records.
EVENTS = {"limit_energy": 1, "limit_distance": 2, "medium": 16,
          "start": 4096}

#: Most records one C call may buffer (~100 MB of ``struct bt_record``):
#: recorded transports of many histories go in chunks of at most this many
#: records' worth of histories.
RECORD_BUDGET = 1 << 20

RECORD_DTYPE = np.dtype([
    ("history", "<i8"), ("region", "<i4"), ("event", "<i4"),
    ("position", "<f8", (3,)), ("direction", "<f8", (3,)),
    ("energy", "<f8"), ("weight", "<f8"), ("distance", "<f8"),
    ("grammage", "<f8"),
])


@dataclass(frozen=True)
class TransportOptions:
    """How muons are transported.

    energy_loss: 'csda', 'mixed' (alias 'hybrid') or 'straggled';
    scattering: True for PUMAS's mixed multiple-scattering algorithm;
    decay: True to weight by the muon survival probability;
    direction: 'forward' or 'backward';
    accuracy: PUMAS step accuracy (smaller is finer);
    energy_limit_gev: minimum kinetic energy (forward) or maximum (backward),
    None for no limit;
    field_step_m: largest step in magnetised regions (set on the navigator).
    """

    energy_loss: str = "straggled"
    scattering: bool = True
    decay: bool = True
    direction: str = "backward"
    accuracy: float = 1e-2
    energy_limit_gev: float | None = None

    def __post_init__(self):
        if self.energy_loss not in MODES or self.energy_loss == "disabled":
            raise ValueError(
                f"energy_loss={self.energy_loss!r} (expected csda, mixed, "
                "hybrid or straggled)")
        if self.direction not in ("forward", "backward"):
            raise ValueError(
                f"direction={self.direction!r} (expected forward or backward)")
        if not 0 < self.accuracy <= 1:
            raise ValueError(f"accuracy={self.accuracy} must be in (0, 1]")


def fill_options(o, options: TransportOptions, *, seed: int, record: bool):
    """Pack ``options`` into a ``struct bt_options`` (C side of the batch
    loop) and return it."""
    o.energy_loss = MODES[options.energy_loss]
    o.scattering = MODES["mixed"] if options.scattering else MODES["disabled"]
    o.decay = 0 if options.decay else -1
    o.direction = 0 if options.direction == "forward" else 1
    o.accuracy = options.accuracy
    o.energy_limit = options.energy_limit_gev or 0.0
    o.record = 1 if record else 0
    o.seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    return o


class Context:
    """A PUMAS context bound to a physics and a C navigator."""

    def __init__(self, physics: Physics, navigator: Navigator):
        self.ffi, self.lib = ffi, lib = load()
        self.physics = physics
        self.navigator = navigator
        self._ptr = ffi.new("struct pumas_context **")
        check(lib.bt_pumas.pumas_context_create(
            self._ptr, physics.ptr, lib.bt_context_data_size()))
        lib.bt_context_setup(self._ptr[0], navigator.ptr)
        self._options = ffi.new("struct bt_options *")

    def transport(self, states: dict[str, np.ndarray], options: TransportOptions,
                  *, seed: int, track=None, sample=None, record: bool = False,
                  max_records: int = 64):
        """Transport histories; returns (final states, status, records).

        ``states``: dict with charge, energy [GeV kinetic], weight, position
        (n, 3) [m], direction (n, 3) (unit momentum direction). Not modified.
        ``track``/``sample``: int64 indices keying the random streams.
        ``records``: structured array (RECORD_DTYPE) when ``record``; with
        ``record`` the histories go to C in chunks whose record buffer holds
        at most :data:`RECORD_BUDGET` records (bounded memory, same result:
        every stream is keyed per history).
        """
        n = len(states["energy"])
        charge = np.array(states["charge"], dtype=float)
        energy = np.array(states["energy"], dtype=float)
        weight = np.array(states.get("weight", np.ones(n)), dtype=float)
        position = np.array(states["position"], dtype=float).reshape(n, 3)
        direction = np.array(states["direction"], dtype=float).reshape(n, 3)
        distance = np.zeros(n)
        grammage = np.zeros(n)
        status = np.zeros(n, dtype=np.int32)
        track = np.arange(n, dtype=np.int64) if track is None else \
            np.ascontiguousarray(track, dtype=np.int64)
        sample = np.zeros(n, dtype=np.int64) if sample is None else \
            np.ascontiguousarray(sample, dtype=np.int64)
        if len(track) != n or len(sample) != n:
            raise ValueError("track and sample must have one entry per state")
        o = fill_options(self._options, options, seed=seed, record=record)
        arrays = (track, sample, charge, energy, weight, position, direction, distance,
                  grammage, status)
        step = max(1, RECORD_BUDGET // max(max_records, 1)) if record else max(n, 1)
        parts = []
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            rec = self._transport_chunk(o, [a[lo:hi] for a in arrays], record, max_records)
            if rec is not None:
                rec["history"] += lo
                parts.append(rec)
        final = {"charge": charge, "energy": energy, "weight": weight,
                 "position": position, "direction": direction,
                 "distance": distance, "grammage": grammage}
        rec = None
        if record:
            rec = np.concatenate(parts) if parts else np.zeros(0, dtype=RECORD_DTYPE)
        return final, status, rec

    def _record_buffer(self, capacity: int):
        """A record buffer of at least ``capacity`` records, kept for the
        next calls and not zero-filled (C writes the records it reports):
        no fresh pages to fault in at every call."""
        buf = getattr(self, "_records", None)
        if buf is None or self._records_capacity < capacity:
            alloc = self.ffi.new_allocator(should_clear_after_alloc=False)
            self._records = alloc("struct bt_record[]", capacity)
            self._records_capacity = capacity
        return self._records

    def _transport_chunk(self, o, arrays, record: bool, max_records: int):
        """One C call over views of the arrays (updated in place)."""
        ffi, lib = self.ffi, self.lib
        track, sample, charge, energy, weight, position, direction, distance, grammage, \
            status = arrays
        n = len(track)
        capacity = n * max_records if record else 0
        records = self._record_buffer(max(capacity, 1))
        n_records = ffi.new("long long *")
        fb = ffi.from_buffer
        lib.bt_error_clear()
        lib.bt_transport_batch(
            self._ptr[0], o, n, fb("long long[]", track),
            fb("long long[]", sample), fb("double[]", charge),
            fb("double[]", energy), fb("double[]", weight),
            fb("double[]", position), fb("double[]", direction),
            fb("double[]", distance), fb("double[]", grammage),
            fb("int[]", status), records, capacity, n_records)
        if not record:
            return None
        size = ffi.sizeof("struct bt_record")
        assert size == RECORD_DTYPE.itemsize, "record layout drift"
        return np.frombuffer(ffi.buffer(records, n_records[0] * size),
                             dtype=RECORD_DTYPE).copy()

    def last_error(self) -> str:
        """Message of the last PUMAS error captured (empty if none)."""
        return self.ffi.string(self.lib.bt_error_message()).decode()

    def __del__(self):
        ptr = getattr(self, "_ptr", None)
        if ptr is not None and ptr[0] != self.ffi.NULL:
            self.lib.bt_pumas.pumas_context_destroy(ptr)
