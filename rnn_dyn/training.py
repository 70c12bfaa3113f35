"""Train a whole population at once: one ``tf.function`` step updates every member.

Loss per member (SPEC §3): mean squared error over all time steps and outputs
plus ``l2 * sum ||W||^2`` over its weight matrices.  Each member has its own
seed (initial weights and data stream), l2, learning rate ``lr0 *
decay_rate^(k / decay_steps)``, momentum, global-norm clip and optimizer state:
the members' gradients never mix, so a member trains exactly as it would alone.
A member whose loss or gradient becomes non-finite is frozen and recorded as
diverged at that step; the others continue unchanged.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from rnn_dyn.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from rnn_dyn.population import Population
from rnn_dyn.tasks import get_task


def set_threads(n: int | None = None):
    """Let TensorFlow use ``n`` threads (default: the cores this process may use).

    Must run before TensorFlow executes its first op; later calls are ignored.
    """
    n = n or len(os.sched_getaffinity(0))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow already initialised: keep its settings
        pass


@dataclass
class TrainResult:
    """What training a population produced.

    Attributes
    ----------
    population : Population
        The trained networks (a diverged member keeps its last finite weights).
    loss_steps : ndarray [n_logs]
        Iterations at which the training loss was recorded.
    loss : ndarray [n_logs, n_networks]
        Training MSE (without the L2 term) at those iterations.
    val_loss : ndarray [n_networks]
        MSE on the task's fixed validation set after training.
    zero_loss : float
        Validation MSE of always answering 0: the baseline to beat.
    diverged : ndarray [n_networks] of bool
    diverged_step : ndarray [n_networks] of int (-1 where not diverged)
    seconds : float
        Wall time of the training loop.
    """

    population: Population
    loss_steps: np.ndarray
    loss: np.ndarray
    val_loss: np.ndarray
    zero_loss: float
    diverged: np.ndarray
    diverged_step: np.ndarray
    seconds: float

    def to_dict(self) -> dict:
        """Plain arrays (picklable: what a worker sends back), weights by SPEC's symbols."""
        out = {k: getattr(self, k) for k in (
            "loss_steps", "loss", "val_loss", "zero_loss", "diverged", "diverged_step", "seconds")}
        out["weights"] = self.population.get_weights_dict()
        return out


def _member_vector(train: TrainConfig, name: str) -> tf.Tensor:
    return tf.constant(np.asarray(train.member_values(name), np.float32))


class _Batches:
    """Each member's own data stream, prefetched on a thread while TF computes."""

    def __init__(self, task, seeds, batch_size):
        self.task, self.batch_size = task, batch_size
        self.rngs = [np.random.default_rng([s, 3]) for s in seeds]
        self.pool = ThreadPoolExecutor(1)
        self.next = self.pool.submit(self._make)

    def _make(self):
        trials = [self.task.sample(rng, self.batch_size) for rng in self.rngs]
        return (np.stack([t["inputs"] for t in trials]), np.stack([t["targets"] for t in trials]))

    def __call__(self):
        out = self.next.result()
        self.next = self.pool.submit(self._make)
        return out

    def close(self):
        self.next.cancel()
        self.pool.shutdown(wait=True)


def mse(population: Population, inputs, targets, backprop=False, weights=None):
    """Each member's mean squared error, ``[n_networks]`` (``backprop``: the
    hand-written gradient of :meth:`Population.outputs`, with ``weights``)."""
    outputs = population.outputs(inputs, weights) if backprop else population.run(inputs)[1]
    return tf.reduce_mean(tf.square(outputs - targets), axis=[1, 2, 3])


def _cpu_threads() -> int:
    """Threads a computation may use here; 1 where a GPU runs the step."""
    if tf.config.list_logical_devices("GPU"):
        return 1
    return tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))


