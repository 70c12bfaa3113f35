"""Sweep overhead: a tracked sweep on the local executor against the same trainings run bare.

8 jobs, each a population of 4 tanh GRUs of 32 units on the 3-bit flip-flop
(T = 100, batch 64, 300 iterations by default), on one worker process per core:

(a) sweep: ``python -m rnn_dyn.experiments sweep --spec <tmp>.yaml --workers W``
    in a fresh process on a fresh SQLite store: everything a user waits for
    (imports, store creation, worker start, MLflow runs, weights, loss figures);
(b) bare: a fresh process that splits the same jobs over W spawned worker
    processes (one TensorFlow thread each) calling ``train_population``, no MLflow.

Prints both wall times and ``overhead_fraction = (sweep - bare) / sweep``
(target: at most 0.15).  Each side runs ``--repeats`` times, alternating; the
fastest run of each counts (other load on the machine only adds time).  Also
the CPU seconds of each side, every process included (this script adopts the
orphaned ones, such as the sweep's worker server), and their overhead fraction:
the extra work, which other load on a shared machine hardly changes.
Usage: ``python benchmarks/sweep_overhead.py [--iterations 300] [--workers W]
[--repeats 1]``.  The last line is one JSON object.
"""
import argparse
import ctypes
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time

import yaml

SPEC = dict(experiment="overhead", tasks=["flipflop"], cells=["gru"], activations=["tanh"], n_units=[32],
            l2=[1e-4], seeds=32, max_population=4)


def spec(iterations):
    return {**SPEC, "defaults": {"train": {"iterations": iterations, "log_every": 100}}}


def _bare_worker(jobs):
    from rnn_dyn.training import set_threads, train_population

    set_threads(1)
    start = time.perf_counter()
    for j in jobs:
        train_population(j.task, j.model, j.train)
    return time.perf_counter() - start


def bare(spec_path, workers):
    """The jobs of the spec split over ``workers`` spawned processes; prints their training seconds."""
    from rnn_dyn.sweep_config import SweepConfig

    with open(spec_path) as f:
        jobs = SweepConfig.from_dict(yaml.safe_load(f)).expand()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        seconds = pool.map(_bare_worker, [jobs[i::workers] for i in range(workers)])
    print(json.dumps({"train_s": seconds}))


def _cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, cwd, env):
    """Wall seconds, CPU seconds (of every descendant) and stdout of ``cmd``."""
    start, cpu = time.perf_counter(), _cpu()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    while True:  # reap the orphans adopted as subreaper, so that their CPU time counts
        try:
            os.wait()
        except ChildProcessError:
            break
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return wall, _cpu() - cpu, out.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--bare", help=argparse.SUPPRESS)  # internal: run the bare side on this spec
    args = parser.parse_args()
    if args.bare:
        return bare(args.bare, args.workers)
    ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphaned descendants become ours
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    sweeps, bares, train, cpu = [], [], [], {"sweep": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = os.path.join(tmp, "overhead.yaml")
        with open(spec_path, "w") as f:
            yaml.safe_dump(spec(args.iterations), f)
        for r in range(args.repeats):
            wall, seconds, out = timed([sys.executable, os.path.abspath(__file__), "--bare", spec_path,
                                        "--workers", str(args.workers)], tmp, env)
            bares.append(wall)
            cpu["bare"].append(seconds)
            train.append(max(json.loads(out.strip().splitlines()[-1])["train_s"]))
            store = os.path.join(tmp, f"store{r}")
            os.makedirs(store)
            sweep_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db"}
            wall, seconds, _ = timed([sys.executable, "-m", "rnn_dyn.experiments", "sweep", "--spec", spec_path,
                                      "--workers", str(args.workers)], store, sweep_env)
            sweeps.append(wall)
            cpu["sweep"].append(seconds)
            print(f"repeat {r}: sweep {wall:.1f} s ({seconds:.1f} CPU s), bare {bares[-1]:.1f} s "
                  f"({cpu['bare'][-1]:.1f} CPU s; training loops {train[-1]:.1f} s on the busiest worker)",
                  file=sys.stderr)
    from rnn_dyn.sweep_config import SweepConfig

    jobs = SweepConfig.from_dict(spec(args.iterations)).expand()
    sweep_s, bare_s = min(sweeps), min(bares)
    sweep_cpu, bare_cpu = min(cpu["sweep"]), min(cpu["bare"])
    print(json.dumps({"sweep_s": round(sweep_s, 2), "bare_s": round(bare_s, 2),
                      "overhead_fraction": round((sweep_s - bare_s) / sweep_s, 3),
                      "sweep_cpu_s": round(sweep_cpu, 1), "bare_cpu_s": round(bare_cpu, 1),
                      "cpu_overhead_fraction": round((sweep_cpu - bare_cpu) / sweep_cpu, 3),
                      "bare_train_loop_s": round(min(train), 2), "workers": args.workers,
                      "jobs": len(jobs), "networks": sum(j.train.n_networks for j in jobs),
                      "iterations": args.iterations}))


if __name__ == "__main__":
    main()
