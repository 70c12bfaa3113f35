"""Benchmark: fixed points of 64-unit flip-flop GRUs, one network and populations of 8 and 32.

Each timing covers ``find_fixed_points`` end to end: the Adam search, the
float64 Newton/LM polish, merging, Jacobians and eigendecompositions, for
1,024 starts per network (sampled from the network's own trajectories on 128
flip-flop trials, noise 0.5).  The first call of each population size includes
tracing; the table reports it and then the best of ``--repeats`` warm calls.

Networks: the trained fixture ``tests/fixtures/gru_flipflop_64.npz`` (two
GRUs).  Populations of 8 and 32 are those two networks replicated, each copy's
weights perturbed by Gaussian noise of ``--perturb`` times each matrix's
standard deviation (default 0.01), so every member is a distinct, trained-like
network.

Run from the repository root::

    python benchmarks/fixed_points.py [--repeats 3] [--perturb 0.01] [--keras-only]

A second case, ``keras_gru_*`` in the JSON line: the stock Keras GRU of
``tests/fixtures/keras_gru_flipflop_64.npz`` (trained with Adam on the
flip-flop without the t = 0 pulse; memories on slow manifolds), 1,024 starts.

The last line printed is one JSON object with the timings and counts.  On a
shared machine the timings include any contention for the cores.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

import numpy as np

from rnn_dyn.config import ModelConfig
from rnn_dyn.fixed_points import find_fixed_points, sample_states
from rnn_dyn.population import Population
from rnn_dyn.tasks import get_task

FIXTURE = pathlib.Path(__file__).parents[1] / "tests" / "fixtures" / "gru_flipflop_64.npz"
KERAS_FIXTURE = FIXTURE.with_name("keras_gru_flipflop_64.npz")


def make_population(n_networks: int, perturb: float, seed: int = 0) -> Population:
    """``n_networks`` copies of the fixture's trained GRUs, weights perturbed (copy 0 exact)."""
    rng = np.random.default_rng(seed)
    with np.load(FIXTURE) as data:
        trained = {k: data[k] for k in data.files if k not in ("seeds", "val_loss", "config")}
    members = [i % 2 for i in range(n_networks)]
    weights = {}
    for name, value in trained.items():
        stacked = value[members].astype(np.float64)
        noise = perturb * value.std() * rng.standard_normal(stacked.shape)
        noise[: min(2, n_networks)] = 0.0  # the first two members are the trained networks
        weights[name] = (stacked + noise).astype(np.float32)
    population = Population(ModelConfig("gru", "tanh", 64), 3, 3, list(range(n_networks)))
    population.set_weights_dict(weights)
    return population


def benchmark(n_networks: int, n_starts: int, repeats: int, perturb: float) -> dict:
    task = get_task("flipflop")
    population = make_population(n_networks, perturb)
    states, _ = population.run(task.sample(np.random.default_rng(0), 128)["inputs"])
    starts = sample_states(states.numpy(), n_starts, noise=0.5, rng=1)
    x_cond = task.x_cond[0]
    start = time.perf_counter()
    fps = find_fixed_points(population.cell, x_cond, starts)
    first = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        fps = find_fixed_points(population.cell, x_cond, starts)
        warm.append(time.perf_counter() - start)
    m = fps.metrics()
    return {"n_networks": n_networks, "first_s": first, "warm_s": min(warm),
            "warm_median_s": float(np.median(warm)), "per_network_s": min(warm) / n_networks,
            "n_fixed": m["n_fixed"].tolist(), "n_stable": m["n_stable"].tolist(),
            "n_saddles": m["n_saddles"].tolist(), "n_slow": m["n_slow"].tolist(),
            "n_discarded": m["n_discarded"].tolist()}


