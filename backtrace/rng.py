"""Random numbers: named streams, key layouts and fixed seeds, in one place.

Every random number of backtrace comes from a counter-based generator
(SplitMix64, the same construction as the C transport loop) keyed by
(seed, index, sample, stream). The numbers drawn for an event depend only
on its key, never on the batch it is processed in or the worker that
processes it, so results are identical for any batch size, ``--jobs`` or
Dask cluster (``docs/conventions.md``, "Random numbers").

- **Streams** (:data:`STREAMS`) separate independent uses of one key:
  stream 0 is PUMAS transport inside C, keyed by (seed, track, sample).
- **Product keys** (:func:`product_key`): a product of a forced interaction
  is identified by (track, sample, repeat, rank) packed into one int64 with
  the bit budget below; the product is transported as a "track" with that
  key. The budget bounds a run: at most :data:`MAX_SAMPLES_PER_TRACK`
  histories per track and :data:`MAX_INTERACTIONS_PER_HISTORY` forced
  interactions per history (:func:`check_budget` says so clearly).
- **Derived seeds**: product keys overlap the (track, sample) keys of the
  backward traces, and the C loop has one transport stream, so product
  transport uses ``seed + PRODUCT_SEED_OFFSET``; the single tracks of the
  combinatorial estimate use ``seed + SINGLE_TRACK_SEED_OFFSET``.
- **Source-model keys**: a source muon is (event, muon rank < 4); the
  second forward stage of ``simulate-tracks`` adds :data:`STAGE2_KEY_OFFSET`;
  a backward-method proposal is (index, sample < 4: the shooting traces).
"""

from __future__ import annotations

import numpy as np

from backtrace.pumas.counter_rng import counter_uniforms

__all__ = ["uniforms", "normals", "STREAMS", "product_key", "interaction_sample",
           "check_budget", "source_muon_key", "proposal_key", "MAX_SAMPLES_PER_TRACK",
           "MAX_INTERACTIONS_PER_HISTORY", "MAX_PRODUCTS_PER_INTERACTION",
           "PRODUCT_SEED_OFFSET", "SINGLE_TRACK_SEED_OFFSET", "PRODUCT_STAGE2_SEED_OFFSET",
           "STAGE2_KEY_OFFSET", "FORWARD_TRACK_OFFSET", "MUONS_PER_EVENT",
           "DENSITY_SOURCE_SEED",
           "DENSITY_EVENTS_SEED_OFFSET", "YIELD_INTEGRAL_SEED", "MT_INTEGRAL_SEED",
           "BudgetError"]

#: Named streams (stream 0 is PUMAS transport inside C; 4 was an unused
#: "secondary" stream and stays free so that the other ids keep their values;
#: "allocation" rounds the expected number of forced draws of a history).
STREAMS = {"transport": 0, "source": 1, "source_decay": 2, "interaction": 3,
           "smearing": 5, "proposal": 6, "lkr": 7, "allocation": 8, "brems": 9}

#: Product-key bit budget: rank of a product in its final state, forced
#: interaction index within a history ("repeat"), history index within a
#: track ("sample"); the track index takes the remaining 43 bits.
PARTICLE_BITS, REPEAT_BITS, SAMPLE_BITS = 3, 10, 14
TRACK_BITS = 63 - PARTICLE_BITS - REPEAT_BITS - SAMPLE_BITS
MAX_PRODUCTS_PER_INTERACTION = 1 << PARTICLE_BITS
MAX_INTERACTIONS_PER_HISTORY = 1 << REPEAT_BITS
MAX_SAMPLES_PER_TRACK = 1 << SAMPLE_BITS
MAX_TRACKS = 1 << TRACK_BITS

