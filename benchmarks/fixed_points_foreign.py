"""Benchmark: fixed points of 64-unit gated networks we did not train, called as a new user would.

Networks (``tests/fixtures``, made by ``make_foreign_flipflop.py`` and
``make_keras_gru_flipflop.py``; memories on slow manifolds, trained with
optimisers and flip-flop variants other than ours):

- ``torch_gru``: a PyTorch-layout ``nn.GRU`` state dict, through ``rnn_dyn.from_torch``
  (one stable point; its memories are slow regions, not attractors);
- ``torch_gru_p05``: another, trained on another flip-flop variant;
- ``torch_lstm``: a PyTorch-layout ``nn.LSTM`` state dict, through ``rnn_dyn.from_torch``
  (state ``[c; h]``, 128 numbers);
- ``keras_gru``: a stock ``keras.layers.GRUCell(64, reset_after=True)`` holding its weights;
- ``keras_gru_adam``: the Keras GRU of ``keras_gru_flipflop_64.npz`` (issue 14's network).

Per network: 1,024 starts from its own trajectories on 128 trials of its own
task (``sample_states(states, 1024, noise=0.5)``), then the bare call
``find_fixed_points(cell, np.zeros(3), starts)`` (default ``region``: the
starts' range).  The points are compared with the true fixed points that
``make_foreign_flipflop_truth.py`` / ``make_keras_gru_flipflop_truth.py``
established in float64 numpy: true points found (within 1e-6), their
stability (number of ``|λ| > 1``) right, and false ``fixed`` labels (a point
labelled fixed that is not a true point, or whose ``q`` under the numpy
float64 equations exceeds 1e-18).  Seconds: the first call (tracing
included) and the best of ``--repeats`` warm calls, wall and CPU (the process's
CPU time over both cores: on a shared machine the wall time includes waiting
for the cores).

Run from the repository root::

    python benchmarks/fixed_points_foreign.py [--repeats 2] [--profile NAME] [--save-labelled]

``--profile NAME`` prints the functions that take the time (cProfile, one
warm call); ``--save-labelled`` writes the points labelled fixed (``NAME/hstar``), and
for the PyTorch networks rnn_dyn's float64 map on 64 sample states
(``NAME/map_states``, ``NAME/map_values``), to
``tests/fixtures/foreign_flipflop_64_labelled.npz`` for
``benchmarks/torch_check.py``.  The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import pathlib
import pstats
import time

import numpy as np

FIXTURES = pathlib.Path(__file__).parents[1] / "tests" / "fixtures"
TOL_SAME, TOL_ROOT = 1e-6, 1e-18


def _module(name):
    spec = importlib.util.spec_from_file_location(name, FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_network(name):
    """``(cell, states [n_trials, n_time, n_state], truth, numpy_step)`` of a benchmark network."""
    import keras

    import rnn_dyn

    make, truth_mod = _module("make_foreign_flipflop"), _module("make_foreign_flipflop_truth")
    if name == "keras_gru_adam":
        old = _module("make_keras_gru_flipflop_truth")
        with np.load(FIXTURES / "keras_gru_flipflop_64.npz") as data:
            weights = [data[k] for k in ("kernel", "recurrent_kernel", "bias")]
        with np.load(FIXTURES / "keras_gru_flipflop_64_truth.npz") as data:
            truth = {k: data[k] for k in ("hstar", "n_unstable")}
        config = {"p_flip": 0.05, "noise": 0.0}
        w64 = tuple(np.asarray(w, np.float64) for w in weights)
        numpy_step = lambda h: old.step(h, np.zeros(3), w64)  # noqa: E731
    else:
        net64, config = truth_mod.load(name)
        with np.load(FIXTURES / "foreign_flipflop_64_truth.npz") as data:
            truth = {k: data[f"{name}/{k}"] for k in ("hstar", "n_unstable")}
        numpy_step = lambda h: net64.step(h, np.zeros(3))  # noqa: E731
    inputs, _ = make.flipflop(np.random.default_rng(0), 128, config["p_flip"], config["noise"])
    if name.startswith("torch"):
        cell = rnn_dyn.from_torch(make.fixture_path(name), name.split("_")[1])
        states = cell.run(inputs)[0].numpy()[0]
    else:
        if name == "keras_gru":
            with np.load(make.fixture_path(name)) as data:
                weights = [data[k] for k in ("kernel", "recurrent_kernel", "bias")]
        cell = keras.layers.GRUCell(64, reset_after=True)
        cell.build((None, 3))
        cell.set_weights(weights)
        states = keras.layers.RNN(cell, return_sequences=True)(inputs).numpy()
    return cell, states, truth, numpy_step


def compare(fps, truth, numpy_step):
    """Counts against the truth: found, stability right, false fixed labels."""
    fixed = fps.fixed
    hstar = truth["hstar"]
    if len(fixed) == 0:
        return 0, 0, 0
    dist = np.linalg.norm(hstar[:, None] - fixed.hstar[None], axis=-1)
    found = dist.min(1) < TOL_SAME
    stable_right = found & (fixed.n_unstable[dist.argmin(1)] == truth["n_unstable"])
    r = numpy_step(fixed.hstar) - fixed.hstar
    q = 0.5 * np.sum(r * r, -1)
    false = (dist.min(0) >= TOL_SAME) | (q > TOL_ROOT)
    return int(found.sum()), int(stable_right.sum()), int(false.sum())


def benchmark(name, repeats, profile=False):
    from rnn_dyn.fixed_points import find_fixed_points, sample_states

    cell, states, truth, numpy_step = load_network(name)
    starts = sample_states(states, 1024, noise=0.5, rng=1)
    times, cpu = [], []
    for _ in range(repeats + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        fps = find_fixed_points(cell, np.zeros(3), starts)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(find_fixed_points, cell, np.zeros(3), starts)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    found, stable_right, false = compare(fps, truth, numpy_step)
    extra = {}
    if name.startswith("torch"):  # rnn_dyn's float64 map on sample states, for torch_check.py
        import tensorflow as tf

        from rnn_dyn.linearization import make_map

        sample = sample_states(states, 64, noise=0.3, rng=2).astype(np.float64)
        values = make_map(cell, 3).f64(tf.constant(sample[None]), tf.constant(np.zeros((1, 64, 3))))
        extra = {"map_states": sample, "map_values": values.numpy()[0]}
    return {"network": name, "n_true": len(truth["hstar"]), "found": found, "stability_right": stable_right,
            "false_fixed": false, "n_fixed": len(fps.fixed), "n_slow": len(fps.slow),
            "first_s": round(times[0], 2), "warm_s": round(min(times[1:] or times), 2),
            "warm_cpu_s": round(min(cpu[1:] or cpu), 2),
            "labelled": fps.fixed.hstar, "extra": extra}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--networks", nargs="*", default=["torch_gru", "torch_gru_p05", "torch_lstm",
                                                           "keras_gru", "keras_gru_adam"])
    parser.add_argument("--profile", default=None, help="network to profile (cProfile, one call)")
    parser.add_argument("--save-labelled", action="store_true")
    args = parser.parse_args()
    rows = [benchmark(n, args.repeats, profile=n == args.profile) for n in args.networks]
    cores, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    print(f"find_fixed_points(cell, np.zeros(3), 1,024 starts), default region; {cores} cores, "
          f"load average {load:.1f}")
    print(f"{'network':>15} {'true found':>11} {'stability':>10} {'false fixed':>12} {'slow':>5} "
          f"{'first s':>8} {'warm s':>7} {'warm cpu s':>11}")
    for r in rows:
        print(f"{r['network']:>15} {r['found']:>5} / {r['n_true']:<3} {r['stability_right']:>10} "
              f"{r['false_fixed']:>12} {r['n_slow']:>5} {r['first_s']:>8.2f} {r['warm_s']:>7.2f} {r['warm_cpu_s']:>11.2f}")
    if args.save_labelled:
        arrays = {}
        for r in rows:
            arrays[f"{r['network']}/hstar"] = r["labelled"]
            arrays.update({f"{r['network']}/{k}": v for k, v in r["extra"].items()})
        np.savez_compressed(FIXTURES / "foreign_flipflop_64_labelled.npz", **arrays)
    print(json.dumps({"rows": [{k: v for k, v in r.items() if k not in ("labelled", "extra")} for r in rows],
                      "cores": cores, "load_average": round(load, 1)}))


if __name__ == "__main__":
    main()
