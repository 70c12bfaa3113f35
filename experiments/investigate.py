"""Where the study's geometry verdicts come from: the probe set, and one configuration's spread.

Issue 13, item 5.  Run in the folder that holds the study's ``mlflow.db``::

    python experiments/investigate.py [--experiment study] [--task flipflop]

1. **Spread** (from the tracked matrices, no computation; the report shows it
   too): for each configuration (cell, activation), the mean distance between
   its own networks against the mean distance from them to the other cells'
   networks of the same activation
   (:func:`rnn_dyn.statistics.configuration_spread`).  A ratio above 1 says
   that the seeds of one configuration reached different solutions, farther
   apart than the architectures are.
2. **Probe set** (flip-flop): the networks' hidden states on other probe
   inputs, then the silhouette by architecture (tanh networks) and by
   activation (vanilla networks) with permutation p-values, for SVCCA (95% of
   variance), SVCCA (k = 10) and CKA:

   - ``task``: the task's own probe trials (what the study compares);
   - ``dense``: the same trials with five times as many pulses;
   - ``noise``: white Gaussian inputs (σ 0.5), no pulse structure at all.

Prints markdown tables.
"""
from __future__ import annotations

import fire
import numpy as np

PROBES = ("task", "dense", "noise")
METRICS = {"SVCCA 95%": ("svcca", {}), "SVCCA k=10": ("svcca", {"k": 10}), "CKA": ("cka", {})}


def _topology_arrays(experiment, task):
    from rnn_dyn import tracking

    run = tracking.stage_run(tracking.experiment_id(experiment), "topology", task=task)
    if run is None:
        raise ValueError(f"experiment {experiment!r} has no finished topology run for task {task!r}.")
    return tracking.artifact_arrays(run, "topology.npz")


def probe_inputs(task, kind, seed=0):
    """``[n_trials, n_time, n_inputs]`` probe inputs of ``kind`` (see the module docstring)."""
    trials = task.probe_set()["inputs"]
    if kind == "task":
        return trials
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return (0.5 * rng.standard_normal(trials.shape)).astype(np.float32)
    pulse = rng.random(trials.shape) < min(1.0, 5 * task.cfg.p_flip)
    sign = np.where(rng.random(trials.shape) < 0.5, -1.0, 1.0)
    return np.where(trials != 0, trials, pulse * sign).astype(np.float32)


def components_kept(rep, variance=0.95) -> int:
    """Directions SVCCA keeps for one network: the fewest that carry ``variance`` of its variance."""
    s = np.linalg.svd(rep - rep.mean(0), compute_uv=False) ** 2
    return int(np.searchsorted(np.cumsum(s) / s.sum(), variance) + 1)


def probe_table(experiment, arrays, n_permutations=999):
    from rnn_dyn import tracking
    from rnn_dyn.jobs import representations
    from rnn_dyn.similarity import pairwise_distances
    from rnn_dyn.statistics import separation_test

    networks = [tracking.network_weights(r) for r in arrays["run_ids"]]
    cell = np.array([c["model"]["cell"] for _, c in networks])
    act = np.array([c["model"]["activation"] for _, c in networks])
    tanh, vanilla = act == "tanh", cell == "vanilla"
    print("\n| probe | distance | by architecture (tanh) | by activation (vanilla) |\n|---|---|---|---|")
    for kind in PROBES:
        reps = [r.reshape(-1, r.shape[-1]) for r in representations(networks, lambda t: probe_inputs(t, kind))]
        kept = np.array([components_kept(r) for r in reps])
        print(f"| {kind} | directions kept at 95% (median per configuration) | " + ", ".join(
            f"{c} {np.median(kept[arrays['config'] == c]):g}" for c in np.unique(arrays["config"])) + " | |")
        for name, (metric, options) in METRICS.items():
            D = pairwise_distances(reps, metric=metric, progress=False, **options)
            a = separation_test(D[np.ix_(tanh, tanh)], cell[tanh], n_permutations)
            b = separation_test(D[np.ix_(vanilla, vanilla)], act[vanilla], n_permutations)
            print(f"| {kind} | {name} | {a[0]:+.2f} (p {a[1]:.3f}) | {b[0]:+.2f} (p {b[1]:.3f}) |", flush=True)


def main(experiment="study", task="flipflop", n_permutations=999, probes=True):
    from rnn_dyn.executors import import_tensorflow
    from rnn_dyn.statistics import configuration_spread

    import_tensorflow()
    for t in ("flipflop", "sine", "context"):
        try:
            arrays = _topology_arrays(experiment, t)
        except ValueError as err:
            print(f"{t}: {err}")
            continue
        for metric in ("svcca", "cka"):
            print(f"\n{t}, {metric}: mean distance within a configuration and to the other cells "
                  "(same activation)\n\n| configuration | within | to other cells | ratio |\n|---|---|---|---|")
            for r in configuration_spread(arrays[f"distances_{metric}"], arrays["config"]):
                print(f"| {r['config']} | {r['within']:.3f} | {r['between']:.3f} | {r['ratio']:.2f} |")
    if probes:
        probe_table(experiment, _topology_arrays(experiment, task), n_permutations)


if __name__ == "__main__":
    fire.Fire(main)
