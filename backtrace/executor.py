"""Ordered, bounded-memory parallel map: local processes or a Dask cluster.

``ordered_map(func, items, jobs=…, scheduler=…)`` is the one place where
backtrace distributes work (trace, run, simulate-tracks). Results come back
in input order, with at most ``window`` tasks in flight, so that inputs and
outputs can be streamed. Every random stream is keyed by (seed, track,
sample), so the results do not depend on where a chunk runs: the local run,
``--jobs N`` and a Dask cluster give bit-identical outputs.

Schedulers (``scheduler=``):

- ``None``: ``jobs`` local processes (spawn), or in-process for ``jobs=1``;
- ``"dask://HOST:PORT"`` or ``"tcp://HOST:PORT"``: a running Dask
  distributed scheduler (``dask scheduler`` + ``dask worker``); the
  cluster's workers do the work and ``jobs`` is not used;
- ``"dask-local"``: a Dask ``LocalCluster`` with ``jobs`` single-threaded
  worker processes, started and closed here.

The ``initializer(*initargs)`` pattern (per-process state such as a loaded
physics table and compiled geometry in a module global) also holds on Dask
workers: each task carries a digest of the pickled (initializer, initargs),
and a worker process re-runs the initializer only when the digest differs
from the last one it ran. Tasks run one at a time per worker process (a
lock), because the per-process state (a PUMAS context) is not thread-safe.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

__all__ = ["ordered_map", "worker_map", "worker_pool", "progress_bar", "SchedulerError",
           "parse_scheduler", "LOCAL_DASK"]

#: ``scheduler`` value that starts a Dask LocalCluster with ``jobs`` workers.
LOCAL_DASK = "dask-local"


class SchedulerError(ValueError):
    """A bad ``scheduler`` value, or Dask missing/unreachable."""


def parse_scheduler(scheduler: str | None) -> str | None:
    """Normalise a scheduler spec: None, ``LOCAL_DASK`` or a ``tcp://`` address."""
    if scheduler is None or scheduler == "":
        return None
    spec = str(scheduler).strip()
    if spec == LOCAL_DASK:
        return LOCAL_DASK
    for prefix in ("dask://", "tcp://"):
        if spec.startswith(prefix):
            host, sep, port = spec[len(prefix):].rpartition(":")
            if not host or not sep or not port.isdigit():
                break
            return f"tcp://{host}:{port}"
    raise SchedulerError(
        f"scheduler {scheduler!r}: expected dask://HOST:PORT, tcp://HOST:PORT "
        f"or {LOCAL_DASK!r}")


def ordered_map(func: Callable, items: Iterable, *, jobs: int, initializer=None,
                initargs=(), window: int | None = None,
                scheduler: str | None = None) -> Iterator:
    """``map(func, items)`` over ``jobs`` processes or a Dask cluster
    (``scheduler``), results in input order, at most ``window`` tasks in
    flight (bounded memory; default twice the number of workers)."""
    spec = parse_scheduler(scheduler)
    if spec is not None:
        _import_distributed()  # a clear error now, not at the first result
        return _dask_map(func, items, spec, jobs=jobs, initializer=initializer,
                         initargs=initargs, window=window)
    return _local_map(func, items, jobs=jobs, initializer=initializer,
                      initargs=initargs, window=window)


def _local_map(func, items, *, jobs, initializer, initargs, window):
    if jobs <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield func(item)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                             initializer=initializer, initargs=initargs) as pool:
        yield from _submit_ordered(pool, func, items, window or 2 * jobs)


