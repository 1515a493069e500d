"""Many independent inputs (scenes, tiles) on dask.distributed, the way the xarray ecosystem scales.

``workers=N`` starts a local cluster of N single-threaded worker processes; ``scheduler=ADDRESS``
uses an existing dask.distributed cluster (its workers must see the same file system, since tasks
read and write files). Results come back in input order, so they never depend on the number of
workers; a progress bar advances as tasks finish.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from lai.errors import ConfigError


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A dask.distributed Client for ``workers`` local processes or the cluster at ``scheduler``."""
    if workers is not None and scheduler is not None:
        raise ConfigError("give either --workers (a local dask cluster) or --scheduler (an existing one), not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be a positive number of processes, got {workers}")
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise ConfigError(f"--scheduler {scheduler}: cannot reach a dask scheduler there ({err})") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def map_ordered(fn: Callable, items: Iterable, client, on_done: Callable[[int, Any], None] | None = None) -> list:
    """``[fn(item) for item in items]`` on the cluster; ``on_done(i, result)`` as each one finishes."""
    from dask.distributed import as_completed

    items = list(items)
    futures = [client.submit(fn, item, pure=False) for item in items]
    position = {f.key: i for i, f in enumerate(futures)}
    results: list = [None] * len(items)
    for future in as_completed(futures):
        i = position[future.key]
        results[i] = future.result()  # re-raises a task's error here, with its traceback
        if on_done is not None:
            on_done(i, results[i])
    return results
