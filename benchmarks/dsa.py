"""Benchmark of DSA over all pairs of a population against the reference's per-pair loop.

100 synthetic networks: four families of latent linear dynamics (10-D, spectral
radius 0.97); each network is its family's dynamics in a random basis plus a
small perturbation, seen through a random 32-unit map with tanh and noise, on
20 trials x 50 steps. ``pairwise_distances(reps, metric="dsa", n_delays=..., rank=...)`` fits
each network's DMD once and aligns all 4,950 pairs of operators in one batched
optimization.

The reference (``SimilarityTransformDist`` of mitchellostrow/DSA) runs, per
pair, Adam (lr 0.01) for 1,500 steps on ``||A - C B C^T||^2`` with ``C`` the
Cayley map of a skew matrix, twice (from the identity and from a row swap, for
both determinant signs), and keeps the better. The loop here does exactly that
in numpy with analytic gradients (no torch, which per step is slower), on the
same DMD operators. It is timed on a random subset of pairs in the same run and
its per-pair cost extrapolated to all pairs (stated in the output); both are
checked on that subset (the batched distance should not be larger).

``--n-delays`` and ``--rank`` set the DSA settings of the pairwise timing
(default 5 delays and the sweep's largest rank, the costliest the study can
choose; the study's are chosen by fit, per task: run ``--trained`` to see them); the fit
sweep of :class:`~rnn_dyn.sweep_config.DSAFitConfig` (``DSA_FIT``) is timed on
``DSA_FIT.n_sample`` of the synthetic networks cut into segments.

``--trained``: instead, train a small population per task with the package's
own training (four tanh cells x 2 seeds, 32 units, ``--iterations`` steps,
study.yaml's optimizer settings) and run the study's DSA step
(:func:`rnn_dyn.jobs.dsa_fitted`) on it: the chosen ``(n_delays, rank)``, the fit
quality and the time per task.

Run: ``python benchmarks/dsa.py`` (about 1-3 minutes on 2 cores). Prints a
table; the last line is one JSON object. Wall and CPU seconds are both given:
on a shared machine the CPU seconds are the fairer measure.
"""
import argparse
import json
import time

import numpy as np

from rnn_dyn.dsa import dmd
from rnn_dyn.dsa_fit import choose_dmd, sweep_dmd
from rnn_dyn.similarity import pairwise_distances
from rnn_dyn.sweep_config import DSA_FIT

N_LATENT, N_UNITS, N_TRIALS, N_TIME, RANK = 10, 32, 20, 50, 10


def make_networks(n_networks, n_families=4, seed=0):
    """Trajectories (n_trials, n_time, n_units) of ``n_networks`` networks."""
    rng = np.random.default_rng(seed)
    families = []
    for _ in range(n_families):
        A = rng.standard_normal((N_LATENT, N_LATENT))
        families.append(0.97 * A / np.max(np.abs(np.linalg.eigvals(A))))
    nets = []
    for i in range(n_networks):
        Q = np.linalg.qr(rng.standard_normal((N_LATENT, N_LATENT)))[0]
        A = Q @ families[i % n_families] @ Q.T + 0.02 * rng.standard_normal((N_LATENT, N_LATENT))
        z = np.zeros((N_TRIALS, N_TIME, N_LATENT))
        z[:, 0] = rng.standard_normal((N_TRIALS, N_LATENT))
        for t in range(1, N_TIME):
            z[:, t] = z[:, t - 1] @ A.T
        W = rng.standard_normal((N_LATENT, N_UNITS)) / np.sqrt(N_LATENT)
        nets.append(np.tanh(z @ W) + 0.01 * rng.standard_normal((N_TRIALS, N_TIME, N_UNITS)))
    return nets


# -------------------------------------------------- the reference loop
def _cayley(S):
    X = S - S.T
    eye = np.eye(len(S))
    return np.linalg.solve(eye + X, eye - X), X


