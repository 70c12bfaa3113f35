"""The K-bit flip-flop (Sussillo & Barak 2013; SPEC §2)."""
from __future__ import annotations

import numpy as np

from rnn_dyn.tasks import Task


class FlipFlopTask(Task):
    """Each channel remembers the sign of its most recent ±1 pulse.

    Every step, each channel independently carries a pulse with probability
    ``p_flip`` (sign uniform); at ``t = 0`` every channel carries one, so the
    targets are always ±1.  ``n_inputs = n_outputs = n_bits``; ``x_cond = 0``.
    """

    name = "flipflop"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.n_inputs = self.n_outputs = cfg.n_bits

    @property
    def x_cond(self):
        return np.zeros((1, self.n_inputs), np.float32)

    def _trials(self, rng, n_trials):
        n_time, n_bits = self.n_time, self.cfg.n_bits
        shape = (n_trials, n_time, n_bits)
        pulse = rng.random(shape) < self.cfg.p_flip
        pulse[:, 0, :] = True
        negative = rng.random(shape) < 0.5
        code = pulse.view(np.int8) - 2 * (pulse & negative).view(np.int8)  # +1, -1 or 0
        # The target is the most recent pulse: carry the index of the last pulse forward.
        last = np.maximum.accumulate(pulse * np.arange(n_time, dtype=np.int32)[None, :, None], axis=1)
        flat = (np.arange(n_trials)[:, None, None] * n_time + last) * n_bits + np.arange(n_bits)
        return {"inputs": code.astype(np.float32), "targets": code.reshape(-1)[flat].astype(np.float32)}
