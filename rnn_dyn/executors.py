"""Executors: run jobs on worker processes and hand results back as they finish.

``LocalExecutor`` uses worker processes on this machine, one TensorFlow thread
each, forked from a server process that imported TensorFlow once: a fresh pool
(each rerun after a dead worker) starts in about a second instead of one
TensorFlow import per worker.  ``DaskExecutor`` joins a Dask cluster (or starts
a ``LocalCluster``).  Both implement ``run(jobs, then=None)``: ``jobs`` are
``(fn, item)`` pairs, results come back as ``(index, result, error)`` in
completion order, and ``then(index, result, error)`` may return more jobs,
which run on the same workers (a finished population's fixed points start
while others train).  A job that raises, or whose worker dies, yields its
error and never stops the others.  ``map(fn, items)`` is ``run`` of one function.

Workers never outlive their driver: each watches the driver's process and exits
when it is gone (also after a SIGKILL), and ignores Ctrl-C, which the driver
handles (:meth:`close` stops them).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import select
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

_STARTED = None  # queue of job indices, put by a worker when it starts a job


QUIET = {"on": False}  # set by the command line: workers' start-up logs go to /dev/null


@contextlib.contextmanager
def silenced_stderr(on: bool = True):
    """Point file descriptor 2 at /dev/null inside the block (when ``on``): what C++ libraries
    print there (TensorFlow's start-up log) and processes started meanwhile inherit it."""
    if not on:
        yield
        return
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)


def import_tensorflow():
    """Import TensorFlow and start its devices, quietly when the command line asked for quiet."""
    with silenced_stderr(QUIET["on"]):
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf


def _exit_with(pid: int):
    """Block until process ``pid`` is gone, then end this process at once."""
    try:
        fd = os.pidfd_open(pid)
        select.select([fd], [], [])
    except (AttributeError, OSError):  # no pidfd here: poll
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
    os._exit(1)


def watch_driver(pid: int):
    """Exit this (worker) process as soon as process ``pid`` ends."""
    threading.Thread(target=_exit_with, args=(pid,), daemon=True, name="rnn_dyn-watch-driver").start()


def _init_worker(threads: int, started=None, driver=None, quiet=True):
    global _STARTED
    _STARTED = started
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops us
    if driver:
        watch_driver(driver)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from rnn_dyn.training import set_threads

    set_threads(threads)


def _call(fn, item, index=None):
    if _STARTED is not None and index is not None:
        _STARTED.put(index)
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
        self._pool = None
        _context()
        with silenced_stderr(QUIET["on"]):  # the server and its workers inherit it
            multiprocessing.forkserver.ensure_running()  # imports TensorFlow while the caller goes on

    def map(self, fn, items):
        return self.run([(fn, item) for item in items])

    def run(self, jobs, then=None):
        """Yield ``(index, result, error)`` as jobs finish; ``then`` may add jobs.

        A dead worker breaks the whole process pool.  The jobs that were
        running then are suspects: each is rerun alone in a fresh one-worker
        pool, where a second death is its own and is reported as its failure.
        The jobs that had not started go on in a fresh pool.
        """
        jobs = list(jobs)
        pending = set(range(len(jobs)))
        while pending:
            started = set()
            yield from self._run(jobs, sorted(pending), self.workers, pending, started, then)
            suspects = sorted(pending & started)
            pending -= set(suspects)
            for i in suspects:
                left = {i}
                yield from self._run(jobs, [i], 1, left, set(), then)
                if i in left:
                    left.discard(i)
                    error = "worker process died (killed or out of memory) while running this job"
                    yield i, None, error
                    for job in (then(i, None, error) or ()) if then else ():
                        jobs.append(job)
                        pending.add(len(jobs) - 1)
                pending |= left

    def _run(self, jobs, indices, workers, pending, started, then):
        """One process pool over ``indices`` (and the jobs ``then`` adds); stops early if the pool breaks."""
        ctx = _context()
        queue = ctx.SimpleQueue()
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(self.threads, queue, os.getpid()))
        self._pool = pool
        try:
            futures = {pool.submit(_call, *jobs[i], i): i for i in indices}
            broken = False
            while futures and not broken:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    started.add(queue.get())
                for fut in sorted(done, key=lambda f: isinstance(f.exception(), BrokenProcessPool)):
                    i = futures.pop(fut)
                    exc = fut.exception()
                    if isinstance(exc, BrokenProcessPool):
                        broken = True
                        continue
                    pending.discard(i)
                    result, error = (None, f"{type(exc).__name__}: {exc}") if exc else fut.result()
                    yield i, result, error
                    for job in (then(i, result, error) or ()) if then else ():
                        jobs.append(job)
                        pending.add(len(jobs) - 1)
                        if not broken:
                            futures[pool.submit(_call, *job, len(jobs) - 1)] = len(jobs) - 1
            while not queue.empty():
                started.add(queue.get())
        finally:
            self._stop(pool, wait_for_jobs=not pending)
            self._pool = None

    @staticmethod
    def _stop(pool, wait_for_jobs=True):
        """Shut a pool down; unless its jobs are all done, end its workers at once."""
        if not wait_for_jobs:
            for p in list((pool._processes or {}).values()):
                if p.is_alive():
                    p.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self):
        """Stop the workers of a pool still running (e.g. after Ctrl-C)."""
        if self._pool is not None:
            self._stop(self._pool, wait_for_jobs=False)
            self._pool = None


class DaskExecutor:
    """Jobs on a Dask cluster: ``address`` of a running scheduler, or a ``LocalCluster``."""

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1):
        try:
            from dask.distributed import Client, LocalCluster, WorkerPlugin  # lazy: dask is optional
        except ImportError:
            raise ValueError("executor 'dask' needs Dask distributed, which is not installed; "
                             "install it with: pip install 'rnn_dyn[dask]'") from None

        class Threads(WorkerPlugin):  # set up every worker, also those that join later
            def setup(self, worker):
                _init_worker(threads, driver=None)

        if address:
            self.cluster, self.client = None, Client(address)
        else:
            with silenced_stderr(QUIET["on"]):
                self.cluster = LocalCluster(n_workers=workers or n_cores(), threads_per_worker=1,
                                            processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        self.client.register_plugin(Threads(), name="rnn_dyn-threads")

    def map(self, fn, items):
        return self.run([(fn, item) for item in items])

    def run(self, jobs, then=None):
        from dask.distributed import as_completed as dask_completed

        jobs = list(jobs)
        futures = {self.client.submit(_call, fn, item, pure=False): i for i, (fn, item) in enumerate(jobs)}
        stream = dask_completed(list(futures))
        for fut in stream:
            i = futures[fut]
            try:
                result, error = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker
                result, error = None, f"{type(exc).__name__}: {exc}"
            yield i, result, error
            for fn, item in (then(i, result, error) or ()) if then else ():
                jobs.append((fn, item))
                new = self.client.submit(_call, fn, item, pure=False)
                futures[new] = len(jobs) - 1
                stream.add(new)

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(executor: str = "local", workers: int | None = None, scheduler: str | None = None):
    """A ``LocalExecutor`` or ``DaskExecutor``; checks its arguments first."""
    from rnn_dyn._checks import check_choice, check_positive

    check_choice("executor", executor, ("dask", "local"))
    if workers is not None:
        check_positive("workers", workers, integer=True)
    if scheduler and executor != "dask":
        raise ValueError(f"scheduler is for executor 'dask'; got executor {executor!r}.")
    return DaskExecutor(scheduler, workers) if executor == "dask" else LocalExecutor(workers)