def benchmark_keras(n_starts: int, repeats: int) -> dict:
    """A stock ``keras.layers.GRUCell(64, reset_after=True)`` trained with Adam on the
    flip-flop without the t = 0 pulse (memories on slow manifolds): 1,024 starts
    from its trajectories on 128 such trials, noise 0.5."""
    import keras

    rng = np.random.default_rng(0)
    with np.load(KERAS_FIXTURE) as data:
        weights = [data[k] for k in ("kernel", "recurrent_kernel", "bias")]
    truth_file = KERAS_FIXTURE.with_name("keras_gru_flipflop_64_truth.npz")
    truth = np.load(truth_file)["hstar"] if truth_file.exists() else None
    cell = keras.layers.GRUCell(64, reset_after=True)
    cell.build((None, 3))
    cell.set_weights(weights)
    pulse = rng.random((128, 100, 3)) < 0.05
    inputs = (pulse * np.where(rng.random(pulse.shape) < 0.5, -1.0, 1.0)).astype(np.float32)
    states = keras.layers.RNN(cell, return_sequences=True)(inputs).numpy()
    starts = sample_states(states, n_starts, noise=0.5, rng=1)
    times, cpu = [], []
    for _ in range(repeats + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        fps = find_fixed_points(cell, np.zeros(3), starts, region=states)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    m = fps.metrics()
    found = None
    if truth is not None and len(fps.fixed):
        dist = np.linalg.norm(truth[:, None] - fps.fixed.hstar[None], axis=-1).min(1)
        found = int(np.sum(dist < 1e-6))
    return {"keras_gru_first_call_s": round(times[0], 3), "keras_gru_s": round(min(times[1:]), 3),
            "keras_gru_cpu_s": round(min(cpu[1:]), 3),
            "keras_gru_n_fixed": int(m["n_fixed"][0]), "keras_gru_n_stable": int(m["n_stable"][0]),
            "keras_gru_n_saddles": int(m["n_saddles"][0]), "keras_gru_n_slow": int(m["n_slow"][0]),
            "keras_gru_n_slow_manifolds": len(fps.slow_manifolds()),
            "keras_gru_true_found": found, "keras_gru_n_true": None if truth is None else len(truth)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--perturb", type=float, default=0.01)
    parser.add_argument("--n-starts", type=int, default=1024)
    parser.add_argument("--keras-only", action="store_true",
                        help="only the Keras GRU with slow manifolds (keras_gru_flipflop_64.npz)")
    args = parser.parse_args()
    keras_row = benchmark_keras(args.n_starts, args.repeats)
    if args.keras_only:
        print(json.dumps({**keras_row, "cores": len(os.sched_getaffinity(0)),
                          "load_average": round(os.getloadavg()[0], 1)}))
        return
    rows = [benchmark(n, args.n_starts, args.repeats, args.perturb) for n in (1, 8, 32)]
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    print(f"find + Jacobians + eigendecomposition, {args.n_starts} starts per network, "
          f"{cores} cores, load average {load:.1f}" + (" (contention)" if load > cores else ""))
    print(f"{'networks':>8} {'first call s':>13} {'warm s':>8} {'per network s':>14} "
          f"{'fixed':>12} {'stable':>12} {'saddles':>12} {'slow':>6}")
    for r in rows:
        span = lambda v: f"{min(v)}-{max(v)}" if min(v) != max(v) else f"{v[0]}"  # noqa: E731
        print(f"{r['n_networks']:>8} {r['first_s']:>13.2f} {r['warm_s']:>8.2f} "
              f"{r['per_network_s']:>14.3f} {span(r['n_fixed']):>12} {span(r['n_stable']):>12} "
              f"{span(r['n_saddles']):>12} {sum(r['n_slow']):>6}")
    one, pop8, pop32 = rows
    print(json.dumps({
        "one_network_s": round(one["warm_s"], 3), "one_network_first_call_s": round(one["first_s"], 3),
        "pop8_per_network_s": round(pop8["per_network_s"], 3),
        "pop32_per_network_s": round(pop32["per_network_s"], 3),
        "pop8_first_call_s": round(pop8["first_s"], 3), "pop32_first_call_s": round(pop32["first_s"], 3),
        "n_fixed": one["n_fixed"][0], "n_stable": one["n_stable"][0],
        "n_saddles": one["n_saddles"][0], "n_slow": one["n_slow"][0],
        "pop32_n_fixed": pop32["n_fixed"], "pop32_n_stable": pop32["n_stable"],
        **keras_row, "cores": cores, "load_average": round(load, 1)}))


if __name__ == "__main__":
    main()
