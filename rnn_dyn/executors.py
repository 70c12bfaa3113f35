"""Executors: run jobs on worker processes and hand results back as they finish.

``LocalExecutor`` uses worker processes on this machine, one TensorFlow thread
each; ``DaskExecutor`` joins a Dask cluster (or starts a ``LocalCluster``).
Both implement ``map(fn, items)``, an iterator of ``(index, result, error)``
in completion order: a job that raises, or whose worker dies, yields its error
and never stops the others.
"""
from __future__ import annotations

import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
import multiprocessing


def _init_worker(threads: int):
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rnn_dyn.training import set_threads

    set_threads(threads)


def _call(fn, item):
    try:
        return fn(item), None
    except Exception:  # noqa: BLE001 - the error is a result, reported by the driver
        return None, traceback.format_exc()


def n_cores() -> int:
    return len(os.sched_getaffinity(0))


class LocalExecutor:
    """Worker processes on this machine (default: one per core, one thread each)."""

    def __init__(self, workers: int | None = None, threads: int = 1):
        self.workers = workers or n_cores()
        self.threads = threads

    def map(self, fn, items, max_attempts: int = 2):
        """Yield ``(index, result, error)`` as jobs finish.

        A dead worker breaks the whole process pool; the jobs it took down are
        retried in a fresh pool, and a job caught in ``max_attempts`` broken
        pools is reported as failed.
        """
        items = list(items)
        pending = set(range(len(items)))
        attempts = dict.fromkeys(pending, 0)
        ctx = multiprocessing.get_context("spawn")
        while pending:
            with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(self.threads,)) as pool:
                futures = {pool.submit(_call, fn, items[i]): i for i in sorted(pending)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        result, error = fut.result()
                    except BrokenProcessPool:
                        attempts[i] += 1
                        if attempts[i] < max_attempts:
                            continue
                        result, error = None, "worker process died (killed or out of memory)"
                    pending.discard(i)
                    yield i, result, error


class DaskExecutor:
    """Jobs on a Dask cluster: ``address`` of a running scheduler, or a ``LocalCluster``."""

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1):
        from dask.distributed import Client, LocalCluster  # lazy: dask is optional

        if address:
            self.cluster, self.client = None, Client(address)
        else:
            self.cluster = LocalCluster(n_workers=workers or n_cores(), threads_per_worker=1,
                                        processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        self.client.run(_init_worker, threads)

    def map(self, fn, items):
        from dask.distributed import as_completed as dask_completed

        futures = {self.client.submit(_call, fn, item, pure=False): i for i, item in enumerate(items)}
        for fut in dask_completed(futures):
            i = futures[fut]
            try:
                result, error = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker
                result, error = None, f"{type(exc).__name__}: {exc}"
            yield i, result, error

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
