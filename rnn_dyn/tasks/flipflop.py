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
        shape = (n_trials, self.n_time, self.cfg.n_bits)
        pulse = rng.random(shape) < self.cfg.p_flip
        pulse[:, 0, :] = True
        signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        inputs = np.where(pulse, signs, 0.0)
        # The target is the most recent pulse: carry the index of the last pulse forward.
        idx = np.where(pulse, np.arange(self.n_time)[None, :, None], 0)
        last = np.maximum.accumulate(idx, axis=1)
        targets = np.take_along_axis(inputs, last, axis=1)
        return {"inputs": inputs, "targets": targets}
