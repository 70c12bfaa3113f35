"""Leases: whether the process that claimed a key is still there to finish it.

A driver that claims a key (:func:`rnn_dyn.tracking.claim`) tags its run with
a lease: ``rnn_dyn.driver`` (``host:pid``), ``rnn_dyn.driver_start`` (the
process's start time, so that a reused pid is not taken for the driver) and
``rnn_dyn.heartbeat`` (seconds since the epoch, renewed while the driver
lives).  On the driver's own host a lease lives as long as that process does;
from another host its process cannot be seen, so a lease lives while its
heartbeat is younger than :data:`LEASE_TTL`.  This module knows nothing of
MLflow: it reads tags and processes only.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time

LEASE_TTL = 300.0  # s without a heartbeat after which another host's claim is taken over
HEARTBEAT_EVERY = 60.0  # s between a driver's heartbeats (well inside LEASE_TTL)


def process_start(pid: int) -> str:
    """Start time of process ``pid`` (clock ticks since boot, from ``/proc``), or '' if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]  # field 22 of stat, after "pid (comm)"
    except (OSError, IndexError):
        return ""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def driver() -> str:
    """This process as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_tags() -> dict:
    """The lease tags of a run this process creates."""
    return {"rnn_dyn.driver": driver(), "rnn_dyn.driver_start": process_start(os.getpid()),
            "rnn_dyn.heartbeat": f"{time.time():.0f}"}


def lease_alive(tags: dict, now: float | None = None) -> bool:
    """Whether the driver that holds a run with these tags may still finish it.

    Same host: its process exists and started when the lease says (a reused pid
    does not count).  Another host: its heartbeat is younger than
    :data:`LEASE_TTL`.  No driver tag: not alive.
    """
    host, _, pid = tags.get("rnn_dyn.driver", "").rpartition(":")
    if not host or not pid.isdigit():
        return False
    if host == socket.gethostname():
        start = tags.get("rnn_dyn.driver_start")
        return pid_alive(int(pid)) and (not start or process_start(int(pid)) in ("", start))
    try:
        beat = float(tags.get("rnn_dyn.heartbeat", ""))
    except ValueError:
        return False
    return (time.time() if now is None else now) - beat < LEASE_TTL


@contextlib.contextmanager
def file_lock(path: str):
    """An exclusive lock on file ``path`` (created if needed) for the block: processes that
    create one SQLite store at once take turns."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
