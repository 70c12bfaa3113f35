"""Benchmark of rnn_dyn.similarity.pairwise_distances against a pair-by-pair loop.

Random networks share a low-rank latent (each its own mixing, tanh and noise),
like RNNs trained on one task. For 50 networks of 6,400 samples x 128 units it
times all pairs of SVCCA (k=20), linear CKA and angular Procrustes with
``pairwise_distances`` and with the straightforward loop a user writes today
(per pair: SVD-reduce then CCA through covariance inverse square roots as in
Google's SVCCA notebook; the plain CKA formula; an SVD per Procrustes pair).
The loop is timed on a random subset of pairs, with the default BLAS threads
and with one (the faster counts), and its per-pair cost extrapolated to all
pairs; both methods are checked to agree on that subset.
Then all SVCCA pairs of 500 networks, streamed from a generator, and an
extrapolation to 2,880 networks from the measured per-network preparation and
per-pair block costs. Prints a table; the last line is one JSON object.

Run: ``python benchmarks/similarity.py`` (about 2-5 minutes on 2 cores).
"""
import argparse
import json
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from rnn_dyn.similarity import pairwise_distances, prepare

N_SAMPLES, N_UNITS, N_LATENT, K = 6400, 128, 16, 20


def make_networks(n_networks, seed=0, n_samples=N_SAMPLES):
    """Yield ``n_networks`` arrays (n_samples, N_UNITS) sharing one latent."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_samples, N_LATENT))
    for _ in range(n_networks):
        mixing = rng.standard_normal((N_LATENT, N_UNITS)) / np.sqrt(N_LATENT)
        yield np.tanh(latent @ mixing) + 0.3 * rng.standard_normal((n_samples, N_UNITS))


# -------------------------------------------------- the reference loop
def _inv_sqrt(S, eps=1e-10):
    w, V = np.linalg.eigh(S)
    return (V / np.sqrt(np.maximum(w, eps))) @ V.T


def loop_svcca(X, Y, k=K):
    def reduce(A):
        A = A - A.mean(0)
        U, s, _ = np.linalg.svd(A, full_matrices=False)
        return U[:, :k] * s[:k]
    Xr, Yr = reduce(X), reduce(Y)
    n = len(X)
    sxx, syy, sxy = Xr.T @ Xr / (n - 1), Yr.T @ Yr / (n - 1), Xr.T @ Yr / (n - 1)
    rho = np.linalg.svd(_inv_sqrt(sxx) @ sxy @ _inv_sqrt(syy), compute_uv=False)
    return 1.0 - np.clip(rho, 0, 1).mean()


def loop_cka(X, Y):
    X, Y = X - X.mean(0), Y - Y.mean(0)
    return 1.0 - np.linalg.norm(X.T @ Y) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))


def loop_procrustes(X, Y):
    X, Y = X - X.mean(0), Y - Y.mean(0)
    nuc = np.linalg.svd(X.T @ Y, compute_uv=False).sum()
    return np.arccos(np.clip(nuc / (np.linalg.norm(X) * np.linalg.norm(Y)), -1, 1))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def compare_50(reps, n_loop_pairs, rng):
    n = len(reps)
    all_pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    rows = {}
    for name, options, loop in [("svcca", {"k": K}, loop_svcca), ("cka", {}, loop_cka),
                                ("procrustes", {}, loop_procrustes)]:
        pairwise_distances(reps[:3], metric=name, **options)  # warm up
        D, seconds = timed(pairwise_distances, reps, metric=name, progress=False, **options)
        subset = [all_pairs[p] for p in rng.choice(len(all_pairs), n_loop_pairs, replace=False)]
        per_pair = []
        for threads in (None, 1):  # default BLAS threads, then one: keep the faster
            with threadpool_limits(threads):
                start = time.perf_counter()
                ref = [loop(reps[i], reps[j]) for i, j in subset]
                per_pair.append((time.perf_counter() - start) / len(subset))
        loop_seconds = min(per_pair) * len(all_pairs)
        diff = max(abs(D[i, j] - r) for (i, j), r in zip(subset, ref))
        rows[name] = dict(ms=seconds * 1e3, loop_ms=loop_seconds * 1e3,
                          speedup=loop_seconds / seconds, max_abs_diff=diff)
    return rows


def dgemm_rate(rng, width=2048):
    """GFLOP/s of one float64 GEMM ``(width x N_SAMPLES) @ (N_SAMPLES x width)`` now."""
    A, B = rng.standard_normal((N_SAMPLES, width)), rng.standard_normal((N_SAMPLES, width))
    _, seconds = timed(np.matmul, A.T, B)
    return 2 * N_SAMPLES * width ** 2 / seconds / 1e9


def svcca_many(n_networks, seed):
    """All SVCCA pairs of networks streamed from a generator; returns timings."""
    gen_seconds = 0.0

    def stream():
        nonlocal gen_seconds
        source = make_networks(n_networks, seed)
        while True:
            start = time.perf_counter()
            X = next(source, None)
            gen_seconds += time.perf_counter() - start
            if X is None:
                return
            yield X
    prepared, prep_total = timed(prepare, stream(), "svcca", progress=False, k=K)
    D, block_seconds = timed(pairwise_distances, prepared, progress=False)
    assert D.shape == (n_networks, n_networks) and np.all(np.isfinite(D))
    return prep_total - gen_seconds, block_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=50)
    parser.add_argument("--many", type=int, default=500, help="networks for the large run")
    parser.add_argument("--loop-pairs", type=int, default=40, help="pairs timed in the loop")
    parser.add_argument("--target", type=int, default=2880, help="networks to extrapolate to")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    load_before = os.getloadavg()[0]

    reps = list(make_networks(args.networks, seed=0))
    pairs = args.networks * (args.networks - 1) // 2
    rows = compare_50(reps, min(args.loop_pairs, pairs), rng)
    del reps
    print(f"{args.networks} networks x ({N_SAMPLES} samples x {N_UNITS} units), {pairs} pairs; "
          f"loop timed on {min(args.loop_pairs, pairs)} random pairs and EXTRAPOLATED to all")
    print(f"{'metric':<12}{'pairwise (s)':>14}{'loop (s)':>12}{'speedup':>10}{'max |diff|':>12}")
    for name, row in rows.items():
        print(f"{name:<12}{row['ms'] / 1e3:>14.2f}{row['loop_ms'] / 1e3:>12.1f}"
              f"{row['speedup']:>9.0f}x{row['max_abs_diff']:>12.1e}")

    gflops = dgemm_rate(rng)
    cka_gflop = N_SAMPLES * (args.networks * N_UNITS) ** 2 / 1e9  # all X_i^T X_j, float64
    print(f"CKA's products X_i^T X_j need {cka_gflop:.0f} GFLOP: {cka_gflop / gflops:.1f} s at "
          f"the dgemm rate measured now, {gflops:.0f} GFLOP/s (the pairwise run reached "
          f"{cka_gflop / rows['cka']['ms'] * 1e3:.0f} GFLOP/s end to end)")

    prep_s, block_s = svcca_many(args.many, seed=2)
    many_pairs = args.many * (args.many - 1) // 2
    per_net, per_pair = prep_s / args.many, block_s / many_pairs
    target_pairs = args.target * (args.target - 1) // 2
    projected = per_net * args.target + per_pair * target_pairs
    load_after = os.getloadavg()[0]
    print(f"\nSVCCA k={K}, {args.many} networks streamed from a generator (measured): "
          f"prepare {prep_s:.1f} s ({per_net * 1e3:.1f} ms/network), all {many_pairs} pairs "
          f"{block_s:.1f} s ({per_pair * 1e6:.1f} us/pair)")
    print(f"SVCCA k={K}, {args.target} networks ({target_pairs} pairs): {projected:.0f} s "
          f"= {projected / 60:.1f} min (EXTRAPOLATED from the {args.many}-network run)")
    print(f"1-min load average: {load_before:.1f} before, {load_after:.1f} after "
          f"(2 cores; other work may be running)")
    result = {f"{name}_{key}": value if key == "max_abs_diff" else round(value, 2)
              for name, row in rows.items() for key, value in row.items()}
    result.update(dgemm_gflops=round(gflops, 1), cka_gflop=round(cka_gflop, 1),
                  cka_gemm_floor_ms=round(cka_gflop / gflops * 1e3, 1), n_networks=args.networks,
                  loop_pairs_timed=min(args.loop_pairs, pairs),
                  loop_extrapolated=True, n_many=args.many,
                  svcca_many_prepare_s=round(prep_s, 2), svcca_many_block_s=round(block_s, 2),
                  svcca_per_network_prepare_ms=round(per_net * 1e3, 3),
                  svcca_per_pair_block_us=round(per_pair * 1e6, 3),
                  n_target=args.target,
                  **{f"svcca_{args.target}_projected_s": round(projected, 1)},
                  projected_is_extrapolation=True,
                  load_avg_before=round(load_before, 2), load_avg_after=round(load_after, 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
