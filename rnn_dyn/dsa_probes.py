"""Probe inputs for DSA: trials made of long stretches of constant input.

DSA fits one linear operator to autonomous dynamics (Ostrow et al. 2023), so
its probes hold the input constant long enough for delay embeddings
(:func:`rnn_dyn.dsa_fit.constant_input_segments` cuts them into segments):

- flip-flop: a ±1 pulse on every channel every ``gap`` steps, then relaxation
  with zero input (the segments);
- sine: each cue ``u`` of an even grid held for the whole trial (as in the task);
- context: per context, both streams held at noise-free levels for the whole
  trial (the relevant one at ``n_levels`` levels in [-1, 1], the other at ±0.5).

What differs per task is one entry of ``PROBES``.
"""
from __future__ import annotations

import numpy as np

from rnn_dyn._checks import check_choice

GAP, N_PULSES, N_FLIPFLOP_TRIALS = 60, 4, 16  # flip-flop: 64 relaxations of 60 states
N_CUES = 11  # sine: cues 0, 0.1, ..., 1
N_LEVELS, OTHER_LEVELS = 5, (-0.5, 0.5)  # context: 5 x 2 trials per context


def flipflop_probe(task, min_length) -> np.ndarray:
    """``[16, 4 gap, n_bits]``: every channel pulses ±1 (seeded signs) every ``gap = max(GAP, min_length)``
    steps, 0 between."""
    rng = np.random.default_rng(task.cfg.probe_seed)
    gap = max(GAP, min_length)
    inputs = np.zeros((N_FLIPFLOP_TRIALS, N_PULSES * gap, task.n_inputs), np.float32)
    inputs[:, ::gap] = rng.choice([-1.0, 1.0], size=(N_FLIPFLOP_TRIALS, N_PULSES, task.n_inputs))
    return inputs


def sine_probe(task, min_length) -> np.ndarray:
    """``[11, max(n_time, min_length), 1]``: each cue of ``linspace(0, 1, 11)`` held for a whole trial."""
    u = np.linspace(0.0, 1.0, N_CUES, dtype=np.float32)
    return np.broadcast_to(u[:, None, None], (N_CUES, max(task.n_time, min_length), 1)).copy()


def context_probe(task, min_length) -> np.ndarray:
    """``[n_contexts * 10, max(n_time, min_length), 2 n_contexts]``: per context, the relevant stream
    at ``N_LEVELS`` levels and every other stream at each of ``OTHER_LEVELS``, no noise."""
    n, trials = task.cfg.n_contexts, []
    for c in range(n):
        for level in np.linspace(-1.0, 1.0, N_LEVELS):
            for other in OTHER_LEVELS:
                x = np.full(2 * n, other)
                x[c], x[n:] = level, np.eye(n)[c]
                trials.append(x)
    n_time = max(task.n_time, min_length)
    return np.broadcast_to(np.array(trials, np.float32)[:, None], (len(trials), n_time, 2 * n)).copy()


PROBES = {"flipflop": flipflop_probe, "sine": sine_probe, "context": context_probe}


def dsa_probe(task, min_length=1) -> np.ndarray:
    """The DSA probe inputs of ``task``, ``[n_trials, n_time, n_inputs]``, whose constant-input
    stretches have at least ``min_length`` states."""
    check_choice("task", task.cfg.name, PROBES)
    return PROBES[task.cfg.name](task, min_length)