def reference_optimize(A, B, iters=1500, lr=0.01, betas=(0.9, 0.999), eps=1e-8):
    """One reference run: Adam on the skew parameter of ``C = (I+X)^-1 (I-X)``."""
    n = len(A)
    S, m, v = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))
    eye = np.eye(n)
    for k in range(1, iters + 1):
        C, X = _cayley(S)
        R = A - C @ B @ C.T  # loss ||R||^2
        dC = -2 * (R @ C @ B.T + R.T @ C @ B)
        dX = -np.linalg.solve((eye + X).T, dC @ (C + eye).T)
        grad = dX - dX.T
        m = betas[0] * m + (1 - betas[0]) * grad
        v = betas[1] * v + (1 - betas[1]) * grad ** 2
        S -= lr * (m / (1 - betas[0] ** k)) / (np.sqrt(v / (1 - betas[1] ** k)) + eps)
    C = _cayley(S)[0]
    return C, np.sum((A - C @ B @ C.T) ** 2)


def reference_pair(A, B):
    """Angular DSA of one pair as the reference computes it (two runs, the better)."""
    A, B = A / np.linalg.norm(A), B / np.linalg.norm(B)
    P = np.eye(len(B))
    P[[0, 1]] = P[[1, 0]]
    C1, loss1 = reference_optimize(A, B)
    C2, loss2 = reference_optimize(A, P @ B @ P.T)
    C = C1 if loss1 <= loss2 else C2 @ P
    return float(np.arccos(np.clip(np.sum(A * (C @ B @ C.T)), -1, 1)))


