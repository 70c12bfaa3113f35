"""Jobs for executor tests, importable by worker processes (tests/ is put on their path)."""
import os
import signal


def double_or_fail(x):
    """``2 x``; raises for 0 and kills its own worker process (SIGKILL) for negative x."""
    if x < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    if x == 0:
        raise ValueError("job 0 fails on purpose")
    return 2 * x


def fixed_points_after_a_lost_worker(item):
    """A fixed-point job whose first attempt loses its worker: the worker process kills itself
    (SIGKILL) mid-job once, marked by the file ``item["marker"]``; a retry computes the job."""
    from rnn_dyn.jobs import fixed_points_job

    marker = item.pop("marker")
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return fixed_points_job(item)