#: Seed offset of the forward transport of interaction products.
PRODUCT_SEED_OFFSET = 1
#: Seed offset of the single tracks of the combinatorial estimate (their
#: transport to MUV3 and back through the decay volume, their smearing and
#: the pair subsample): independent of the prompt estimate's streams.
SINGLE_TRACK_SEED_OFFSET = 2
#: Seed offset of the electrons' transport from STRAW1 on
#: (:mod:`backtrace.interactions.products`): a stream independent of the others.
PRODUCT_STAGE2_SEED_OFFSET = 3
#: Key offset of the second forward stage (TAX exit → plane) of simulate-tracks.
STAGE2_KEY_OFFSET = 1 << 40
#: Source muons per event at most (a key holds the rank in 2 bits).
MUONS_PER_EVENT = 4
#: Track-index offset of the forward prompt simulation (``simulate-prompt``):
#: its stage-2 transport, forced interactions and products use track index
#: FORWARD_TRACK_OFFSET + source muon key, above every row index of a track
#: file (< 2³⁵) and within the product key's 36 track bits, so they share no
#: stream with a backward run of the same seed.
FORWARD_TRACK_OFFSET = 1 << 35
#: Seed of the forward source events behind the cached source density, and
#: the offset added to it for the density's own events (independent of any
#: sample a user simulates with the same seed).
DENSITY_SOURCE_SEED = 12345
DENSITY_EVENTS_SEED_OFFSET = 7919
#: Seeds of the fixed Monte Carlo integrals of the source model (meson
#: yields per interaction, m_T-scaled light-meson normalisation).
YIELD_INTEGRAL_SEED = 12345
MT_INTEGRAL_SEED = 54321


class BudgetError(ValueError):
    """Raised when a run asks for more histories, interactions or tracks
    than the random-key layout holds."""


def check_budget(samples_per_track: int | None = None,
                 interactions_per_history: int | None = None,
                 n_tracks: int | None = None) -> None:
    """Raise :class:`BudgetError` naming the limit a run would exceed."""
    if samples_per_track is not None and not 1 <= samples_per_track <= MAX_SAMPLES_PER_TRACK:
        raise BudgetError(f"histories per track = {samples_per_track}: the random-key "
                          f"layout holds 1 to {MAX_SAMPLES_PER_TRACK} "
                          f"({SAMPLE_BITS} bits, backtrace.rng)")
    if interactions_per_history is not None and \
            not 1 <= interactions_per_history <= MAX_INTERACTIONS_PER_HISTORY:
        raise BudgetError(f"forced interactions per history = {interactions_per_history}: "
                          f"the random-key layout holds 1 to "
                          f"{MAX_INTERACTIONS_PER_HISTORY} ({REPEAT_BITS} bits)")
    if n_tracks is not None and n_tracks > MAX_TRACKS:
        raise BudgetError(f"{n_tracks} tracks: the random-key layout holds "
                          f"{MAX_TRACKS} ({TRACK_BITS} bits)")


def product_key(track, sample, repeat, particle) -> np.ndarray:
    """Batch-independent key of a product: (track, sample, repeat, rank)
    packed with the bit budget of this module (int64 array)."""
    track, sample, repeat, particle = (np.asarray(v, np.int64)
                                       for v in (track, sample, repeat, particle))
    for name, v, limit in (("sample", sample, MAX_SAMPLES_PER_TRACK),
                           ("repeat", repeat, MAX_INTERACTIONS_PER_HISTORY),
                           ("particle rank", particle, MAX_PRODUCTS_PER_INTERACTION),
                           ("track", track, MAX_TRACKS)):
        if v.size and (v.min() < 0 or v.max() >= limit):
            raise BudgetError(f"product key: {name} out of [0, {limit})")
    shift_sample = PARTICLE_BITS + REPEAT_BITS
    return ((track << (shift_sample + SAMPLE_BITS)) + (sample << shift_sample)
            + (repeat << PARTICLE_BITS) + particle)


def interaction_sample(sample, repeat) -> np.ndarray:
    """The ``sample`` part of the key of a history's ``repeat``-th forced
    interaction (stream ``interaction``)."""
    return (np.asarray(sample, np.int64) << REPEAT_BITS) + np.asarray(repeat, np.int64)


def source_muon_key(event, muon) -> np.ndarray:
    """Transport key of source muon ``muon`` (rank < 4) of MC event ``event``."""
    return np.asarray(event, np.int64) * MUONS_PER_EVENT + np.asarray(muon, np.int64)


def proposal_key(index, sample: int) -> np.ndarray:
    """Transport key of a backward-method proposal's trace number ``sample``
    (0–3: the shooting traces of the linearisation)."""
    return np.asarray(index, np.int64) * 4 + int(sample)


def uniforms(seed: int, index, m: int, *, stream: str | int, sample=None) -> np.ndarray:
    """(n, m) uniforms in (0, 1) for events ``index`` (int64 array)."""
    s = STREAMS[stream] if isinstance(stream, str) else int(stream)
    return counter_uniforms(seed, index, m, s, sample)


def normals(u1, u2):
    """Standard normal variates from pairs of uniforms (Box–Muller)."""
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
