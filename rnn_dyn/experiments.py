"""Command line: ``python -m rnn_dyn.experiments COMMAND --flag=value`` (wiring only).

Commands
--------
sweep    Run a sweep spec (default ``experiments/quick.yaml``): train, then the study's analyses.
train    Train one population and log it to MLflow.
analyze  Fixed points and linearizations of the finished networks of an experiment (or of ``--weights``).
compare  Distance matrices between the finished networks of an experiment (and where ``--with`` sits).
topology Fixed-point topology next to geometry: the universality table (paper §3-4).
report   The paper's claims with verdicts and figures: ``report.html`` and ``claims.json``.

Every flag is named after a config field; list-valued flags such as
``--l2='[1e-4,1e-3]'`` spread over the members.  Input is checked before any
work starts and before any MLflow run is created; bad input prints one line
``error: ...`` and exits with status 2 (``--verbose`` shows the traceback and
every library's log).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import warnings
from pathlib import Path

SPEC_DIRS = (Path.cwd() / "experiments", Path(__file__).resolve().parent.parent / "experiments")
POOL_FLAGS = ("executor", "workers", "scheduler")


def load_spec(spec: str) -> dict:
    """Read a sweep spec: a YAML path, or a name in ``experiments/`` (``quick``, ``study``, ``paper``)."""
    import yaml

    candidates = [Path(spec)] + [d / f"{spec}.yaml" for d in SPEC_DIRS]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ValueError(f"spec {spec!r} is neither a file nor a spec name in "
                         f"{[str(d) for d in SPEC_DIRS]}.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"spec {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"spec {str(path)!r} must be a mapping of sweep fields; got {type(data).__name__}.")
    return data


def _unknown_flags(flags: dict, allowed):
    unknown = sorted(set(flags) - set(allowed))
    if unknown:
        names = ", ".join(f"--{k}" for k in unknown)
        raise ValueError(f"unknown flag(s) {names}; allowed flags: {sorted('--' + a for a in allowed)}.")


def _split_flags(flags: dict, own=()) -> dict:
    """Sort flat CLI flags into task/model/train sections by field name."""
    from rnn_dyn import config as cfg

    sections = {"task": cfg.TaskConfig, "model": cfg.ModelConfig, "train": cfg.TrainConfig}
    fields = {s: {f.name for f in dataclasses.fields(c)} - {"name"} for s, c in sections.items()}
    _unknown_flags(flags, set().union(*fields.values()) | set(own))
    return {s: {k: v for k, v in flags.items() if k in names} for s, names in fields.items()}


def _pool(executor="local", workers=None, scheduler=None):
    from rnn_dyn.executors import make_executor

    return make_executor(executor, workers, scheduler)


def train(task="flipflop", cell="gru", activation="tanh", n_units=64, experiment="default", threads=None, **flags):
    """Train one population and log it (one parent run, one nested run per network).

    Flags: any field of TaskConfig, ModelConfig or TrainConfig, e.g. ``--n_networks
    --iterations --batch_size --seed --l2 --lr --momentum --decay_rate --decay_steps
    --clip --optimizer --n_time``.  Returns the run ids.
    """
    from rnn_dyn import config as cfg
    from rnn_dyn.sweep import train_one

    parts = _split_flags(flags, own=("task", "cell", "activation", "n_units", "experiment", "threads"))
    run = cfg.RunConfig(
        cfg.make_config(cfg.TaskConfig, {**parts["task"], "name": task}, "task"),
        cfg.make_config(cfg.ModelConfig, {**parts["model"], "cell": cell, "activation": activation,
                                          "n_units": n_units}, "model"),
        cfg.make_config(cfg.TrainConfig, parts["train"], "train"))
    return train_one(run, experiment, threads)


def sweep(spec="quick", executor="local", workers=None, scheduler=None, dry_run=False, **overrides):
    """Run a sweep spec end to end: train every network, then the study's analyses.

    ``--spec`` a YAML path or name in ``experiments/``; other flags override spec
    fields (``--experiment --tasks --cells --activations --n_units --l2 --seeds
    --max_population --search --analyses --analysis``).  ``--analyses='[]'``
    trains only; by default fixed points, distances, topology and the report
    follow.  ``--executor local|dask``; ``--workers N``; ``--scheduler ADDRESS``
    joins a running Dask cluster.  ``--dry-run`` prints the cost plan and starts
    nothing.  What is finished is skipped; runs an interrupted sweep left
    RUNNING are closed as KILLED first.
    """
    from rnn_dyn.sweep_config import SweepConfig
    from rnn_dyn.study import run_study
    from rnn_dyn.sweep import plan

    _unknown_flags(overrides, [f.name for f in dataclasses.fields(SweepConfig)]
                   + ["spec", *POOL_FLAGS, "dry_run", "verbose"])
    sweep_cfg = SweepConfig.from_dict({**load_spec(spec), **overrides})
    if dry_run:
        return plan(sweep_cfg.expand(), workers, sweep_cfg.search_jobs())
    return run_study(sweep_cfg, _pool(executor, workers, scheduler), note=sweep_cfg.note)


def _analyses(stages, experiment, tasks, pool_flags, **analysis):
    """Run ``stages`` over an existing experiment; returns what was analysed."""
    from rnn_dyn.config import TASKS
    from rnn_dyn.sweep_config import AnalysisConfig
    from rnn_dyn._checks import check_choice
    from rnn_dyn.study import run_analyses

    tasks = [tasks] if isinstance(tasks, str) else list(tasks or TASKS)
    for t in tasks:
        check_choice("tasks", t, TASKS)
    analysis = AnalysisConfig(**{k: v for k, v in analysis.items() if v is not None})
    study = run_analyses(experiment, tasks, stages, analysis, _pool(**pool_flags))
    return dict(study.done)


def analyze(experiment=None, tasks=None, n_starts=None, seed=0, executor="local", workers=None,
            scheduler=None, weights=None, format="torch", cell=None, task=None, activation=None, **options):
    """Fixed points of every finished network of an experiment, under each condition input.

    Logs, as a child run of each network's run, ``fixed_points.npz``, the figure
    ``fixed_points.png`` and the metrics ``n_fixed, n_slow, n_stable, n_saddles``.
    ``--n_starts`` per condition (default: 1024 spread over the task's conditions,
    at least 16); other flags go to ``find_fixed_points`` (``--tol_q --max_iters
    --tol_unique ...``).  Networks already analysed with the same settings are skipped.
    ``--weights net.npz --format torch|keras [--cell gru] [--task flipflop]``: a network
    trained elsewhere instead, one run in ``--experiment`` (default ``foreign``).
    """
    from rnn_dyn.study import check_fixed_point_options

    if weights is not None:
        from rnn_dyn.foreign import analyze_foreign
        return analyze_foreign(weights, format, cell, task, experiment or "foreign", n_starts, seed,
                               activation, **options)
    if task or cell or activation:
        raise ValueError("--task, --cell and --activation are for --weights (an experiment's tasks: --tasks).")
    check_fixed_point_options(options)
    pool = dict(executor=executor, workers=workers, scheduler=scheduler)
    return _analyses(["fixed_points"], experiment or "quick", tasks, pool, n_starts=n_starts, seed=seed,
                     fixed_points=options)


def compare(experiment="quick", metric="svcca", tasks=None, executor="local", workers=None, scheduler=None,
            **foreign):
    """Distances between the finished networks of each task, on the task's probe set.

    Logs, per task, a ``comparison`` run with ``distances.npz`` (matrix, ordered
    network run ids and their params, MDS embedding), the MDS map coloured by cell
    and by activation, and the separation (silhouette) by each label.  ``--metric``
    one of ``svcca cka cca procrustes svcca_k10 svcca_k20`` (SVCCA keeps 95% of the
    variance; ``_k10``: 10 directions).  Skips what is done.  ``--with net.npz --format
    torch|keras [--cell gru] [--task flipflop]``: where a network trained elsewhere sits among them.
    """
    from rnn_dyn._checks import check_choice
    from rnn_dyn.sweep_config import GEOMETRY

    if foreign:
        from rnn_dyn.foreign import place_foreign
        _unknown_flags(foreign, ("with", "format", "cell", "task", "activation"))
        if "with" not in foreign:
            raise ValueError(f"--{', --'.join(foreign)} need(s) --with WEIGHTS.npz.")
        return place_foreign(experiment, foreign.pop("with"), metric=metric, **foreign)

    check_choice("metric", metric, GEOMETRY)
    return _analyses(["compare"], experiment, tasks, dict(executor=executor, workers=workers, scheduler=scheduler),
                     metrics=(metric,))


def topology(experiment="quick", tasks=None, mode="paper", n_perturb=100, seed=0, n_starts=None,
             executor="local", workers=None, scheduler=None):
    """Fixed-point topology of every finished network, next to its geometry (paper §3-4).

    Runs the fixed points and distances it needs first.  Per task: each network's
    topology (flip-flop transition graph, sine oscillatory modes against ω(u),
    context line attractors, eigenvalues near 1 and integration dimensionality),
    the topology distance matrix (``--mode paper|matching`` for the flip-flop and sine)
    next to the geometry matrices, their MDS maps and separation by cell and by
    activation; on the context task, trained vanilla networks against the same
    networks untrained (SVCCA and CCA on the structured probes; paper Fig. 4).
    What is done is skipped.
    """
    return _analyses(["topology"], experiment, tasks, dict(executor=executor, workers=workers, scheduler=scheduler),
                     mode=mode, n_perturb=n_perturb, seed=seed, n_starts=n_starts)


def report(experiment="quick", tasks=None, note="", executor="local", workers=None, scheduler=None):
    """The paper's claims as numbers with verdicts, and its figures: a ``report`` run with
    ``report.html``, ``claims.json`` and the figures (runs the analyses it needs first)."""
    from rnn_dyn.config import TASKS
    from rnn_dyn.sweep_config import AnalysisConfig
    from rnn_dyn.study import run_analyses

    tasks = [tasks] if isinstance(tasks, str) else list(tasks or TASKS)
    study = run_analyses(experiment, tasks, ["report"], AnalysisConfig(), _pool(executor, workers, scheduler),
                         note=note)
    return dict(study.done)


COMMANDS = {"sweep": sweep, "train": train, "analyze": analyze, "compare": compare, "topology": topology,
            "report": report}


def quiet(verbose: bool = False):
    """Keep the terminal to progress, results and real errors: no TensorFlow/absl/CUDA
    start-up lines, no MLflow or Alembic INFO lines (``verbose`` keeps them all)."""
    from rnn_dyn import executors

    executors.QUIET["on"] = not verbose
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # also the workers' (they inherit it)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    for name in ("mlflow", "alembic", "distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)


def main(argv=None):
    import fire

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    quiet(verbose)
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit: an OSError naming the run, not a dead driver
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        fire.Fire(COMMANDS, command=argv, name="rnn_dyn.experiments")
    except (ValueError, TypeError) as exc:
        if verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
