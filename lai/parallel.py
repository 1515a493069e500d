"""Many independent inputs (scenes, tiles) on dask.distributed, the way the xarray ecosystem scales.

``workers=N`` starts a local cluster of N single-threaded worker processes; ``scheduler=ADDRESS``
uses an existing dask.distributed cluster (its workers must see the same file system, since tasks
read and write files). Results come back in input order, so they never depend on the number of
workers; a progress bar advances as tasks finish. Local workers run with OMP_NUM_THREADS=1 (one core each).
"""
from __future__ import annotations

import contextlib
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lai.errors import ClusterStartError, ConfigError, WorkerLostError, shorten


def max_workers() -> int:
    """The most local worker processes a command may start: the cores this process may run on."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


SCHEDULER_TIMEOUT_S = 20  # seconds for the connect and the handshake with a --scheduler


def _probe_handshake(address: str, seconds: float) -> None:
    """For a plain TCP address, check that something there greets like a dask scheduler (it sends its handshake as
    soon as a connection opens) within ``seconds``; dask's own client waits for that greeting without a limit."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp":
        return  # tls://, ws://, inproc://: left to dask
    if not parts.hostname or parts.port is None:
        raise ValueError("no host:port in the address")
    with socket.create_connection((parts.hostname, parts.port), timeout=seconds) as sock:
        try:
            greeting = sock.recv(1)
        except TimeoutError:
            raise TimeoutError("something answers there but sends no dask handshake") from None
    if not greeting:
        raise ConnectionError("the server closed the connection without a dask handshake")


def check_dask_options(workers: int | None, scheduler: str | None) -> None:
    """:class:`ConfigError` unless at most one of ``workers`` and ``scheduler`` is given and ``workers`` is a number of
    processes this machine can run (the CLI checks it before any work, :func:`dask_client` again)."""
    if workers is not None and scheduler is not None:
        raise ConfigError("give either --workers (a local dask cluster) or --scheduler (an existing one), not both")
    if workers is not None and not 1 <= workers <= max_workers():
        raise ConfigError(f"--workers must be a number of processes from 1 to {max_workers()} (this machine's "
                          f"cores), got {workers}")


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A dask.distributed Client for ``workers`` local processes or the cluster at ``scheduler``."""
    check_dask_options(workers, scheduler)
    import dask
    from dask.distributed import LocalCluster

    if scheduler is not None:
        seconds = f"{SCHEDULER_TIMEOUT_S}s"
        try:  # the connect and the handshake both bounded: a silent server that is not dask ends in an error too
            _probe_handshake(scheduler, SCHEDULER_TIMEOUT_S)
            with dask.config.set({"distributed.comm.timeouts.connect": seconds}):
                client = new_client(scheduler, timeout=seconds)
        except (OSError, ValueError, TypeError) as err:  # TimeoutError is an OSError
            reason = shorten(str(err).splitlines()[0], 200) if str(err) else type(err).__name__
            raise ConfigError(f"--scheduler {shorten(scheduler)}: cannot reach a dask scheduler there within {seconds} ({reason}); "
                              "expected an address such as tcp://host:8786") from None
        with client:
            yield client
        return
    # the scratch space of the scheduler and workers in a folder of lai's own, removed afterwards (dask's default,
    # dask-scratch-space in the temporary folder, outlives the cluster)
    with (tempfile.TemporaryDirectory(prefix="lai-dask-", ignore_cleanup_errors=True) as scratch,
          dask.config.set({"temporary-directory": scratch})):
        try:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, local_directory=scratch)
        except (RuntimeError, OSError) as err:  # "Nanny failed to start.", no local sockets, a start that timed out
            cause = err.__cause__ or err
            reason = shorten(str(cause).splitlines()[0], 200) if str(cause) else type(cause).__name__
            raise ClusterStartError(f"a local dask cluster of {workers} worker processes did not start ({reason})") from None
        with cluster, new_client(cluster) as client:
            yield client


def new_client(*args, **kwargs):
    """``dask.distributed.Client(*args, **kwargs)``, started with Python's garbage collector held off: an earlier
    Client collected while a new one starts its event loop closes its own under the lock the starting one holds, and
    the process hangs (distributed 2026.8: ``LoopRunner._start_unlocked`` -> ``Client.__del__`` ->
    ``LoopRunner.stop``, one class-wide lock; seen once in this package's tests, 2026-12-08, a Client not closed
    collected at the start of the next)."""
    import gc

    from dask.distributed import Client

    gc.collect()  # earlier Clients finalised now, outside that lock
    enabled = gc.isenabled()
    gc.disable()
    try:
        return Client(*args, **kwargs)
    finally:
        if enabled:
            gc.enable()


def worker_count(client) -> int:
    """Workers the client's cluster has now (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def _result(future):
    """The task's result; a task error re-raised as it is, a worker lost under it as one :class:`WorkerLostError`."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as err:
        raise WorkerLostError(f"dask workers died while running task {shorten(str(future.key), 60)} and the scheduler gave "
                              f"it up ({shorten(str(err).splitlines()[0] if str(err) else 'KilledWorker', 160)}): out of "
                              "memory, or killed from outside? Try fewer --workers, or look at the workers' logs") from None


def map_ordered(fn: Callable, items: Iterable, client, on_done: Callable[[int, Any], None] | None = None) -> list:
    """``[fn(item) for item in items]`` on the cluster; ``on_done(i, result)`` as each one finishes."""
    from dask.distributed import as_completed

    items = list(items)
    futures = [client.submit(fn, item, pure=False) for item in items]
    position = {f.key: i for i, f in enumerate(futures)}
    results: list = [None] * len(items)
    for future in as_completed(futures):
        i = position[future.key]
        results[i] = _result(future)  # re-raises a task's error here, with its traceback
        if on_done is not None:
            on_done(i, results[i])
    return results


def imap_ordered(fn: Callable, items: Iterable, client, ahead: int | None = None) -> Iterator:
    """Yield ``fn(item)`` in input order, with at most ``ahead`` tasks in flight (default: 2 per worker).

    For results that are large (arrays) and consumed by one writer: memory holds ``ahead`` results,
    not all of them. Tasks still queued when the caller stops early are cancelled.
    """
    ahead = ahead or 2 * worker_count(client)
    pending: deque = deque()
    try:
        for item in items:
            pending.append(client.submit(fn, item, pure=False))
            if len(pending) >= ahead:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    finally:
        if pending:
            client.cancel(list(pending))