def _ranges(total: int, k: int) -> list:
    """``k`` consecutive ranges ``(lo, hi)`` of near-equal size covering ``range(total)``."""
    bounds = np.linspace(0, total, k + 1).astype(int)
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def shards(n_networks: int, size: int = 2) -> list:
    """Member ranges ``(lo, hi)`` whose gradients are computed as separate pieces.

    On a CPU, at least one per thread TensorFlow may use (XLA runs a
    computation on one core: the pieces run concurrently) and none larger
    than ``size`` members: batching members in one computation gains nothing
    on a CPU.  Measured on 64 GRUs of 64 units, 2 cores, ms per network and
    iteration: 9.5 in one piece, 6.8 in two, 5.2 in pieces of 4, 4.5-4.8 in
    pieces of 2; on one core 12.6 in one piece, 11.1 in pieces of 8.  One
    piece on a GPU, where the population is what fills the device.
    """
    return _ranges(n_networks, min(n_networks, max(_cpu_threads(), -(-n_networks // size))))


def batch_splits(n_pieces: int, batch_size: int, min_trials: int = 8) -> list:
    """Trial ranges ``(b0, b1)`` each member's batch is split into, so that a
    population smaller than the CPU's threads still keeps every core busy.

    A piece's gradient is then the sum of its parts', each weighted by its
    share of the batch: the same gradient, up to float round-off.  Measured
    for one 64-unit GRU (batch 64, 2 cores): 12 ms per iteration in one piece,
    9 in two halves run concurrently.  No part is smaller than ``min_trials``
    trials.
    """
    return _ranges(batch_size, max(1, min(_cpu_threads() // n_pieces, batch_size // min_trials)))


def make_train_step(population: Population, train: TrainConfig):
    """The ``tf.function`` that applies one update to every active member.

    Returns ``step(inputs, targets, k) -> mse [n_networks]`` and the state
    variables ``active`` (bool) and ``diverged_step`` (int) it maintains.
    """
    variables = population.variables_list
    slots = [tf.Variable(tf.zeros_like(v)) for v in variables]
    slots2 = [tf.Variable(tf.zeros_like(v)) for v in variables]  # Adam's second moments
    n = population.n_networks
    active = tf.Variable(tf.ones([n], tf.bool))
    diverged_step = tf.Variable(-tf.ones([n], tf.int64))
    l2, lr0, mom, rate, dsteps, clip = (
        _member_vector(train, k) for k in ("l2", "lr", "momentum", "decay_rate", "decay_steps", "clip"))
    adam = train.optimizer == "adam"

    def per_member(v, x):  # broadcast a [n] vector against a [n, ...] variable
        return tf.reshape(x, [-1] + [1] * (len(v.shape) - 1))

    def loss_grads(weights, inputs, targets, l2, share=1.0):
        """MSE and gradients of members given as weight slices, each times
        ``share`` (the part of the batch ``inputs`` holds)."""
        with tf.GradientTape() as tape:
            tape.watch(weights)
            err = share * mse(population, inputs, targets, backprop=True, weights=weights)
            penalty = tf.add_n([tf.reduce_sum(tf.square(w), axis=list(range(1, len(w.shape))))
                                for w in population.weight_matrices(weights)])
            total = tf.reduce_sum(err + share * l2 * penalty)
        return err, tape.gradient(total, weights)

    def update(err, grads, k):
        sq = tf.add_n([tf.reduce_sum(tf.square(g), axis=list(range(1, len(g.shape)))) for g in grads])
        norm = tf.sqrt(sq)
        ok = active & tf.math.is_finite(err) & tf.math.is_finite(norm)
        scale = tf.where(norm > clip, clip / norm, tf.ones_like(norm))
        kf = tf.cast(k, tf.float32)
        lr = lr0 * tf.pow(rate, kf / dsteps)
        for v, g, m, m2 in zip(variables, grads, slots, slots2):
            g = g * per_member(v, scale)
            keep = per_member(v, ok)
            if adam:  # lr0 with Adam's usual moments; momentum is beta_1
                b1 = per_member(v, mom)
                m_new = b1 * m + (1.0 - b1) * g
                m2_new = 0.999 * m2 + 0.001 * tf.square(g)
                t = kf + 1.0
                mhat = m_new / (1.0 - tf.pow(b1, t))
                vhat = m2_new / (1.0 - tf.pow(0.999, t))
                delta = -per_member(v, lr) * mhat / (tf.sqrt(vhat) + 1e-7)
                m2.assign(tf.where(keep, m2_new, m2))
            else:  # Keras' SGD: velocity = momentum * velocity - lr * g; w += velocity
                m_new = per_member(v, mom) * m - per_member(v, lr) * g
                delta = m_new
            m.assign(tf.where(keep, m_new, m))
            v.assign(tf.where(keep, v + delta, v))
        newly = active & ~ok
        diverged_step.assign(tf.where(newly, k, diverged_step))
        active.assign(ok)
        return err

    compiled = lambda f: tf.function(f, jit_compile=train.jit_compile)  # noqa: E731
    pieces = shards(n) if train.jit_compile else [(0, n)]  # TF's executor spreads ops itself
    if len(pieces) == 1 and (not train.jit_compile or len(batch_splits(1, train.batch_size)) == 1):
        def whole(x, y, k):
            return update(*loss_grads([tf.convert_to_tensor(v) for v in variables], x, y, l2), k)

        return compiled(whole), active, diverged_step
    shard_grads, apply = compiled(loss_grads), compiled(update)

    @tf.function
    def step(inputs, targets, k):  # the pieces run concurrently, each on its own core
        batch = inputs.shape[1]
        splits = batch_splits(len(pieces), batch)
        errs, grads = [], []
        for lo, hi in pieces:
            parts = [shard_grads([v[lo:hi] for v in variables], inputs[lo:hi, b0:b1], targets[lo:hi, b0:b1],
                                 l2[lo:hi], tf.constant((b1 - b0) / batch, tf.float32))
                     for b0, b1 in splits]
            errs.append(tf.add_n([e for e, _ in parts]))
            grads.append([tf.add_n(list(g)) for g in zip(*[gs for _, gs in parts])])
        return apply(tf.concat(errs, 0), [tf.concat(g, 0) for g in zip(*grads)], k)

    return step, active, diverged_step


class _OwnRetracing(logging.Filter):
    """Every population traces its own training step and evaluation (its
    weights are captured variables): TensorFlow's warning that these keep
    retracing is expected, and only noise in a sweep's output."""

    def filter(self, record):
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message
                    and ("make_train_step.<locals>" in message or "evaluate.<locals>" in message))


tf.get_logger().addFilter(_OwnRetracing())


def evaluate(population: Population, trials: dict, chunk: int = 256) -> np.ndarray:
    """Each member's MSE on ``trials`` shared by all members, ``[n_networks]``."""
    run = tf.function(lambda x, y: mse(population, x, y))
    n = len(trials["inputs"])
    total = 0.0
    for i in range(0, n, chunk):
        x, y = trials["inputs"][i: i + chunk], trials["targets"][i: i + chunk]
        xs = np.broadcast_to(x, (population.n_networks,) + x.shape)
        ys = np.broadcast_to(y, (population.n_networks,) + y.shape)
        total = total + run(tf.constant(xs), tf.constant(ys)).numpy() * len(x)
    return total / n


def train_population(task: TaskConfig, model: ModelConfig, train: TrainConfig,
                     progress=None) -> TrainResult:
    """Train ``train.n_networks`` networks of one architecture on one task.

    Parameters
    ----------
    task, model, train : TaskConfig, ModelConfig, TrainConfig
    progress : callable, optional
        Called as ``progress(k, loss)`` every ``train.log_every`` iterations
        with the members' training MSE ``[n_networks]``.

    Returns
    -------
    TrainResult
    """
    task_obj = get_task(task)
    seeds = train.member_values("seed")
    population = Population(model, task_obj.n_inputs, task_obj.n_outputs, seeds)
    step, active, diverged_step = make_train_step(population, train)
    batches = _Batches(task_obj, seeds, train.batch_size) if train.iterations else None
    steps, losses = [], []
    start = time.perf_counter()
    try:
        for k in range(train.iterations):
            inputs, targets = batches()
            err = step(inputs, targets, tf.constant(k, tf.int64))
            if k % train.log_every == 0 or k == train.iterations - 1:
                err = err.numpy()
                steps.append(k)
                losses.append(err)
                if progress is not None:
                    progress(k, err)
    finally:
        if batches is not None:
            batches.close()
    seconds = time.perf_counter() - start
    val = task_obj.validation_set()
    val_loss = evaluate(population, val)
    diverged, div_step = ~active.numpy(), diverged_step.numpy()
    val_loss = np.where(diverged | ~np.isfinite(val_loss), np.nan, val_loss)
    steps = np.asarray(steps, np.int64)
    losses = np.asarray(losses, np.float64).reshape(len(steps), population.n_networks)
    # A frozen member's later losses describe no training: drop them.
    losses[(steps[:, None] >= div_step[None, :]) & diverged[None, :]] = np.nan
    return TrainResult(
        population=population, loss_steps=steps, loss=losses,
        val_loss=val_loss, zero_loss=task_obj.zero_loss(val),
        diverged=diverged, diverged_step=div_step, seconds=seconds)


def train_run(cfg: RunConfig) -> dict:
    """Train the population of ``cfg``; the job a sweep's workers run.

    Returns :meth:`TrainResult.to_dict` (no TensorFlow objects, so it pickles).
    """
    return train_population(cfg.task, cfg.model, cfg.train).to_dict()


def time_step(task: TaskConfig, model: ModelConfig, train: TrainConfig, n_networks: int = 2,
              repeats: int = 2, best_of: int = 1) -> float:
    """Seconds per network per iteration of this job shape, from a short timing.

    Trains ``n_networks`` members for ``repeats`` iterations after one warm-up
    (tracing, compilation) and divides by both: the basis of a sweep's cost
    plan.  ``best_of``: time that many rounds and keep the fastest.
    """
    task_obj = get_task(task)
    seeds = list(range(n_networks))
    population = Population(model, task_obj.n_inputs, task_obj.n_outputs, seeds)
    train = dataclasses.replace(train, n_networks=n_networks, **train.member(0))
    step, _, _ = make_train_step(population, train)
    batches = _Batches(task_obj, seeds, train.batch_size)
    rounds = []
    try:
        step(*batches(), tf.constant(0, tf.int64)).numpy()
        for _ in range(best_of):
            start = time.perf_counter()
            for k in range(repeats):
                err = step(*batches(), tf.constant(k + 1, tf.int64))
            err.numpy()
            rounds.append(time.perf_counter() - start)
    finally:
        batches.close()
    return min(rounds) / repeats / n_networks
