"""Benchmark of DSA over all pairs of a population against the reference's per-pair loop.

100 synthetic networks: four families of latent linear dynamics (10-D, spectral
radius 0.97); each network is its family's dynamics in a random basis plus a
small perturbation, seen through a random 32-unit map with tanh and noise, on
20 trials x 50 steps. ``pairwise_distances(reps, metric="dsa", rank=10)`` fits
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

Run: ``python benchmarks/dsa.py`` (about 1-3 minutes on 2 cores). Prints a
table; the last line is one JSON object. Wall and CPU seconds are both given:
on a shared machine the CPU seconds are the fairer measure.
"""
import argparse
import json
import time

import numpy as np

from rnn_dyn.dsa import dmd
from rnn_dyn.similarity import pairwise_distances

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--loop-pairs", type=int, default=20,
                        help="pairs on which the reference loop is timed")
    args = parser.parse_args()
    reps = make_networks(args.networks)
    n_pairs = args.networks * (args.networks - 1) // 2

    start, cpu = time.perf_counter(), time.process_time()
    D = pairwise_distances(reps, metric="dsa", rank=RANK, progress=False)
    batched, batched_cpu = time.perf_counter() - start, time.process_time() - cpu

    ops = [dmd(X, rank=RANK) for X in reps]
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
          f"rank {RANK}, {n_pairs} pairs")
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
    print(json.dumps({"networks": args.networks, "pairs": n_pairs, "rank": RANK,
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
