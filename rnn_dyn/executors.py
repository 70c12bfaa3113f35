"""Executors: run jobs on worker processes and hand results back as they finish.

``LocalExecutor`` uses worker processes on this machine, one TensorFlow thread
each, forked from a server process that imported TensorFlow once: a fresh pool
(each sweep phase, each rerun after a dead worker) starts in about a second
instead of one TensorFlow import per worker.  ``DaskExecutor`` joins a Dask
cluster (or starts a ``LocalCluster``).  Both implement ``map(fn, items)``, an
iterator of ``(index, result, error)`` in completion order: a job that raises,
or whose worker dies, yields its error and never stops the others.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool


_STARTED = None  # shared flags, one per job: set by a worker when it starts the job


def _init_worker(threads: int, started=None):
    global _STARTED
    _STARTED = started
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rnn_dyn.training import set_threads

    set_threads(threads)


def _call(fn, item, index=None):
    if _STARTED is not None and index is not None:
        _STARTED[index] = 1
    try:
        return fn(item), None
    except Exception:  # noqa: BLE001 - the error is a result, reported by the driver
        return None, traceback.format_exc()


def _context():
    """Workers forked from a server that imported TensorFlow (not yet started, so
    each worker still sets its own thread count) instead of spawned afresh."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["rnn_dyn.training"])
    return ctx


def n_cores() -> int:
    return len(os.sched_getaffinity(0))


class LocalExecutor:
    """Worker processes on this machine (default: one per core, one thread each)."""

    def __init__(self, workers: int | None = None, threads: int = 1):
        self.workers = workers or n_cores()
        self.threads = threads
        _context()
        multiprocessing.forkserver.ensure_running()  # imports TensorFlow while the caller goes on

    def map(self, fn, items):
        """Yield ``(index, result, error)`` as jobs finish.

        A dead worker breaks the whole process pool.  The jobs that were
        running then are suspects: each is rerun alone in a fresh one-worker
        pool, where a second death is its own and is reported as its failure.
        The jobs that had not started go on in a fresh pool.
        """
        items = list(items)
        ctx = _context()
        started = ctx.Array("b", len(items), lock=False)
        pending, suspects = set(range(len(items))), []
        while pending:
            yield from self._run(fn, items, sorted(pending), self.workers, started, pending)
            suspects += [i for i in sorted(pending) if started[i]]
            pending -= set(suspects)
        for i in suspects:
            left = {i}
            yield from self._run(fn, items, [i], 1, started, left)
            if left:
                yield i, None, "worker process died (killed or out of memory) while running this job"

    def _run(self, fn, items, indices, workers, started, pending):
        """One process pool over ``indices``; stops early if the pool breaks."""
        ctx = _context()
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(self.threads, started)) as pool:
            futures = {pool.submit(_call, fn, items[i], i): i for i in indices}
            for fut in as_completed(futures):
                exc = fut.exception()
                if isinstance(exc, BrokenProcessPool):
                    break
                pending.discard(futures[fut])  # exc: e.g. a result that does not pickle
                yield (futures[fut], None, f"{type(exc).__name__}: {exc}") if exc else (futures[fut], *fut.result())
            for fut, i in futures.items():  # finished before the pool broke
                if i in pending and fut.done() and fut.exception() is None:
                    pending.discard(i)
                    yield i, *fut.result()


class DaskExecutor:
    """Jobs on a Dask cluster: ``address`` of a running scheduler, or a ``LocalCluster``."""

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1):
        from dask.distributed import Client, LocalCluster, WorkerPlugin  # lazy: dask is optional

        class Threads(WorkerPlugin):  # set up every worker, also those that join later
            def setup(self, worker):
                _init_worker(threads)

        if address:
            self.cluster, self.client = None, Client(address)
        else:
            self.cluster = LocalCluster(n_workers=workers or n_cores(), threads_per_worker=1,
                                        processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        self.client.register_plugin(Threads(), name="rnn_dyn-threads")

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