STUDY = {"flipflop": ({"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "decay_rate": 0.7}, {}),
         "sine": ({}, {"n_time": 100}), "context": ({"decay_steps": 500}, {})}


def trained(iterations, tasks):
    """Train a small population per task; the study's DSA fit on it; one JSON line per task."""
    from rnn_dyn import jobs
    from rnn_dyn.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
    from rnn_dyn.training import train_population

    for task in tasks:
        train, task_fields = STUDY[task]
        networks, zero, loss = [], [], []
        start = time.perf_counter()
        for cell in ("vanilla", "ugrnn", "gru", "lstm"):
            cfg = RunConfig(task=TaskConfig(name=task, n_val=64, **task_fields), model=ModelConfig(cell, "tanh", 32),
                            train=TrainConfig(**{"n_networks": 2, "seed": [0, 1], "iterations": iterations,
                                                 "optimizer": "adam", "lr": 3e-3, "decay_rate": 0.5,
                                                 "decay_steps": 1000, "jit_compile": False, **train}))
            result = train_population(cfg.task, cfg.model, cfg.train)
            weights = result.population.get_weights_dict()
            zero.append(result.zero_loss)
            loss += list(result.val_loss)
            for i in range(2):
                networks.append(({k: v[i] for k, v in weights.items()}, cfg.member_config(i).to_dict()))
        trained_s = time.perf_counter() - start
        start = time.perf_counter()
        out = jobs.dsa_fitted(networks, DSA_FIT, task)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        pairwise_distances(out["segments"], metric="dsa", **out["options"])
        pairs_s = time.perf_counter() - start
        print(json.dumps({"task": task, "networks": len(networks), "iterations": iterations,
                          "val_loss_over_zero_loss_max": round(float(np.max(loss) / np.min(zero)), 4),
                          **out["options"], **{k: round(v, 4) for k, v in out["metrics"].items()},
                          "train_s": round(trained_s, 1), "probe_and_sweep_s": round(fit_s, 1),
                          "pairwise_s": round(pairs_s, 1)}), flush=True)


def time_sweep(reps):
    """The fit sweep of DSA_FIT on DSA_FIT.n_sample synthetic networks (trials as segments)."""
    segments = [[X[k][:, :10] for k in range(len(X))] for X in reps[:DSA_FIT.n_sample]]  # 10 "PCs"
    start = time.perf_counter()
    sweep = sweep_dmd(segments, [d for d in DSA_FIT.n_delays if d + DSA_FIT.horizon + 2 <= N_TIME],
                      DSA_FIT.ranks, DSA_FIT.horizon, DSA_FIT.holdout)
    return time.perf_counter() - start, choose_dmd(sweep, DSA_FIT.tolerance)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--loop-pairs", type=int, default=20,
                        help="pairs on which the reference loop is timed")
    parser.add_argument("--n-delays", type=int, default=5)
    parser.add_argument("--rank", type=int, default=max(DSA_FIT.ranks), help="default: the sweep's largest")
    parser.add_argument("--trained", action="store_true", help="the fit on small trained populations")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--tasks", nargs="+", default=list(STUDY), choices=list(STUDY))
    args = parser.parse_args()
    if args.trained:
        return trained(args.iterations, args.tasks)
    reps = make_networks(args.networks)
    n_pairs = args.networks * (args.networks - 1) // 2
    sweep_s, choice = time_sweep(reps)

    start, cpu = time.perf_counter(), time.process_time()
    D = pairwise_distances(reps, metric="dsa", n_delays=args.n_delays, rank=args.rank, progress=False)
    batched, batched_cpu = time.perf_counter() - start, time.process_time() - cpu

    ops = [dmd(X, n_delays=args.n_delays, rank=args.rank) for X in reps]
    rng = np.random.default_rng(1)
    upper = np.transpose(np.triu_indices(args.networks, 1))
    subset = upper[rng.choice(len(upper), min(args.loop_pairs, len(upper)), replace=False)]
    start, cpu = time.perf_counter(), time.process_time()
    ref = np.array([reference_pair(ops[i], ops[j]) for i, j in subset])
    loop_subset, loop_cpu = time.perf_counter() - start, time.process_time() - cpu
    loop_all = loop_subset / len(subset) * n_pairs
    ours = D[subset[:, 0], subset[:, 1]]
    family = np.arange(args.networks) % 4
    same = family[:, None] == family[None, :]
    off = ~np.eye(args.networks, dtype=bool)

    print(f"{args.networks} networks ({N_TRIALS} trials x {N_TIME} steps x {N_UNITS} units), "
          f"n_delays {args.n_delays}, rank {args.rank}, {n_pairs} pairs")
    print(f"  fit sweep on {DSA_FIT.n_sample} networks: {sweep_s:.1f} s wall; it would choose "
          f"n_delays {choice['n_delays']}, rank {choice['rank']} (multi-step R² {choice['r2_multi_step']:.3f})")
    print(f"  batched pairwise_distances(metric='dsa'): {batched:8.1f} s wall, "
          f"{batched_cpu:.1f} s CPU (DMD included)")
    print(f"  reference loop on {len(subset)} pairs:        {loop_subset:8.1f} s wall, "
          f"{loop_cpu:.1f} s CPU -> {loop_all:8.0f} s wall extrapolated to all pairs")
    print(f"  speed-up: {loop_all / batched:.0f}x wall, "
          f"{loop_cpu / len(subset) * n_pairs / batched_cpu:.0f}x CPU")
    print(f"  on the subset: batched - reference distance: max {np.max(ours - ref):+.2e}, "
          f"mean {np.mean(ours - ref):+.2e} (negative: batched found a better alignment)")
    print(f"  mean distance within families {D[same & off].mean():.3f}, "
          f"across {D[~same].mean():.3f}")
    print(json.dumps({"networks": args.networks, "pairs": n_pairs, "n_delays": args.n_delays, "rank": args.rank,
                      "sweep_s": round(sweep_s, 2),
                      "batched_s": round(batched, 2), "batched_cpu_s": round(batched_cpu, 2),
                      "loop_pairs_timed": len(subset), "loop_cpu_s_timed": round(loop_cpu, 2),
                      "loop_s_timed": round(loop_subset, 2),
                      "loop_s_extrapolated": round(loop_all, 1),
                      "ratio": round(loop_all / batched, 1),
                      "ratio_cpu": round(loop_cpu / len(subset) * n_pairs / batched_cpu, 1),
                      "max_excess_over_reference": float(np.max(ours - ref)),
                      "mean_excess_over_reference": float(np.mean(ours - ref))}))


if __name__ == "__main__":
    main()