def _submit_ordered(pool, func, items, window: int) -> Iterator:
    """Results of ``func`` over ``items`` on ``pool``, in input order, at
    most ``window`` in flight."""
    pending = deque()
    for item in items:
        pending.append(pool.submit(func, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


# ---------------------------------------------------------------------------
# One worker object per process
# ---------------------------------------------------------------------------
#: Per process: the worker object built by :func:`_init_worker`.
_WORKER = None


def _init_worker(factory, args) -> None:
    global _WORKER
    _WORKER = factory(*args)


def _call_worker(task):
    method, args = task
    return method(_WORKER, *args)


def worker_map(factory, factory_args: tuple, method: Callable, items: Iterable, *,
               jobs: int, scheduler: str | None = None, local=None) -> Iterator:
    """``method(worker, *item)`` for every item (a tuple of arguments),
    results in input order; ``method`` is a function of the worker's class
    (e.g. ``Pipeline.process``, pickled by its qualified name). ``worker = factory(*factory_args)``
    is built once per process (``factory`` and its arguments must pickle);
    with ``jobs <= 1`` and no scheduler the work runs here, on ``local``
    when given (an already built worker), else on a new one. This is the
    one pattern behind ``trace``, ``run``, ``simulate-tracks`` and ``scan``."""
    if jobs <= 1 and parse_scheduler(scheduler) is None:
        worker = local if local is not None else factory(*factory_args)
        return (method(worker, *item) for item in items)
    tasks = ((method, tuple(item)) for item in items)
    return ordered_map(_call_worker, tasks, jobs=jobs, initializer=_init_worker,
                       initargs=(factory, tuple(factory_args)), scheduler=scheduler)


@contextmanager
def worker_pool(factory, factory_args: tuple, *, jobs: int, scheduler: str | None = None,
                local=None):
    """A reusable :func:`worker_map`: yields ``run(method, items)`` (``method``
    a function of the worker's class), and
    keeps the worker processes — and the worker object each built once —
    for the whole block (several passes over a file without paying the
    workers' start-up again). Dask workers already keep theirs (digest)."""
    if parse_scheduler(scheduler) is not None or jobs <= 1:
        worker = None
        if jobs <= 1 and parse_scheduler(scheduler) is None:
            worker = local if local is not None else factory(*factory_args)
        yield lambda method, items: worker_map(factory, factory_args, method, items,
                                               jobs=jobs, scheduler=scheduler,
                                               local=worker)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(factory, tuple(factory_args))) as pool:
        yield lambda method, items: _submit_ordered(
            pool, _call_worker, ((method, tuple(item)) for item in items), 2 * jobs)


def progress_bar(total: int, label: str, enabled: bool, unit: str = "tracks"):
    """A rich progress bar on stderr (rate in ``unit``/s, elapsed, ETA);
    use as a context manager, then ``bar.add_task(...)``/``bar.advance``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return f"{speed:,.0f} {unit}/s" if speed else f"… {unit}/s"

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                    Rate(""), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=Console(stderr=True),
                    disable=not enabled, transient=False)


# ---------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------
def _import_distributed():
    try:
        import distributed
    except ImportError as err:
        raise SchedulerError(
            "a Dask scheduler needs the 'distributed' package, which is not "
            "installed: pip install 'backtrace[dask]' (on this machine and on "
            f"every worker) [{err}]") from None
    return distributed


def _dask_client(spec: str, jobs: int):
    """A connected client, and the LocalCluster to close (or None)."""
    distributed = _import_distributed()
    if spec == LOCAL_DASK:
        cluster = distributed.LocalCluster(
            n_workers=max(jobs, 1), threads_per_worker=1, processes=True,
            dashboard_address=None)
        return distributed.Client(cluster), cluster
    try:
        return distributed.Client(spec, timeout="30s"), None
    except OSError as err:
        raise SchedulerError(f"cannot connect to the Dask scheduler at {spec}: "
                             f"{err}") from None


def _dask_map(func, items, spec, *, jobs, initializer, initargs, window):
    client, cluster = _dask_client(spec, jobs)
    pending = deque()
    try:
        key = _init_key(initializer, initargs)
        if window is None:
            threads = sum(client.nthreads().values()) or max(jobs, 1)
            window = 2 * threads
        for item in items:
            pending.append(client.submit(_run_task, func, item, initializer,
                                         initargs, key, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:  # an error or an abandoned generator
            fut.cancel()
        client.close()
        if cluster is not None:
            cluster.close()


def _init_key(initializer, initargs) -> str | None:
    if initializer is None:
        return None
    blob = pickle.dumps((initializer.__module__, initializer.__qualname__,
                         initargs), protocol=4)
    return hashlib.sha256(blob).hexdigest()


#: Per worker process: the digest of the last initializer run, per function.
_INITIALIZED: dict[str, str] = {}
_TASK_LOCK = threading.Lock()


def _run_task(func, item, initializer, initargs, key):
    """Run on a Dask worker: (re)initialise the process state if needed,
    then ``func(item)``; one task at a time per process."""
    with _TASK_LOCK:
        if initializer is not None:
            name = f"{initializer.__module__}.{initializer.__qualname__}"
            if _INITIALIZED.get(name) != key:
                _INITIALIZED.pop(name, None)
                initializer(*initargs)
                _INITIALIZED[name] = key
        return func(item)
