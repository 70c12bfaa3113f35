"""A sweep's training side: hyperparameter searches, one population trained in this
process, and the cost plan of a sweep (``sweep --dry-run``).

The study (:mod:`rnn_dyn.study`) runs the searches and the training jobs of a
sweep on an executor; :func:`train_one` is the ``train`` command's in-process
training with a progress bar.  Only this driver side writes to MLflow.
"""
from __future__ import annotations

import random
import sys
import time

import numpy as np
from tqdm import tqdm

from rnn_dyn import jobs, tracking
from rnn_dyn.config import configuration


def last_line(error: str | None) -> str:
    """The last line of a job's traceback (its exception), or ''."""
    return error.strip().splitlines()[-1] if error else ""


def say(*args):
    """Print a line on stderr without breaking the progress bars."""
    tqdm.write(" ".join(str(a) for a in args), file=sys.stderr)


def wait_for_others(held, first: bool):
    """Pause while another live driver computes ``held`` keys (said once), with jitter so that
    two drivers that backed off together do not meet again."""
    if first:
        say(f"{len(held)} result(s) are being computed by another driver on this experiment; waiting for them")
    time.sleep(random.uniform(1.0, 3.0))


def search(pool, exp_id, searches, table, n_seeds):
    """Each configuration's hyperparameter search on the executor, skipping finished ones and
    waiting for those another driver runs.  Returns ``{configuration: winner's settings}`` and
    how many searches ran here."""
    winners, n_run, first = {}, 0, True
    while True:
        done = tracking.finished_searches(exp_id)
        winners.update({configuration(j): done[tracking.search_key(j)] for j in searches
                        if tracking.search_key(j) in done})
        left = [j for j in searches if configuration(j) not in winners]
        won, held = tracking.claim(exp_id, "search", [(tracking.search_key(j), tracking.search_name(j))
                                                      for j in left])
        todo = [j for j in left if tracking.search_key(j) in won]
        n_run += len(todo)
        _run_searches(pool, exp_id, todo, [won[tracking.search_key(j)] for j in todo], table, n_seeds, winners)
        if not held:
            return winners, n_run
        wait_for_others(held, first)
        tracking.close_interrupted(exp_id)
        first = False


def _run_searches(pool, exp_id, todo, runs, table, n_seeds, winners):
    for j, rid in zip(todo, runs):
        tracking.start_search(exp_id, j, rid)
    bar = tqdm(total=len(todo), desc="search", unit="config", file=sys.stderr, disable=not todo)
    for i, result, error in pool.map(jobs.train_job, todo):
        winner = None
        if error is None:
            winner = tracking.log_search(todo[i], result, runs[i])
        else:
            tracking.end_run(runs[i], "FAILED", error)
        if winner is None:
            table[todo[i].task.name]["failed"] += n_seeds  # its seeds cannot train
            bar.write(f"search FAILED {configuration(todo[i])}: {last_line(error) or 'every candidate diverged'}")
        else:
            winners[configuration(todo[i])] = winner
        bar.update()
    bar.close()


def train_one(run, experiment: str = "default", threads=None) -> dict:
    """Train one population in this process with a progress bar and log it
    (one parent run, one nested run per network); returns the run ids."""
    from rnn_dyn.executors import import_tensorflow

    import_tensorflow()
    from rnn_dyn.training import set_threads, train_population

    set_threads(threads)
    exp_id = tracking.get_experiment_id(experiment)
    parent = tracking.start_population(exp_id, run)
    bar = tqdm(total=run.train.iterations, desc=f"{run.task.name}/{run.model.cell}/{run.model.activation}",
               unit="it", file=sys.stderr)

    def progress(k, loss):
        bar.n = k + 1
        finite = loss[np.isfinite(loss)]
        bar.set_postfix(loss=f"{finite.mean():.3g}" if finite.size else "nan")
        bar.refresh()

    try:
        with tracking.heartbeat(exp_id):  # drivers on other hosts see this run alive
            result = train_population(run.task, run.model, run.train, progress=progress)
        bar.n = run.train.iterations
        bar.close()
        ids = tracking.log_population(exp_id, run, result.to_dict(), parent)
    except BaseException as exc:
        bar.close()
        tracking.end_run(parent, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED",
                         f"{type(exc).__name__}: {exc}")
        raise
    tracking.end_run(parent)
    for i, v in enumerate(result.val_loss):
        state = f"diverged at step {result.diverged_step[i]}" if result.diverged[i] else f"val_loss {v:.3g}"
        say(f"  member {i} (seed {run.train.member_values('seed')[i]}): {state}")
    say(f"  zero-output baseline {result.zero_loss:.3g}; {result.seconds:.1f} s")
    return {"population_run": parent, "network_runs": ids,
            "val_loss": [round(float(v), 6) for v in result.val_loss]}


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def plan(jobs_, workers=None, searches=()) -> dict:
    """Print a sweep's training jobs (and search jobs) and an estimated wall time from a short
    timing of each job shape on this machine (one thread, as a local worker runs); start nothing."""
    from rnn_dyn.executors import import_tensorflow, n_cores

    import_tensorflow()  # quietly, before the trainer imports it
    from rnn_dyn.training import set_threads, time_step

    set_threads(1)
    workers = workers or n_cores()
    shapes = {}
    for j in list(searches) + list(jobs_):
        key = (j.task, j.model.cell, j.model.n_units, j.train.batch_size, j.train.optimizer)
        shapes.setdefault(key, []).append(j)
    print(f"{'task':9s} {'cell':8s} {'units':>5s} {'jobs':>5s} {'networks':>8s} {'iterations':>10s}"
          f" {'ms/net/it':>9s} {'core-h':>7s}")
    total = 0.0
    bar = tqdm(shapes.items(), desc="timing job shapes", file=sys.stderr, leave=False)
    for (task, cell, n_units, _, _), group in bar:
        j = group[0]
        seconds = time_step(j.task, j.model, j.train)
        work = sum(g.train.n_networks * g.train.iterations for g in group)
        total += seconds * work
        bar.write(f"{task.name:9s} {cell:8s} {n_units:5d} {len(group):5d} "
                  f"{sum(g.train.n_networks for g in group):8d} {j.train.iterations:10d} "
                  f"{1000 * seconds:9.2f} {seconds * work / 3600:7.2f}", file=sys.stdout)
    n_networks = sum(j.train.n_networks for j in jobs_)
    n_candidates = sum(j.train.n_networks for j in searches)
    wall = total / workers
    print((f"{len(searches)} search jobs ({n_candidates} candidates), then " if searches else "")
          + f"{len(jobs_)} jobs, {n_networks} networks; training takes an estimated {_duration(total)} of one"
          f" core, {_duration(wall)} wall on {workers} local worker(s); the analyses come on top")
    return {"jobs": len(jobs_), "networks": n_networks, "searches": len(searches),
            "candidates": n_candidates, "core_seconds": total, "wall_seconds": wall}
