"""Training throughput: our population trainer against the route a user takes today.

64-unit tanh GRUs on the 3-bit flip-flop (T = 100, batch 64), in one process:

(a) naive: one network, ``keras.layers.RNN(keras.layers.GRUCell(64))`` and a
    Dense readout, SGD with momentum and global-norm clipping, ``model.fit``;
(b) ours: ``rnn_dyn`` populations of 1, 8, 32 and 64 networks (each member with
    its own data stream, hyperparameters and optimizer state), the real
    training loop (data generation on a prefetch thread included), compiled
    with XLA (the default), and for 1 and 64 networks also without.

Also the machine's large-matmul throughput in the same process, our model
FLOP/s (forward and backward matrix products) as a fraction of it, and the rate
of a step's recurrent product alone (how far the products themselves are from
the peak; the rest of a step is gate arithmetic and loop overhead).
Usage: ``python benchmarks/train_throughput.py [--quick]``.  The last line is
one JSON object.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rnn_dyn.config import ModelConfig, TaskConfig, TrainConfig  # noqa: E402
from rnn_dyn.tasks import get_task  # noqa: E402
from rnn_dyn.training import time_step  # noqa: E402

N_UNITS, N_TIME, BATCH = 64, 100, 64
TASK = get_task(TaskConfig("flipflop", n_time=N_TIME))
QUICK = "--quick" in sys.argv


def model_flops(n_in=3, n_out=3, n=N_UNITS, gates=3):
    """Matrix-product FLOPs of one iteration of one network (backward = 2 x forward)."""
    forward = N_TIME * 2 * BATCH * (gates * n * (n + n_in) + n * n_out)
    return 3 * forward


def matmul_peak(size=2048, reps=10):
    a = tf.random.normal([size, size])
    tf.matmul(a, a).numpy()
    start = time.perf_counter()
    for _ in range(reps):
        c = tf.matmul(a, a)
    c.numpy()
    return reps * 2 * size**3 / (time.perf_counter() - start)


def product_rate(reps=5000):
    """FLOP/s of a step's recurrent product alone (two members, 64x64 by 64x192), chained in
    an XLA loop: what the trainer's pieces could reach if the products were all they did."""
    w = tf.random.normal([2, N_UNITS, 3 * N_UNITS]) * 0.05

    @tf.function(jit_compile=True)
    def chain(w):
        body = lambda i, h: (i + 1, tf.matmul(h, w)[..., :N_UNITS])  # noqa: E731
        return tf.while_loop(lambda i, h: i < reps, body, (0, tf.ones([2, BATCH, N_UNITS])))[1]

    chain(w).numpy()
    start = time.perf_counter()
    chain(w).numpy()
    return reps * 2 * 2 * BATCH * N_UNITS * 3 * N_UNITS / (time.perf_counter() - start)


def naive_ms(n_batches=20):
    data = TASK.sample(np.random.default_rng(0), n_batches * BATCH)
    model = keras.Sequential([
        keras.Input((N_TIME, 3)),
        keras.layers.RNN(keras.layers.GRUCell(N_UNITS, reset_after=False), return_sequences=True),
        keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9, global_clipnorm=1.0), "mse")
    fit = lambda: model.fit(data["inputs"], data["targets"], batch_size=BATCH, epochs=1,  # noqa: E731
                            verbose=0, shuffle=False)
    fit()  # tracing
    times = []
    for _ in range(3):  # its time varies by 1.5x from run to run here: keep the best (fairest to it)
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return 1000 * min(times) / n_batches


def population_ms(n, iterations, jit_compile=True):
    """Milliseconds per training step of a population of ``n`` (all members), best of 3 rounds."""
    train = TrainConfig(n_networks=n, jit_compile=jit_compile)
    return 1000 * n * time_step(TASK.cfg, ModelConfig("gru", "tanh", N_UNITS), train, n, iterations, best_of=3)


def main():
    # This machine's speed drifts by 1.5x over minutes: every quantity is measured in each of
    # several rounds, the rounds interleaved, and the best of each kept, so that a slow spell
    # cannot favour one side of a ratio.
    sizes = (1, 8) if QUICK else (1, 8, 32, 64)
    iters = lambda n: max(2, (20 if QUICK else 40) // n)  # noqa: E731
    peak, products, naive, pop, plain = 0.0, 0.0, np.inf, dict.fromkeys(sizes, np.inf), {}
    for _ in range(1 if QUICK else 3):
        peak, products = max(peak, matmul_peak()), max(products, product_rate())
        naive = min(naive, naive_ms(10 if QUICK else 20))
        for n in sizes:
            pop[n] = min(pop[n], population_ms(n, iters(n)) / n)
    for n in (1, sizes[-1]):  # the same loop without XLA, for comparison
        plain[n] = population_ms(n, iters(n), jit_compile=False) / n
    print(f"matmul peak        {peak / 1e9:8.1f} GFLOP/s")
    print(f"64-unit products   {products / 1e9:8.1f} GFLOP/s (two members, chained in XLA, one core)")
    print(f"naive Keras fit    {naive:8.1f} ms / iteration / network")
    for n in sizes:
        frac = model_flops() / (pop[n] / 1000) / peak
        print(f"population {n:3d}     {pop[n]:8.1f} ms / iteration / network  "
              f"({pop[n] * n:7.1f} ms per step, {naive / pop[n]:4.1f}x naive, {100 * frac:4.1f}% of matmul peak)")
    for n, ms in plain.items():
        print(f"population {n:3d}     {ms:8.1f} ms / iteration / network  (without XLA)")
    best = min(pop, key=pop.get)
    out = {"naive_ms": round(naive, 2), "pop_ms": {str(k): round(v, 2) for k, v in pop.items()},
           "pop_ms_without_xla": {str(k): round(v, 2) for k, v in plain.items()},
           "speedup_best": round(naive / pop[best], 2), "best_population": best,
           "matmul_peak_gflops": round(peak / 1e9, 1), "product_gflops": round(products / 1e9, 1),
           "model_gflops_best": round(model_flops() / (pop[best] / 1000) / 1e9, 1),
           "peak_fraction_best": round(model_flops() / (pop[best] / 1000) / peak, 3),
           "device": "GPU" if tf.config.list_physical_devices("GPU") else f"CPU x{os.cpu_count()}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
